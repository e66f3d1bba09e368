/// `listeners[].routes[]`: match conditions and the action (cluster or
/// direct response).
extension ConfigLoader {
    static let routeFields = ["match", "cluster", "direct_response", "strip_prefix", "timeout"]
    static let matchFields = ["host", "path_prefix", "path", "methods"]
    static let directResponseFields = ["status", "headers", "body"]
    /// Framing headers Edge writes itself for a direct response.
    static let reservedResponseHeaders: Set<String> = ["content-length", "transfer-encoding", "connection"]

    static func parseRoute(_ node: ConfigNode, clusters: [ClusterConfig]) throws(ConfigError) -> RouteConfig {
        let m = try node.mapping(allowed: routeFields)
        var match = RouteMatchConfig()
        if let n = m.optional("match") { match = try parseMatch(n) }

        let action: RouteAction
        switch (m.optional("cluster"), m.optional("direct_response")) {
        case (let c?, nil):
            action = .cluster(try clusterReference(c, clusters: clusters))
        case (nil, let d?):
            action = .direct(try parseDirectResponse(d))
        case (_?, let d?):
            throw d.error("a route takes either 'cluster' or 'direct_response', not both")
        case (nil, nil):
            throw node.error("a route needs 'cluster' or 'direct_response'")
        }
        var route = RouteConfig(match: match, action: action, location: node.location)
        if let n = m.optional("strip_prefix") {
            route.stripPrefix = try n.bool()
            if route.stripPrefix && match.pathPrefix == nil {
                throw n.error("strip_prefix needs match.path_prefix")
            }
        }
        if let n = m.optional("timeout") { route.timeoutMs = try n.durationMs() }
        return route
    }

    static func parseMatch(_ node: ConfigNode) throws(ConfigError) -> RouteMatchConfig {
        let m = try node.mapping(allowed: matchFields)
        var r = RouteMatchConfig()
        if let n = m.optional("host") { r.host = try host(n) }
        if let n = m.optional("path_prefix") { r.pathPrefix = try path(n) }
        if let n = m.optional("path") {
            if m.has("path_prefix") { throw n.error("give either 'path' or 'path_prefix', not both") }
            r.pathExact = try path(n)
        }
        if let n = m.optional("methods") {
            let items = try n.list()
            guard !items.isEmpty else { throw n.error("methods must not be empty (leave it out to match any method)") }
            for item in items {
                let raw = try item.nonEmptyString()
                guard raw.utf8.allSatisfy(isTokenByte) else {
                    throw item.error("'\(raw)' is not an HTTP method token")
                }
                let method = raw.uppercased()
                if !r.methods.contains(method) { r.methods.append(method) }
            }
        }
        return r
    }

    static func parseDirectResponse(_ node: ConfigNode) throws(ConfigError) -> DirectResponseConfig {
        let m = try node.mapping(allowed: directResponseFields)
        let statusNode = try m.required("status")
        var d = DirectResponseConfig(status: try statusNode.int(in: 200...599))
        if let n = m.optional("body") { d.body = try n.string() }
        if (d.status == 204 || d.status == 304) && !d.body.isEmpty {
            throw statusNode.error("status \(d.status) must not have a body")
        }
        if let n = m.optional("headers") { d.headers = try headers(n) }
        return d
    }

    /// `{name: value}` or `[{name: .., value: ..}]` (the list form allows repeats).
    static func headers(_ node: ConfigNode) throws(ConfigError) -> [(String, String)] {
        var out: [(String, String)] = []
        switch node.node {
        case .mapping:
            guard case .mapping(let map) = node.node else { return out }
            for (k, v) in map {
                let keyNode = ConfigNode(node: k, path: node.path, file: node.file)
                let name = try keyNode.nonEmptyString()
                let valueNode = ConfigNode(node: v, path: "\(node.path).\(name)", file: node.file, keyLine: keyNode.line)
                out.append(try header(name: name, nameNode: keyNode, value: valueNode))
            }
        case .sequence:
            for item in try node.list() {
                let h = try item.mapping(allowed: ["name", "value"])
                let nameNode = try h.required("name")
                out.append(try header(name: try nameNode.nonEmptyString(), nameNode: nameNode, value: try h.required("value")))
            }
        default:
            throw node.error("expected a mapping of header: value, or a list of {name, value}")
        }
        return out
    }

    private static func header(name: String, nameNode: ConfigNode, value: ConfigNode) throws(ConfigError) -> (String, String) {
        guard name.utf8.allSatisfy(isTokenByte) else { throw nameNode.error("'\(name)' is not a valid header name") }
        guard !reservedResponseHeaders.contains(name.lowercased()) else {
            throw nameNode.error("header '\(name)' is set by Edge and cannot be configured")
        }
        let v = try value.string()
        guard !v.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
            throw value.error("header values must not contain CR, LF or NUL")
        }
        return (name, v)
    }

    private static func path(_ node: ConfigNode) throws(ConfigError) -> String {
        let p = try node.string()
        guard p.hasPrefix("/") else { throw node.error("must start with '/', got '\(p)'") }
        guard !p.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) else {
            throw node.error("must not contain spaces, control characters, '?' or '#', got '\(p)'")
        }
        return p
    }

    private static func host(_ node: ConfigNode) throws(ConfigError) -> String {
        let h = try node.nonEmptyString().lowercased()
        if h.contains("*") { throw node.error("wildcard hosts are not supported yet, got '\(h)'") }
        guard !h.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "/") }) else {
            throw node.error("'\(h)' is not a valid host name")
        }
        if !h.hasPrefix("["), h.contains(":") {
            throw node.error("host must not include a port (the port is ignored when matching), got '\(h)'")
        }
        return h
    }

    /// RFC 9110 tchar.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }
}
