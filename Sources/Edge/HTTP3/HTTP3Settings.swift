/// `listeners[].http3` on an HTTPS listener: HTTP/3 over QUIC on the same UDP
/// port, with the limits that bound what one worker spends on QUIC. Parsed in
/// Config/ConfigLoader+HTTP3.swift; the reactor reads `CompiledHTTP3`.
struct HTTP3Settings: Sendable, Equatable {
    enum RetryMode: UInt8, Sendable { case auto, always }
    var enabled = false
    /// QUIC connections per worker; Initials beyond it are dropped.
    var maxConnections = 10_000
    /// Handshakes in progress per worker; beyond it new Initials are dropped.
    var maxHandshakes = 1_024
    /// `auto`: a Retry (address validation) once more than `retryThreshold`
    /// handshakes are half open on the worker; `always`: every new client first.
    var retry = RetryMode.auto
    var retryThreshold = 128
    var idleTimeoutMs = 30_000
    var handshakeTimeoutMs = 10_000
    /// Request streams a client may open at once (MAX_STREAMS bidi).
    var maxConcurrentStreams = 100
    /// Flow-control windows: per stream and per connection.
    var streamWindow = 256 << 10
    var connectionWindow = 1 << 20
    /// SETTINGS_MAX_FIELD_SECTION_SIZE (QPACK-decoded header bytes).
    var maxFieldSection = 32_768
}

/// QPACK limits that are not configurable (issue #13): a small dynamic table
/// and few blocked streams bound the decoder's memory per connection.
enum HTTP3Limits {
    static let qpackTableBytes = 4_096
    static let qpackBlockedStreams = 16
}

/// The reactor's copy of `HTTP3Settings` (plain integers).
struct CompiledHTTP3 {
    var enabled = false
    var maxConnections: Int32 = 10_000
    var maxHandshakes: Int32 = 1_024
    var retryAlways = false
    var retryThreshold: Int32 = 128
    var idleTimeoutMs: Int64 = 30_000
    var handshakeTimeoutMs: Int64 = 10_000
    var maxConcurrentStreams: UInt64 = 100
    var streamWindow: UInt64 = 256 << 10
    var connectionWindow: UInt64 = 1 << 20
    var maxFieldSection: UInt64 = 32_768
    /// `Alt-Svc: h3=":PORT"; ma=86400` for HTTPS responses (empty when off).
    var altSvc: StaticBytes = .empty

    init() {}
    /// `altSvc` is interned by the compiler (it lives as long as the snapshot).
    init(_ s: HTTP3Settings, altSvc: StaticBytes) {
        self.altSvc = altSvc
        enabled = s.enabled
        maxConnections = Int32(clamping: s.maxConnections)
        maxHandshakes = Int32(clamping: s.maxHandshakes)
        retryAlways = s.retry == .always
        retryThreshold = Int32(clamping: s.retryThreshold)
        idleTimeoutMs = Int64(s.idleTimeoutMs)
        handshakeTimeoutMs = Int64(s.handshakeTimeoutMs)
        maxConcurrentStreams = UInt64(s.maxConcurrentStreams)
        streamWindow = UInt64(s.streamWindow)
        connectionWindow = UInt64(s.connectionWindow)
        maxFieldSection = UInt64(s.maxFieldSection)
    }
}
