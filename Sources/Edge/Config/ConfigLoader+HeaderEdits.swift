/// `request_headers` / `response_headers` on a route:
/// `{ add: {k: v}, set: {k: v}, remove: [k] }` (add/set also take a list of
/// `{name, value}`). Names Edge manages itself are refused: hop-by-hop fields
/// (the proxy strips and rewrites those) and framing (Content-Length,
/// Transfer-Encoding) would break message boundaries; Host has `host_rewrite`.
extension ConfigLoader {
    static let headerEditFields = ["add", "set", "remove"]
    static let hopByHopHeaders: Set<String> = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
                                               "proxy-authenticate", "proxy-authorization"]

    static func parseHeaderEdits(_ node: ConfigNode) throws(ConfigError) -> HeaderEditsConfig {
        let m = try node.mapping(allowed: headerEditFields)
        var e = HeaderEditsConfig()
        if let n = m.optional("add") { e.add = try headers(n, check: editableHeader) }
        if let n = m.optional("set") { e.set = try headers(n, check: editableHeader) }
        if let n = m.optional("remove") {
            let items = try n.list()
            guard !items.isEmpty else { throw n.error("remove must not be empty (leave it out to remove nothing)") }
            for item in items {
                let name = try item.nonEmptyString()
                try headerName(name, item)
                try editableHeader(name, item)
                e.remove.append(name)
            }
        }
        guard !e.isEmpty else { throw node.error("give at least one of: add, set, remove") }
        return e
    }

    static func editableHeader(_ name: String, _ node: ConfigNode) throws(ConfigError) {
        let lower = name.lowercased()
        if hopByHopHeaders.contains(lower) {
            throw node.error("header '\(name)' is hop-by-hop; Edge manages it per connection and it cannot be edited")
        }
        if lower == "content-length" || lower == "transfer-encoding" {
            throw node.error("header '\(name)' frames the message; Edge sets it and it cannot be edited")
        }
        if lower == "host" {
            throw node.error("header 'Host' cannot be edited here; use the route's 'host_rewrite'")
        }
    }
}
