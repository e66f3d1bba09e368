import Glibc

/// `consumers:`, `policies:` and the `policies: [names]` references on
/// listeners and routes. Every problem is a `file:line: field: problem` error.
extension ConfigLoader {
    static let consumerFields = ["name", "api_keys", "basic", "hmac", "groups"]
    static let policyKinds = ["api_key", "basic", "acl", "rate_limit", "ip", "cors", "security_headers", "jwt", "hmac"]
    /// Kinds named by the design but not built yet: refused, never silently ignored.
    static let unbuiltPolicyKinds: Set<String> = []
    static let securityHeaderFields: [(key: String, header: String)] = [
        ("hsts", "Strict-Transport-Security"), ("frame_options", "X-Frame-Options"),
        ("content_type_options", "X-Content-Type-Options"), ("referrer_policy", "Referrer-Policy"),
        ("content_security_policy", "Content-Security-Policy"),
    ]
    /// Consumer groups are compiled into a 64-bit mask.
    static let maxGroups = 64

    static func parseConsumers(_ node: ConfigNode) throws(ConfigError) -> [ConsumerConfig] {
        var out: [ConsumerConfig] = []
        var keys: [String: String] = [:]
        var usernames: Set<String> = []
        var groups: Set<String> = []
        var hmacIDs: Set<String> = []
        for item in try node.list() {
            let m = try item.mapping(allowed: consumerFields)
            let nameNode = try m.required("name")
            let name = try self.name(nameNode)
            guard !out.contains(where: { $0.name == name }) else { throw nameNode.error("consumer '\(name)' is defined twice") }
            var c = ConsumerConfig(name: name, location: item.location)
            if let n = m.optional("api_keys") {
                for k in try n.list() {
                    let key = try k.nonEmptyString()
                    guard key.utf8.count <= 256, key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                        throw k.error("API keys are 1 to 256 visible ASCII characters without spaces")
                    }
                    if let owner = keys[key] { throw k.error("this API key is already given to consumer '\(owner)'") }
                    keys[key] = name
                    c.apiKeys.append(key)
                }
            }
            if let n = m.optional("basic") {
                let b = try n.mapping(allowed: ["username", "password_hash"])
                let userNode = try b.required("username")
                let user = try userNode.nonEmptyString()
                guard !user.utf8.contains(UInt8(ascii: ":")), user.utf8.count <= 128 else {
                    throw userNode.error("a basic-auth username has no ':' and at most 128 bytes")
                }
                guard usernames.insert(user).inserted else { throw userNode.error("username '\(user)' is used by another consumer") }
                let hashNode = try b.required("password_hash")
                c.basicUsername = user
                c.basicPasswordHash = try passwordHash(hashNode)
            }
            if let n = m.optional("hmac") {
                let h = try n.mapping(allowed: ["key_id", "secret"])
                let idNode = try h.required("key_id")
                let id = try idNode.nonEmptyString()
                guard id.utf8.count <= 128, id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: ",") }) else {
                    throw idNode.error("a key_id is 1 to 128 visible ASCII characters without quotes or commas")
                }
                guard hmacIDs.insert(id).inserted else { throw idNode.error("key_id '\(id)' is used by another consumer") }
                c.hmacKeyID = id
                c.hmacSecret = try secret(try h.required("secret"))
            }
            if let n = m.optional("groups") {
                for g in try n.list() {
                    let group = try self.name(g)
                    if !c.groups.contains(group) { c.groups.append(group) }
                    groups.insert(group)
                    guard groups.count <= maxGroups else { throw g.error("at most \(maxGroups) distinct consumer groups") }
                }
            }
            out.append(c)
        }
        return out
    }

    /// `"text"` or `{ env: NAME }` (read when the config loads); at least 16 bytes.
    static func secret(_ node: ConfigNode) throws(ConfigError) -> [UInt8] {
        var bytes: [UInt8]
        if case .mapping = node.node {
            let m = try node.mapping(allowed: ["env"])
            let envNode = try m.required("env")
            let name = try envNode.nonEmptyString()
            guard let v = getenv(name) else { throw envNode.error("environment variable \(name) is not set") }
            bytes = Array(String(cString: v).utf8)
        } else {
            bytes = Array(try node.string().utf8)
        }
        guard bytes.count >= 16, bytes.count <= 1024 else { throw node.error("an HMAC secret has 16 to 1024 bytes, got \(bytes.count)") }
        return bytes
    }

    /// A crypt(3) hash libxcrypt verifies: bcrypt (`$2y$`, `$2b$`, `$2a$`), sha512crypt, sha256crypt, yescrypt.
    static func passwordHash(_ node: ConfigNode) throws(ConfigError) -> String {
        let h = try node.nonEmptyString()
        let prefixes = ["$2y$", "$2b$", "$2a$", "$6$", "$5$", "$y$"]
        guard prefixes.contains(where: { h.hasPrefix($0) }), h.utf8.count <= 512,
              h.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw node.error("expected a crypt(3) hash such as `htpasswd -nbB user pass` prints ($2y$..., $6$..., $y$...)")
        }
        return h
    }

    static func parsePolicies(_ node: ConfigNode, consumers: [ConsumerConfig]) throws(ConfigError) -> [PolicyConfig] {
        var out: [PolicyConfig] = []
        let knownGroups = Set(consumers.flatMap(\.groups))
        for item in try node.list() {
            let m = try item.mapping(allowed: ["name"] + policyKinds)
            let nameNode = try m.required("name")
            let name = try self.name(nameNode)
            guard !out.contains(where: { $0.name == name }) else { throw nameNode.error("policy '\(name)' is defined twice") }
            let given = m.entries.filter { $0.key != "name" }
            guard let first = given.first else {
                throw item.error("policy '\(name)' needs one kind: \(policyKinds.joined(separator: ", "))")
            }
            if given.count > 1 { throw given[1].keyNode.error("a policy has one kind; '\(first.key)' is already given (define another policy)") }
            let n = first.value
            if unbuiltPolicyKinds.contains(first.key) {
                throw first.keyNode.error("'\(first.key)' policies are not built yet (see README: Gateway policies)")
            }
            let kind: PolicyKindConfig
            switch first.key {
            case "api_key": kind = .apiKey(try parseAPIKeyPolicy(n))
            case "basic": kind = .basic(try parseBasicPolicy(n))
            case "acl": kind = .acl(try parseACLPolicy(n, knownGroups: knownGroups))
            case "rate_limit": kind = .rateLimit(try parseRateLimitPolicy(n))
            case "ip": kind = .ip(try parseIPPolicy(n))
            case "cors": kind = .cors(try parseCORSPolicy(n))
            case "jwt": kind = .jwt(try parseJWTPolicy(n))
            case "hmac":
                let h = try n.mapping(allowed: ["clock_skew"])
                var cfg = HMACPolicyConfig()
                if let s = h.optional("clock_skew") { cfg.clockSkewSeconds = max(1, try s.durationMs(min: 1000) / 1000) }
                kind = .hmac(cfg)
            default: kind = .securityHeaders(try parseSecurityHeadersPolicy(n))
            }
            out.append(PolicyConfig(name: name, kind: kind, location: item.location))
        }
        return out
    }

    static func parseAPIKeyPolicy(_ node: ConfigNode) throws(ConfigError) -> APIKeyPolicyConfig {
        let m = try node.mapping(allowed: ["header", "query"])
        var p = APIKeyPolicyConfig()
        if let n = m.optional("header") { let h = try n.nonEmptyString(); try headerName(h, n); p.header = h }
        if let n = m.optional("query") {
            let q = try n.nonEmptyString()
            guard q.utf8.allSatisfy({ isTokenByte($0) && $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "=") }) else {
                throw n.error("'\(q)' is not a plain query parameter name")
            }
            p.query = q
        }
        guard p.header != nil || p.query != nil else { throw node.error("api_key needs 'header', 'query' or both") }
        return p
    }

    static func parseBasicPolicy(_ node: ConfigNode) throws(ConfigError) -> BasicPolicyConfig {
        let m = try node.mapping(allowed: ["realm"])
        var p = BasicPolicyConfig()
        if let n = m.optional("realm") {
            let r = try n.nonEmptyString()
            guard r.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) else {
                throw n.error("a realm is printable ASCII without quotes or backslashes")
            }
            p.realm = r
        }
        return p
    }

    static func parseACLPolicy(_ node: ConfigNode, knownGroups: Set<String>) throws(ConfigError) -> ACLPolicyConfig {
        let m = try node.mapping(allowed: ["allow_groups", "deny_groups"])
        var p = ACLPolicyConfig()
        func groups(_ key: String) throws(ConfigError) -> [String] {
            guard let n = m.optional(key) else { return [] }
            var out: [String] = []
            for g in try n.list() {
                let name = try self.name(g)
                guard knownGroups.contains(name) else { throw g.error("no consumer is in group '\(name)'") }
                out.append(name)
            }
            return out
        }
        p.allowGroups = try groups("allow_groups")
        p.denyGroups = try groups("deny_groups")
        guard !p.allowGroups.isEmpty || !p.denyGroups.isEmpty else { throw node.error("acl needs 'allow_groups' or 'deny_groups'") }
        return p
    }

    static func parseRateLimitPolicy(_ node: ConfigNode) throws(ConfigError) -> RateLimitPolicyConfig {
        let m = try node.mapping(allowed: ["key", "rate", "burst", "shared"])
        let rateNode = try m.required("rate")
        let rateText = try rateNode.string()
        let parts = rateText.split(separator: "/", omittingEmptySubsequences: false)
        let periods: [String: Int] = ["s": 1000, "m": 60_000, "h": 3_600_000]
        guard parts.count == 2, let count = Int(parts[0].trimmingSpaces()), let period = periods[parts[1].trimmingSpaces()] else {
            throw rateNode.error("expected a rate like 100/s (per s, m or h), got '\(rateText)'")
        }
        guard (1...1_000_000).contains(count) else { throw rateNode.error("the count must be between 1 and 1000000, got \(count)") }
        var p = RateLimitPolicyConfig(count: count, periodMs: period, burst: count)
        if let n = m.optional("burst") { p.burst = try n.int(in: 1...1_000_000) }
        if let n = m.optional("key") {
            if case .mapping = n.node {
                let k = try n.mapping(allowed: ["header"])
                let hn = try k.required("header")
                let h = try hn.nonEmptyString()
                try headerName(h, hn)
                p.key = .header(h)
            } else {
                switch try n.oneOf(["consumer", "client_ip", "route"], what: "rate-limit key") {
                case "consumer": p.key = .consumer
                case "route": p.key = .route
                default: p.key = .clientIP
                }
            }
        }
        if let n = m.optional("shared") { p.shared = try parseSharedLimit(n) }
        return p
    }

    static func parseIPPolicy(_ node: ConfigNode) throws(ConfigError) -> IPPolicyConfig {
        let m = try node.mapping(allowed: ["allow", "deny"])
        var p = IPPolicyConfig()
        func blocks(_ key: String) throws(ConfigError) -> [CIDRConfig] {
            guard let n = m.optional(key) else { return [] }
            var out: [CIDRConfig] = []
            for b in try n.list() {
                let text = try b.nonEmptyString()
                do { out.append(try CIDR.parse(text)) } catch { throw b.error(error) }
            }
            return out
        }
        p.allow = try blocks("allow")
        p.deny = try blocks("deny")
        guard !p.allow.isEmpty || !p.deny.isEmpty else { throw node.error("ip needs 'allow', 'deny' or both") }
        return p
    }

    static func parseCORSPolicy(_ node: ConfigNode) throws(ConfigError) -> CORSPolicyConfig {
        let m = try node.mapping(allowed: ["origins", "methods", "headers", "expose_headers", "credentials", "max_age"])
        var p = CORSPolicyConfig()
        let originsNode = try m.required("origins")
        for o in try originsNode.list() {
            let origin = try o.nonEmptyString()
            let ok = origin == "*" || ((origin.hasPrefix("http://") || origin.hasPrefix("https://"))
                && !origin.hasSuffix("/") && origin.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") }))
            guard ok else { throw o.error("an origin is '*' or scheme://host[:port] with no path, got '\(origin)'") }
            p.origins.append(origin)
        }
        guard !p.origins.isEmpty else { throw originsNode.error("cors needs at least one origin") }
        if let n = m.optional("methods") {
            p.methods = []
            for x in try n.list() {
                let t = try x.nonEmptyString()
                guard t.utf8.allSatisfy(isTokenByte) else { throw x.error("'\(t)' is not a method token") }
                p.methods.append(t.uppercased())
            }
        }
        func names(_ key: String) throws(ConfigError) -> [String] {
            guard let n = m.optional(key) else { return [] }
            var out: [String] = []
            for x in try n.list() { let h = try x.nonEmptyString(); try headerName(h, x); out.append(h) }
            return out
        }
        p.headers = try names("headers")
        p.exposeHeaders = try names("expose_headers")
        if let n = m.optional("credentials") { p.credentials = try n.bool() }
        if p.credentials && p.origins.contains("*") {
            throw originsNode.error("'credentials: true' cannot be used with origin '*' (browsers refuse it); list the origins")
        }
        if let n = m.optional("max_age") { p.maxAgeSeconds = try n.durationMs(min: 0) / 1000 }
        return p
    }

    static func parseSecurityHeadersPolicy(_ node: ConfigNode) throws(ConfigError) -> SecurityHeadersPolicyConfig {
        let m = try node.mapping(allowed: securityHeaderFields.map(\.key))
        var p = SecurityHeadersPolicyConfig()
        for (key, header) in securityHeaderFields {
            guard let n = m.optional(key) else { continue }
            p.headers.append((header, try headerValue(n)))
        }
        guard !p.headers.isEmpty else { throw node.error("security_headers needs at least one of: \(securityHeaderFields.map(\.key).joined(separator: ", "))") }
        return p
    }

    /// `policies: [a, b]` on a route or listener: names, each defined once in `policies:`.
    static func policyReferences(_ node: ConfigNode) throws(ConfigError) -> PolicyReferences {
        var names: [String] = []
        for item in try node.list() {
            let n = try name(item)
            guard !names.contains(n) else { throw item.error("policy '\(n)' is listed twice") }
            names.append(n)
        }
        return PolicyReferences(names: names, location: node.location, field: node.path)
    }

    /// After everything is parsed: every referenced policy exists.
    static func checkPolicyReferences(_ config: EdgeConfig) throws(ConfigError) {
        let defined = Set(config.policies.map(\.name))
        var refs: [PolicyReferences] = []
        for l in config.listeners {
            if let r = l.policies { refs.append(r) }
            for route in l.routes { if let r = route.policies { refs.append(r) } }
        }
        let kinds = Dictionary(config.policies.map { ($0.name, $0.kind) }, uniquingKeysWith: { a, _ in a })
        for r in refs {
            for n in r.names where !defined.contains(n) {
                throw ConfigError(location: r.location, field: r.field, problem: "no policy named '\(n)' in 'policies:'")
            }
            // An ACL decides on the consumer an authentication policy found: alone it would refuse everything.
            var hasAuth = false, acl: String? = nil
            for n in r.names {
                switch kinds[n] {
                case .apiKey, .basic, .jwt, .hmac: hasAuth = true
                case .acl: acl = acl ?? n
                default: break
                }
            }
            if let acl, !hasAuth {
                throw ConfigError(location: r.location, field: r.field,
                                  problem: "acl policy '\(acl)' needs an authentication policy (api_key, basic, jwt or hmac) in the same list")
            }
        }
    }
}

