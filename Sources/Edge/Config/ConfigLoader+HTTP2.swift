/// `listeners[].http2`: HTTP/2 on an HTTP listener (cleartext prior knowledge today).
extension ConfigLoader {
    static let http2Fields = ["cleartext", "max_concurrent_streams", "initial_window", "connection_window",
                              "max_header_list", "max_frame_size", "max_glitches", "glitch_rate",
                              "reset_burst", "reset_rate"]

    static func parseHTTP2Settings(_ node: ConfigNode, maxHeaderBytes: Int) throws(ConfigError) -> HTTP2Settings {
        let m = try node.mapping(allowed: http2Fields)
        var h = HTTP2Settings()
        // The decoded list becomes an HTTP/1.1 head, which max_header_bytes bounds.
        h.maxHeaderList = maxHeaderBytes
        if let n = m.optional("cleartext") { h.cleartext = try n.bool() }
        if let n = m.optional("max_concurrent_streams") { h.maxConcurrentStreams = try n.int(in: 1...1_000) }
        // RFC 9113 §6.5.2: windows up to 2^31-1, frames 16 KiB to 16 MiB.
        if let n = m.optional("initial_window") { h.initialWindow = Int(try n.sizeBytes(in: 1024...(1 << 24))) }
        if let n = m.optional("connection_window") { h.connectionWindow = Int(try n.sizeBytes(in: 65_535...(1 << 30))) }
        if let n = m.optional("max_header_list") {
            h.maxHeaderList = Int(try n.sizeBytes(in: 1024...UInt64(max(1024, maxHeaderBytes))))
        }
        if let n = m.optional("max_frame_size") { h.maxFrameSize = Int(try n.sizeBytes(in: 16_384...16_777_215)) }
        if let n = m.optional("max_glitches") { h.maxGlitches = try n.int(in: 10...1_000_000) }
        if let n = m.optional("glitch_rate") { h.glitchRate = try n.int(in: 1...1_000_000) }
        if let n = m.optional("reset_burst") { h.resetBurst = try n.int(in: 1...100_000) }
        if let n = m.optional("reset_rate") { h.resetRate = try n.int(in: 1...100_000) }
        if h.connectionWindow < h.initialWindow {
            throw (m.optional("connection_window") ?? node).error("connection_window (\(h.connectionWindow) bytes) must be at least initial_window (\(h.initialWindow) bytes)")
        }
        return h
    }
}
