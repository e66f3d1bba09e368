/// `clusters[].protocol`: which HTTP version Edge speaks to the endpoints.
enum UpstreamProtocol: String, Sendable {
    /// HTTP/1.1 with keep-alive pools (the default).
    case http1
    /// HTTP/2, multiplexed (needed for gRPC): prior knowledge over cleartext,
    /// or over the cluster's `tls:` with ALPN h2.
    case http2
}

extension ConfigLoader {
    static func parseUpstreamProtocol(_ node: ConfigNode, proxyProtocol: Int) throws(ConfigError) -> UpstreamProtocol {
        let w = try node.oneOf(["http1", "http2", "auto"], what: "protocol (http1 or http2)")
        if w == "auto" {
            throw node.error("'auto' (pick h2 or http/1.1 by ALPN) is not supported yet; use http2 (with 'tls:' it offers ALPN h2) or http1")
        }
        let p = UpstreamProtocol(rawValue: w) ?? .http1
        if p == .http2 && proxyProtocol != 0 {
            throw node.error("http2 multiplexes many clients on one connection, so it cannot send a PROXY header; drop 'proxy_protocol' or use http1")
        }
        return p
    }
}