/// A `policies: [...]` list and where it was written (checked once all policies are known).
struct PolicyReferences: Sendable {
    var names: [String]
    var location: SourceLocation
    var field: String
}

/// CIDR text → 16-byte address and prefix (IPv4 mapped into ::ffff:0:0/96).
enum CIDR {
    static func parse(_ text: String) throws(ValueError) -> CIDRConfig {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty else { throw ValueError("expected a CIDR like 10.0.0.0/8 or ::1/128, got '\(text)'") }
        guard let (bytes, isV4) = address(String(host)) else { throw ValueError("'\(host)' is not an IPv4 or IPv6 address") }
        let maxPrefix = isV4 ? 32 : 128
        var prefix = maxPrefix
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...maxPrefix).contains(p) else { throw ValueError("prefix length must be 0...\(maxPrefix), got '\(parts[1])'") }
            prefix = p
        }
        return CIDRConfig(address: bytes, prefix: isV4 ? prefix + 96 : prefix, text: text)
    }

    /// 16 bytes (IPv4 mapped) via inet_pton.
    static func address(_ s: String) -> ([UInt8], Bool)? {
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 {
            let b = withUnsafeBytes(of: &v4) { Array($0) }
            return ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + b, true)
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 { return (withUnsafeBytes(of: &v6) { Array($0) }, false) }
        return nil
    }
}

