/// `clusters[].protocol`: which HTTP version Edge speaks to the endpoints.
enum UpstreamProtocol: String, Sendable {
    /// HTTP/1.1 with keep-alive pools (the default).
    case http1
    /// HTTP/2 by prior knowledge over cleartext, multiplexed (needed for gRPC).
    case http2
}

extension ConfigLoader {
    static func parseUpstreamProtocol(_ node: ConfigNode, tls: Bool, proxyProtocol: Int) throws(ConfigError) -> UpstreamProtocol {
        let w = try node.oneOf(["http1", "http2", "auto"], what: "protocol (http1 or http2)")
        if w == "auto" {
            throw node.error("'auto' (ALPN over TLS) is not supported yet; use http1, or http2 to a cleartext endpoint")
        }
        let p = UpstreamProtocol(rawValue: w) ?? .http1
        if p == .http2 && tls {
            throw node.error("http2 over TLS to upstreams is not supported yet; drop 'tls:' (prior knowledge h2c) or use http1")
        }
        if p == .http2 && proxyProtocol != 0 {
            throw node.error("http2 multiplexes many clients on one connection, so it cannot send a PROXY header; drop 'proxy_protocol' or use http1")
        }
        return p
    }
}
