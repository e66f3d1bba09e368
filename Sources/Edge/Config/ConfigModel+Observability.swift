// Config model of the access log, metrics and admin authentication
// (`access_log:`, `metrics:`, `admin.token_*`). Control thread only.

/// `access_log: { path, format, template, sample, buffer }`. Read at start;
/// a reload keeps the writer as it was (per-route `access_log: false` follows reloads).
struct AccessLogConfig: Sendable {
    enum Format: String, Sendable { case json, text }
    /// "stderr" or a file path (opened in append mode, reopened on SIGUSR1).
    var path: String = "stderr"
    var format: Format = .json
    /// `format: text`: `$field` placeholders (see `AccessLogField`), `$$` for a dollar.
    var template: String = AccessLogConfig.defaultTemplate
    /// Fraction of requests logged (head sampling, 0...1).
    var sample: Double = 1.0
    /// Per-worker ring buffer; lines that do not fit are dropped and counted.
    var bufferBytes: Int = 1 << 20
    static let defaultTemplate = "$time $request_id $client $listener $route $method $authority $path $status $bytes_in $bytes_out $total_ms $error"
}

/// `metrics: { histograms: true|false }`.
struct MetricsConfig: Sendable {
    /// Latency histograms per route and cluster (counters are always kept).
    var histograms = true
}

struct ObservabilityConfig: Sendable {
    /// nil = no access log.
    var accessLog: AccessLogConfig? = nil
    var metrics = MetricsConfig()
    /// nil = no tracing (traceparent passes through untouched).
    var tracing: TracingConfig? = nil
}

/// `admin: { token_file, token_env, auth_reads }`: the bearer token every
/// mutating admin call (and, with auth_reads, every read) must present.
struct AdminAuthConfig: Sendable {
    /// The token bytes, read when the config is loaded (never printed).
    var token: [UInt8]? = nil
    var tokenSource: String? = nil
    /// Also require the token for GET endpoints (health probes included).
    var authReads = false
}

/// `tracing: { collector, sample, service_name }`: W3C trace context on every
/// proxied request; sampled spans exported as OTLP/HTTP JSON. Read at start.
struct TracingConfig: Sendable {
    /// Where `POST /v1/traces` goes (OTLP/HTTP, JSON body).
    var collector: SocketAddress
    /// Head sampling ratio for requests that arrive without a traceparent.
    var sample: Double = 1.0
    var serviceName: String = "edge"
}