/// Upstream address guard: an endpoint that is (or resolves at load to) a
/// link-local or cloud-metadata address (169.254.0.0/16 — including
/// 169.254.169.254 —, fe80::/10, fd00:ec2::254) is refused unless the cluster
/// sets `allow_metadata_addresses: true`, so a config mistake or a hostile DNS
/// answer at load cannot point a route at instance credentials. (Addresses a
/// later `dns_refresh` resolves are not re-checked yet.)
extension ConfigLoader {
    static func checkMetadataGuard(_ c: ClusterConfig, _ m: ConfigMapping) throws(ConfigError) {
        guard !c.allowMetadataAddresses else { return }
        let items = (try? m.required("endpoints").list()) ?? []
        for (i, e) in c.endpoints.enumerated() where isMetadataAddress(e.address) {
            let at = i < items.count ? items[i] : m.owner
            throw at.error("endpoint \(e.address.text) is a link-local / cloud-metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254); "
                + "set 'allow_metadata_addresses: true' on cluster '\(c.name)' if that is intended")
        }
    }

    static func isMetadataAddress(_ a: SocketAddress) -> Bool {
        var s = a.storage
        return withUnsafeBytes(of: &s) { raw -> Bool in
            guard let (ip, _) = sockaddr_storage.ipAddress(in: raw) else { return false }
            if ip.count == 4 { return ip[0] == 169 && ip[1] == 254 }
            guard ip.count == 16 else { return false }
            if ip[0] == 0xFE && ip[1] & 0xC0 == 0x80 { return true }
            // IPv4-mapped ::ffff:169.254.x.y
            if ip[0..<10].allSatisfy({ $0 == 0 }) && ip[10] == 0xFF && ip[11] == 0xFF { return ip[12] == 169 && ip[13] == 254 }
            let ec2: [UInt8] = [0xFD, 0x00, 0x0E, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54]
            return ip.elementsEqual(ec2)
        }
    }
}
