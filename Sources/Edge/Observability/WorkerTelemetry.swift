/// What one reactor needs to record requests: its metrics shard and access
/// log ring (nil when off), the line format and the sampling threshold.
/// Plain pointers and values: reading it per request costs no ARC.
struct WorkerTelemetry: @unchecked Sendable {
    var metrics: MetricsShard? = nil
    var log: ByteRing? = nil
    var format = AccessLogFormat(json: true, ops: UnsafeBufferPointer(start: nil, count: 0))
    /// A request is logged when its random draw is at or below this (UInt64.max = all).
    var sampleThreshold: UInt64 = .max
    var histograms = false
    /// Tracing: sampled spans go here (fixed-size records), nil when tracing is off.
    var spans: ByteRing? = nil
    var traceThreshold: UInt64 = .max

    var enabled: Bool { metrics != nil || log != nil || spans != nil }
}

/// Per-exchange facts the access log and metrics need, kept beside the
/// exchange table (same index) so `Exchange` itself stays small. Times are
/// CLOCK_MONOTONIC nanoseconds; 0 = did not happen.
struct ExchangeRecord {
    var active = false
    var sampled = false
    var reused = false
    var status: UInt16 = 0
    var cause: StaticString? = nil
    var startNs: Int64 = 0
    var upstreamNs: Int64 = 0
    var connectedNs: Int64 = 0
    var firstByteNs: Int64 = 0
    var bytesIn: UInt64 = 0
    var localBodyBytes: UInt64 = 0
    var cluster: Int32 = -1
    var endpoint: Int32 = -1
    var idLength: UInt16 = 0
    var methodLength: UInt16 = 0
    var authorityLength: UInt16 = 0
    var pathLength: UInt16 = 0
    /// The request id came from Edge (not the client), so the upstream gets this one.
    var generatedId = false
    /// W3C trace context: trace id, Edge's span id, the caller's span id (0 = none).
    var traced = false
    var traceSampled = false
    var traceHi: UInt64 = 0
    var traceLo: UInt64 = 0
    var spanId: UInt64 = 0
    var parentSpanId: UInt64 = 0
    /// An L4 session (TCP listener): names kept in `streamText`, bytes each way.
    var stream = false
    var relayIn: UInt64 = 0
    var relayOut: UInt64 = 0
}

/// The per-reactor record table and scratch line, allocated once (lazy mmap).
struct ExchangeLog {
    /// Text kept per exchange: request id, method, authority, path (truncated to fit).
    static let idOffset = 0, idBytes = 64
    static let methodOffset = 64, methodBytes = 16
    static let authorityOffset = 80, authorityBytes = 128
    static let pathOffset = 208, pathBytes = 304
    static let textStride = 512
    static let lineBytes = 4096

    let telemetry: WorkerTelemetry
    let records: UnsafeMutablePointer<ExchangeRecord>
    let text: UnsafeMutablePointer<UInt8>
    let line: UnsafeMutablePointer<UInt8>
    /// L4 sessions outlive their snapshot: listener, cluster, endpoint names copied here (64 bytes each).
    let streamText: UnsafeMutablePointer<UInt8>
    static let streamStride = 192
    var sampleCounter: UInt64 = 0

    init(capacity: Int, telemetry: WorkerTelemetry) {
        self.telemetry = telemetry
        let n = telemetry.enabled ? capacity : 1
        records = lazyArray(n)
        text = lazyArray(telemetry.log != nil ? n * Self.textStride : 1)
        line = lazyArray(Self.lineBytes)
        streamText = lazyArray(telemetry.log != nil ? n * Self.streamStride : 1)
    }
}
