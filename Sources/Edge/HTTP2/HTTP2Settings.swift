/// `listeners[].http2`: whether an HTTP listener speaks HTTP/2 and its limits.
/// Parsed in Config/ConfigLoader+HTTP2.swift; the reactor reads the compiled
/// copy (`CompiledListener.http2`).
struct HTTP2Settings: Sendable, Equatable {
    /// Accept HTTP/2 by prior knowledge (the client preface) on a cleartext listener.
    /// TLS listeners will select HTTP/2 by ALPN "h2" through the same codec.
    var cleartext = false
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised and enforced.
    var maxConcurrentStreams = 100
    /// SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a stream may have in
    /// flight before Edge handed them on upstream (per-stream backpressure).
    var initialWindow = 65_535
    /// Connection window: the sum over all streams.
    var connectionWindow = 1 << 20
    /// SETTINGS_MAX_HEADER_LIST_SIZE: decoded header bytes (name + value + 32 per
    /// field, indexed fields included) a request may carry; over it → 431.
    var maxHeaderList = 32_768
    /// SETTINGS_MAX_FRAME_SIZE accepted from the client.
    var maxFrameSize = 16_384
    /// Misbehaviour a connection may show (empty frames, PING/SETTINGS beyond
    /// need, streams reset before their response...) before it gets GOAWAY
    /// ENHANCE_YOUR_CALM; refilled at `glitchRate` per second.
    var maxGlitches = 1_000
    var glitchRate = 100
    /// Streams the client may reset before their response, burst and per second
    /// (Rapid Reset, CVE-2023-44487).
    var resetBurst = 200
    var resetRate = 50
}

/// The reactor's copy of `HTTP2Settings` (plain integers).
struct CompiledHTTP2 {
    var cleartext = false
    var maxConcurrentStreams: UInt32 = 100
    var initialWindow: UInt32 = 65_535
    var connectionWindow: Int32 = 1 << 20
    var maxHeaderList: UInt32 = 32_768
    var maxFrameSize: UInt32 = 16_384
    var maxGlitches: Int32 = 1_000
    var glitchRate: Int32 = 100
    var resetBurst: Int32 = 200
    var resetRate: Int32 = 50

    init() {}
    init(_ s: HTTP2Settings) {
        cleartext = s.cleartext
        maxConcurrentStreams = UInt32(clamping: s.maxConcurrentStreams)
        initialWindow = UInt32(clamping: s.initialWindow)
        connectionWindow = Int32(clamping: s.connectionWindow)
        maxHeaderList = UInt32(clamping: s.maxHeaderList)
        maxFrameSize = UInt32(clamping: s.maxFrameSize)
        maxGlitches = Int32(clamping: s.maxGlitches)
        glitchRate = Int32(clamping: s.glitchRate)
        resetBurst = Int32(clamping: s.resetBurst)
        resetRate = Int32(clamping: s.resetRate)
    }
}
