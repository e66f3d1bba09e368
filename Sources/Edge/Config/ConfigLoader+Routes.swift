/// `listeners[].routes[]`: the action (one cluster, a weighted split, or a
/// direct response) and per-route rewrites. Match conditions are in
/// `ConfigLoader+Matchers.swift`, header edits in `ConfigLoader+HeaderEdits.swift`.
extension ConfigLoader {
    static let routeFields = ["match", "cluster", "clusters", "direct_response", "strip_prefix", "prefix_rewrite",
                              "host_rewrite", "request_headers", "response_headers", "timeout", "mirror", "cache", "name", "access_log", "policies", "compression"]
    static let directResponseFields = ["status", "headers", "body"]
    static let splitFields = ["name", "weight"]
    /// Framing headers Edge writes itself for a direct response.
    static let reservedResponseHeaders: Set<String> = ["content-length", "transfer-encoding", "connection"]

    static func parseRoute(_ node: ConfigNode, clusters: [ClusterConfig]) throws(ConfigError) -> RouteConfig {
        let m = try node.mapping(allowed: routeFields)
        var match = RouteMatchConfig()
        if let n = m.optional("match") { match = try parseMatch(n) }

        let given = ["cluster", "clusters", "direct_response"].compactMap { k in m.optional(k).map { (k, $0) } }
        guard let (kind, actionNode) = given.first else {
            throw node.error("a route needs one of 'cluster', 'clusters' (weighted split) or 'direct_response'")
        }
        if given.count > 1 {
            throw given[1].1.error("a route takes only one of 'cluster', 'clusters' or 'direct_response'; '\(given[0].0)' is already given")
        }
        let action: RouteAction
        switch kind {
        case "cluster": action = .cluster(try clusterReference(actionNode, clusters: clusters))
        case "clusters": action = .weighted(try parseSplit(actionNode, clusters: clusters))
        default: action = .direct(try parseDirectResponse(actionNode))
        }

        var route = RouteConfig(match: match, action: action, location: node.location)
        if let n = m.optional("strip_prefix") {
            route.stripPrefix = try n.bool()
            if route.stripPrefix && match.pathPrefix == nil {
                throw n.error("strip_prefix needs match.path_prefix")
            }
        }
        if let n = m.optional("prefix_rewrite") {
            guard match.pathPrefix != nil else { throw n.error("prefix_rewrite needs match.path_prefix") }
            if route.stripPrefix {
                throw n.error("give either 'strip_prefix: true' or 'prefix_rewrite', not both (prefix_rewrite: \"/\" strips)")
            }
            route.prefixRewrite = try path(n)
        }
        if let n = m.optional("host_rewrite") { route.hostRewrite = try hostRewrite(n) }
        if let n = m.optional("request_headers") { route.requestHeaders = try parseHeaderEdits(n) }
        if let n = m.optional("response_headers") { route.responseHeaders = try parseHeaderEdits(n) }
        if let n = m.optional("timeout") { route.timeoutMs = try n.durationMs() }
        if let n = m.optional("mirror") {
            if case .direct = action { throw n.error("a direct_response route sends nothing upstream to mirror") }
            route.mirror = try parseMirror(n, clusters: clusters)
        }
        if let n = m.optional("cache") {
            if case .direct = action { throw n.error("a direct_response route has nothing to cache") }
            route.cache = try parseCache(n)
        }
        if let n = m.optional("name") { route.name = try metricsLabel(n) }
        if let n = m.optional("access_log") { route.accessLog = try n.bool() }
        if let n = m.optional("compression") {
            if case .direct = action { throw n.error("a direct_response route has no upstream response to compress") }
            route.compression = try parseCompression(n)
        }
        if let e = m.entries.first(where: { $0.key == "policies" }) { route.policies = try policyReferences(e.value) }
        if case .direct = action {
            for key in ["strip_prefix", "prefix_rewrite", "host_rewrite", "request_headers", "response_headers"] {
                guard let n = m.optional(key), key != "strip_prefix" || route.stripPrefix else { continue }
                throw n.error(key == "response_headers"
                    ? "a direct_response route sets its headers in direct_response.headers"
                    : "'\(key)' changes the request sent upstream; a direct_response route sends none")
            }
        }
        return route
    }

