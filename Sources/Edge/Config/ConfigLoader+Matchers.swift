/// `routes[].match`: host, one path condition, methods, header and query
/// conditions. Regexes are compiled here (and thrown away) so a bad pattern
/// is a config error with PCRE2's own message, never a surprise at compile.
extension ConfigLoader {
    static let matchFields = ["host", "path", "path_prefix", "path_regex", "methods", "headers", "query", "sni"]
    static let conditionFields = ["name", "exact", "present", "regex"]

    static func parseMatch(_ node: ConfigNode) throws(ConfigError) -> RouteMatchConfig {
        let m = try node.mapping(allowed: matchFields)
        var r = RouteMatchConfig()
        if let n = m.optional("sni") {
            throw n.error("sni routes relay TLS untouched and apply to protocol tcp listeners; HTTP routes match on 'host'")
        }
        if let n = m.optional("host") { r.host = try host(n) }
        let pathKeys = m.entries.filter { ["path", "path_prefix", "path_regex"].contains($0.key) && !$0.value.isNull }
        if pathKeys.count > 1 {
            throw pathKeys[1].value.error("give only one of 'path', 'path_prefix' or 'path_regex'; '\(pathKeys[0].key)' is already given")
        }
        if let n = m.optional("path") { r.pathExact = try path(n) }
        if let n = m.optional("path_prefix") { r.pathPrefix = try path(n) }
        if let n = m.optional("path_regex") { r.pathRegex = try regex(n) }
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
        if let n = m.optional("headers") {
            for (name, kind) in try conditions(n, what: "header") { r.headers.append(HeaderMatchConfig(name: name, kind: kind)) }
        }
        if let n = m.optional("query") {
            for (name, kind) in try conditions(n, what: "query parameter") { r.query.append(QueryMatchConfig(name: name, kind: kind)) }
        }
        return r
    }

    /// `[ {name: X, exact: v} | {name: X, present: true|false} | {name: X, regex: p} ]`.
    static func conditions(_ node: ConfigNode, what: String) throws(ConfigError) -> [(String, HeaderMatchConfig.Kind)] {
        let items = try node.list()
        guard !items.isEmpty else { throw node.error("must not be empty (leave it out for no \(what) conditions)") }
        var out: [(String, HeaderMatchConfig.Kind)] = []
        for item in items {
            let c = try item.mapping(allowed: conditionFields)
            let nameNode = try c.required("name")
            let name = try nameNode.nonEmptyString()
            if what == "header" {
                try headerName(name, nameNode)
            } else {
                guard !name.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "#") }) else {
                    throw nameNode.error("'\(name)' is not a valid query parameter name (no spaces, '&', '=' or '#'; compared raw, not percent-decoded)")
                }
            }
            let tests = c.entries.filter { $0.key != "name" && !$0.value.isNull }
            guard let test = tests.first else {
                throw item.error("a \(what) condition needs one of 'exact', 'present' or 'regex'")
            }
            if tests.count > 1 {
                throw tests[1].value.error("a \(what) condition takes only one of 'exact', 'present' or 'regex'; '\(test.key)' is already given")
            }
            switch test.key {
            case "exact":
                let v = try test.value.string()
                guard !v.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                    throw test.value.error("must not contain CR, LF or NUL")
                }
                out.append((name, .exact(v)))
            case "present": out.append((name, .present(try test.value.bool())))
            default: out.append((name, .regex(try regex(test.value))))
            }
        }
        return out
    }

    /// A PCRE2 pattern that compiles; the error quotes the pattern, PCRE2's
    /// message and the byte offset it points at.
    static func regex(_ node: ConfigNode) throws(ConfigError) -> String {
        let pattern = try node.nonEmptyString()
        if let e = Regex.validate(pattern) {
            throw node.error("invalid regex '\(pattern)': \(e.message) at offset \(e.offset)")
        }
        return pattern
    }

    /// Exact host, `*.example.com` (subdomains only), or `*` (any → nil).
    static func host(_ node: ConfigNode) throws(ConfigError) -> String? {
        let h = try node.nonEmptyString().lowercased()
        if h == "*" { return nil }
        let wildcard = h.hasPrefix("*.")
        var rest = wildcard ? String(h.dropFirst(2)) : h
        // "example.com." (FQDN form) is the same host; matching drops the dot too.
        if rest.count > 1 && rest.hasSuffix(".") { rest.removeLast() }
        if rest.contains("*") {
            throw node.error("a wildcard host must be a leading '*.' followed by a domain (e.g. '*.example.com'), or '*' for any host; got '\(h)'")
        }
        guard !rest.isEmpty, !rest.hasPrefix("."),
              !rest.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "/") }) else {
            throw node.error("'\(h)' is not a valid host name")
        }
        if !rest.hasPrefix("["), rest.contains(":") {
            throw node.error("host must not include a port (the port is ignored when matching), got '\(h)'")
        }
        return wildcard ? "*." + rest : rest
    }
}
