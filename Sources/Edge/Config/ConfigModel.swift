import CIOUring
import Glibc
import Protocols

// The validated configuration as the user wrote it (names, strings, arrays).
// `ConfigLoader` builds it from YAML; `RouteTableCompiler` turns it into the
// immutable hot-path snapshot. Nothing here is touched per request.

/// A resolved socket address (IPv4 or IPv6) plus the text the user wrote.
struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    var storage: sockaddr_storage
    var length: socklen_t
    /// As written in the config, e.g. "127.0.0.1:9000" or "[::1]:9000".
    var text: String
    var description: String { text }
    var family: Int32 { storage.family }
    static func == (a: SocketAddress, b: SocketAddress) -> Bool { a.text == b.text }
}

/// Where a value came from, for `file:line: field: problem` messages.
struct SourceLocation: Sendable, Equatable {
    var file: String
    var line: Int
}

package struct ConfigError: Error, Equatable, CustomStringConvertible {
    var location: SourceLocation
    /// Dotted path of the offending field, e.g. `listeners[0].routes[1].cluster`.
    var field: String
    package var problem: String
    /// `file:line: field: problem`. Parts that do not apply are left out: a YAML
    /// syntax error has no field (`file:line: problem`), an unreadable file has
    /// neither line nor field (`file: problem`; line 0 means "no line").
    package var description: String {
        var out = location.file
        if location.line > 0 { out += ":\(location.line)" }
        if !field.isEmpty { out += ": \(field)" }
        return out + ": \(problem)"
    }
}

package struct EdgeConfig: Sendable {
    var runtime = RuntimeConfig()
    var admin = AdminConfig()
    package var listeners: [ListenerConfig] = []
    package var clusters: [ClusterConfig] = []
    /// Access log and metrics (ConfigModel+Observability.swift).
    var observability = ObservabilityConfig()
    /// Gateway identities and named policies (Policy/PolicyConfig.swift).
    var consumers: [ConsumerConfig] = []
    var policies: [PolicyConfig] = []
    /// `redis:` for `rate_limit.shared: redis` (Policy/SharedLimitConfig.swift).
    var redis: RedisConfig? = nil

    /// Problems that do not stop the config, `file:line: field: problem` like errors.
    var warnings: [String] {
        var out: [String] = []
        for (ci, c) in clusters.enumerated() {
            for (ei, e) in c.endpoints.enumerated() {
                guard let failure = e.resolveFailure else { continue }
                let at = e.location.map { "\($0.file):\($0.line): " } ?? ""
                out.append("\(at)clusters[\(ci)].endpoints[\(ei)]: \(failure); requests to it get 502 until it resolves")
            }
        }
        return out
    }
}

struct RuntimeConfig: Sendable {
    /// Written at startup so `edge reload` can find the process (nil = none).
    var pidFile: String? = nil
    /// nil = auto (one reactor per allowed CPU).
    var workers: Int? = nil
    /// How long SIGTERM/SIGINT waits for in-flight requests before exiting.
    var drainTimeoutMs: Int = 30_000
    /// Log format for process logs on stderr: "text" or "json".
    var logFormat: String = "text"
    var logLevel: String = "info"
    /// Provided-buffer ring: buffer size and count per reactor.
    var bufferSize: Int = 16384
    var bufferCount: Int = 1024
    /// Max client connections per reactor (slab size).
    var maxConnectionsPerWorker: Int = 16384
    /// Client connections open at once across all workers and listeners (0 = no limit
    /// beyond the per-worker slab). Over it: HTTP gets a 503, TCP a close.
    var maxConnections: Int = 0
    /// Load shedding: a reactor whose event-loop turns take longer than this
    /// (smoothed) refuses new connections until it catches up. 0 = off.
    var maxLoopLagMs: Int = 50
    /// A request head that keeps arriving in tiny reads is read once per this
    /// interval instead of once per packet (0 = off).
    var trickleReadIntervalMs: Int = 10
}

struct AdminConfig: Sendable {
    /// nil = admin listener disabled (`admin: { address: off }`).
    var address: SocketAddress? = nil
    var addressText: String = "127.0.0.1:9901"
    /// Bearer token for the admin API (ConfigModel+Observability.swift).
    var auth = AdminAuthConfig()
}

/// How a TCP relay moves bytes: through user space (ring buffers), kernel
/// splice, or copy first and splice once the connection turns out to be bulk.
enum RelayModeConfig: String, Sendable { case auto, copy, splice }