    /// `clusters: [{name: a, weight: 90}, {name: b, weight: 10}]`.
    static func parseSplit(_ node: ConfigNode, clusters: [ClusterConfig]) throws(ConfigError) -> [WeightedClusterConfig] {
        let items = try node.list()
        guard !items.isEmpty else { throw node.error("a weighted split needs at least one {name, weight}") }
        var arms: [WeightedClusterConfig] = []
        for item in items {
            let a = try item.mapping(allowed: splitFields)
            let name = try clusterReference(try a.required("name"), clusters: clusters)
            guard !arms.contains(where: { $0.name == name }) else {
                throw item.error("cluster '\(name)' appears twice in the split; give it one arm with the summed weight")
            }
            let weight = try a.required("weight").int(in: 0...10_000)
            arms.append(WeightedClusterConfig(name: name, weight: weight))
        }
        guard arms.contains(where: { $0.weight > 0 }) else {
            throw node.error("the weights of a split must not all be 0")
        }
        return arms
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
    static func headers(_ node: ConfigNode, check: (String, ConfigNode) throws(ConfigError) -> Void = reservedDirectHeader) throws(ConfigError) -> [(String, String)] {
        var out: [(String, String)] = []
        switch node.node {
        case .mapping(let map):
            for (k, v) in map {
                let keyNode = ConfigNode(node: k, path: node.path, file: node.file)
                let name = try keyNode.nonEmptyString()
                let valueNode = ConfigNode(node: v, path: "\(node.path).\(name)", file: node.file, keyLine: keyNode.line)
                out.append(try header(name: name, nameNode: keyNode, value: valueNode, check: check))
            }
        case .sequence:
            for item in try node.list() {
                let h = try item.mapping(allowed: ["name", "value"])
                let nameNode = try h.required("name")
                out.append(try header(name: try nameNode.nonEmptyString(), nameNode: nameNode, value: try h.required("value"), check: check))
            }
        default:
            throw node.error("expected a mapping of header: value, or a list of {name, value}")
        }
        return out
    }

    static func reservedDirectHeader(_ name: String, _ node: ConfigNode) throws(ConfigError) {
        guard !reservedResponseHeaders.contains(name.lowercased()) else {
            throw node.error("header '\(name)' is set by Edge and cannot be configured")
        }
    }

    static func header(name: String, nameNode: ConfigNode, value: ConfigNode,
                       check: (String, ConfigNode) throws(ConfigError) -> Void) throws(ConfigError) -> (String, String) {
        try headerName(name, nameNode)
        try check(name, nameNode)
        return (name, try headerValue(value))
    }

    static func headerName(_ name: String, _ node: ConfigNode) throws(ConfigError) {
        guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else { throw node.error("'\(name)' is not a valid header name") }
    }

    static func headerValue(_ node: ConfigNode) throws(ConfigError) -> String {
        let v = try node.string()
        guard !v.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
            throw node.error("header values must not contain CR, LF or NUL")
        }
        return v
    }

    static func path(_ node: ConfigNode) throws(ConfigError) -> String {
        let p = try node.string()
        guard p.hasPrefix("/") else { throw node.error("must start with '/', got '\(p)'") }
        guard !p.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) else {
            throw node.error("must not contain spaces, control characters, '?' or '#', got '\(p)'")
        }
        return p
    }

    /// The Host header sent upstream: a host name or IP, optionally with a port.
    static func hostRewrite(_ node: ConfigNode) throws(ConfigError) -> String {
        let h = try node.nonEmptyString()
        guard !h.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || "/?#@*,".utf8.contains($0) }) else {
            throw node.error("'\(h)' is not a valid host (host or host:port, no spaces, '/', '*' or '@')")
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
