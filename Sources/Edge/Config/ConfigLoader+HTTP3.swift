/// `listeners[].http3`: `on`/`off`, or a mapping of QUIC limits (implies on).
extension ConfigLoader {
    static let http3Fields = ["enabled", "max_connections", "max_handshakes", "retry", "retry_threshold",
                              "idle_timeout", "handshake_timeout", "max_concurrent_streams", "stream_window",
                              "connection_window", "max_field_section"]

    static func parseHTTP3Settings(_ node: ConfigNode, maxHeaderBytes: Int) throws(ConfigError) -> HTTP3Settings {
        var h = HTTP3Settings()
        h.maxFieldSection = maxHeaderBytes
        if case .scalar = node.node {
            // YAML 1.1 reads `on`/`off` as booleans; plain words are accepted too.
            let word = try node.oneOf(["on", "off", "true", "false"], what: "http3")
            h.enabled = word == "on" || word == "true"
            return h
        }
        let m = try node.mapping(allowed: http3Fields)
        h.enabled = true
        if let n = m.optional("enabled") { h.enabled = try n.bool() }
        if let n = m.optional("max_connections") { h.maxConnections = try n.int(in: 1...1_000_000) }
        if let n = m.optional("max_handshakes") { h.maxHandshakes = try n.int(in: 1...100_000) }
        if let n = m.optional("retry") {
            h.retry = try n.oneOf(["auto", "always"], what: "retry") == "always" ? .always : .auto
        }
        if let n = m.optional("retry_threshold") { h.retryThreshold = try n.int(in: 0...100_000) }
        if let n = m.optional("idle_timeout") { h.idleTimeoutMs = try n.durationMs(min: 100) }
        if let n = m.optional("handshake_timeout") { h.handshakeTimeoutMs = try n.durationMs(min: 100) }
        if let n = m.optional("max_concurrent_streams") { h.maxConcurrentStreams = try n.int(in: 1...1_000) }
        if let n = m.optional("stream_window") { h.streamWindow = Int(try n.sizeBytes(in: 1024...(1 << 24))) }
        if let n = m.optional("connection_window") { h.connectionWindow = Int(try n.sizeBytes(in: 16_384...(1 << 30))) }
        if let n = m.optional("max_field_section") {
            h.maxFieldSection = Int(try n.sizeBytes(in: 1024...UInt64(max(1024, maxHeaderBytes))))
        }
        if h.connectionWindow < h.streamWindow {
            throw (m.optional("connection_window") ?? node).error("connection_window (\(h.connectionWindow) bytes) must be at least stream_window (\(h.streamWindow) bytes)")
        }
        if h.maxHandshakes > h.maxConnections {
            throw (m.optional("max_handshakes") ?? node).error("max_handshakes (\(h.maxHandshakes)) must not exceed max_connections (\(h.maxConnections))")
        }
        return h
    }
}