enum ListenerProtocol: String, Sendable {
    case http, https, tcp, tls, udp, dtls
}

package struct ListenerConfig: Sendable {
    var name: String
    var address: SocketAddress
    var proto: ListenerProtocol
    var routes: [RouteConfig]
    var http = HTTPListenerSettings()
    /// `http2: { cleartext: true, ... }` (see HTTP2/HTTP2Settings.swift).
    var http2 = HTTP2Settings()
    /// `http3: on | { ... }` on an https listener (see HTTP3/HTTP3Settings.swift).
    var http3 = HTTP3Settings()
    /// GnuTLS credentials for QUIC, built by the loader when http3 is on.
    var quicContext: QUICServerContext? = nil
    var location: SourceLocation
    /// `protocol: tcp`: the cluster every connection is relayed to.
    var streamCluster: String? = nil
    /// `proxy_protocol: accept`: each connection must start with a PROXY v1/v2 header.
    var acceptsProxyProtocol = false
    var proxyProtocolTimeoutMs = 5_000
    /// `tcp: { idle_timeout }`: relay closes after this long without bytes either way.
    var streamIdleTimeoutMs = 300_000
    /// `protocol: tcp` with SNI routes: the cluster comes from the ClientHello
    /// (routes carry `match.host` = the sni); `streamCluster` is the default (nil: such connections close).
    var routesBySNI = false
    /// `tcp: { relay, splice_after, sni_timeout }` (see Stream/CopyRelay.swift).
    var relayMode = RelayModeConfig.auto
    var spliceAfterBytes = 65_536
    var sniTimeoutMs = 5_000
    /// `udp: { session_timeout, max_sessions }` for `protocol: udp` listeners.
    var udpSessionTimeoutMs = 30_000
    var udpMaxSessions = 10_000
    /// Open client connections on this listener across all workers (0 = no limit).
    var maxConnections = 0
    /// Open client connections from one client IP on this listener (0 = no limit).
    var maxConnectionsPerIP = 0
    /// `protocol: https`: certificates and TLS settings (ConfigLoader+TLS.swift).
    var tls: TLSListenerConfig? = nil
    /// `policies: [...]`: the default policy chain of routes that name none.
    var policies: PolicyReferences? = nil
}

/// Per-listener HTTP limits and client-side timeouts (`listeners[].http`).
struct HTTPListenerSettings: Sendable {
    var limits = HTTP1Limits()
    /// 0 = unlimited. Over it → 413.
    var maxBodyBytes: UInt64 = 0
    /// Time to receive a complete request head (slowloris guard) → 408.
    var headerTimeoutMs: Int = 10_000
    /// Keep-alive idle time between requests.
    var idleTimeoutMs: Int = 60_000
    /// Max silence while reading a request body or writing a response.
    var bodyTimeoutMs: Int = 60_000
    /// Slow-POST guard: a request body must average at least this many bytes per
    /// second over every 10 s window while Edge is waiting for it (0 = off) → 408.
    var minBodyRate: Int = 512
}

struct RouteMatchConfig: Sendable {
    /// Exact host ("api.example.com"), wildcard ("*.example.com": any subdomain,
    /// not the apex), or nil / "*" for any. Case-insensitive, port ignored.
    var host: String? = nil
    var pathPrefix: String? = nil
    var pathExact: String? = nil
    /// PCRE2 pattern matched against the whole path (anchored at both ends).
    var pathRegex: String? = nil
    /// Upper-case method tokens; empty = any.
    var methods: [String] = []
    var headers: [HeaderMatchConfig] = []
    var query: [QueryMatchConfig] = []
}

/// `match.headers[]`: `{ name, exact: v }`, `{ name, present: true|false }`, `{ name, regex: p }`.
struct HeaderMatchConfig: Sendable {
    enum Kind: Sendable { case exact(String), present(Bool), regex(String) }
    var name: String
    var kind: Kind
}

/// `match.query[]`: `{ name, exact: v }`, `{ name, present: true|false }`, `{ name, regex: p }`.
struct QueryMatchConfig: Sendable {
    var name: String
    var kind: HeaderMatchConfig.Kind
}

/// Header edits on a route: `request_headers: { add: {k: v}, set: {k: v}, remove: [k] }`
/// (same shape for `response_headers`). add appends, set replaces, remove drops.
struct HeaderEditsConfig: Sendable {
    var add: [(String, String)] = []
    var set: [(String, String)] = []
    var remove: [String] = []
    var isEmpty: Bool { add.isEmpty && set.isEmpty && remove.isEmpty }
}

/// One arm of `clusters: [{name: a, weight: 90}, {name: b, weight: 10}]`.
struct WeightedClusterConfig: Sendable {
    var name: String
    var weight: Int
}

struct DirectResponseConfig: Sendable {
    var status: Int
    var headers: [(String, String)] = []
    var body: String = ""
}

enum RouteAction: Sendable {
    case cluster(String)
    /// Weighted split across clusters (canary releases).
    case weighted([WeightedClusterConfig])
    case direct(DirectResponseConfig)
}

struct RouteConfig: Sendable {
    var match = RouteMatchConfig()
    var action: RouteAction
    /// Remove the matched `path_prefix` before forwarding.
    var stripPrefix: Bool = false
    /// Replace the matched `path_prefix` with this (exclusive with strip_prefix).
    var prefixRewrite: String? = nil
    /// Host header sent upstream instead of the client's.
    var hostRewrite: String? = nil
    var requestHeaders = HeaderEditsConfig()
    var responseHeaders = HeaderEditsConfig()
    /// Time from the request being sent upstream to the response head → 504.
    var timeoutMs: Int = 30_000
    /// `mirror: { cluster, percent }`: copies of requests sent there, answers ignored.
    var mirror: MirrorConfig? = nil
    /// `cache: { max_size, max_object, ... }`: response cache (Cache/).
    var cache: CacheConfig? = nil
    /// `policies: [...]` (nil = the listener default; `[]` = none).
    var policies: PolicyReferences? = nil
    var location: SourceLocation
    /// `name:` label in metrics and the access log (default: the route's index in its listener).
    var name: String? = nil
    /// `access_log: false` keeps this route's requests out of the access log.
    var accessLog = true
    /// `compression: {...}` (Compression/): nil = responses pass as they are.
    var compression: CompressionConfig? = nil
}

enum BalancePolicy: String, Sendable {
    case roundRobin = "round_robin"
    case weightedRoundRobin = "weighted_round_robin"
    case leastConnections = "least_connections"
    case randomTwo = "random_two"
    case consistentHash = "consistent_hash"
    /// Power of two choices by peak-EWMA response time × in-flight (Balancing/LeastLatency.swift).
    case leastLatency = "least_latency"
}

struct EndpointConfig: Sendable {
    var address: SocketAddress
    var weight: Int = 1
    /// Set when the endpoint was written as a host name ("db.internal:5432"):
    /// `address` is its first resolved address; re-resolved every `dns_refresh`.
    var hostName: String? = nil
    /// Set while the host name does not resolve (address family AF_UNSPEC).
    var resolveFailure: String? = nil
    var location: SourceLocation? = nil
}

/// Where `consistent_hash` takes its key from: `hash_on: client_ip` (default),
/// `hash_on: { header: X-User }`, `hash_on: { cookie: session }`.
enum HashKeySource: Sendable, Equatable {
    case clientIP
    case header(String)
    case cookie(String)
}

package struct ClusterConfig: Sendable {
    package var name: String
    var endpoints: [EndpointConfig]
    var balance: BalancePolicy = .roundRobin
    var hashOn: HashKeySource = .clientIP
    var connectTimeoutMs: Int = 2_000
    /// Idle keep-alive connections kept per endpoint per reactor.
    var maxIdlePerEndpoint: Int = 64
    var idleTimeoutMs: Int = 60_000
    /// Re-resolution period for host-name endpoints.
    var dnsRefreshMs: Int = 30_000
    /// `proxy_protocol: v1|v2`: header sent on each new upstream connection (0 = off).
    var sendProxyProtocol: Int = 0
    /// `tls:` to the endpoints (ConfigLoader+TLS.swift).
    var tls: ClusterTLSConfig? = nil
    /// `protocol: http1 | http2` to the endpoints (Config/ConfigLoader+UpstreamHTTP2.swift).
    var upstreamProtocol: UpstreamProtocol = .http1
    /// Health checks, outlier ejection, circuit breakers, retries (ConfigModel+Resilience.swift).
    var resilience = ClusterResilienceConfig()
    /// Endpoints in link-local / cloud-metadata ranges are refused unless set (Policy/PolicyConfigLoader.swift).
    var allowMetadataAddresses = false
    var location: SourceLocation
}
