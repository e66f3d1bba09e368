/// `clusters[]`: upstream groups, their endpoints, balancing and pool settings.
extension ConfigLoader {
    static let clusterFields = ["name", "endpoints", "balance", "hash_on", "connect_timeout", "max_idle", "idle_timeout", "dns_refresh",
                                "proxy_protocol", "tls", "protocol", "allow_metadata_addresses"] + resilienceFields
    static let endpointFields = ["address", "weight"]

    static func parseClusters(_ node: ConfigNode) throws(ConfigError) -> [ClusterConfig] {
        var clusters: [ClusterConfig] = []
        for item in try node.list() {
            let c = try parseCluster(item)
            if let first = clusters.firstIndex(where: { $0.name == c.name }) {
                throw item.error("duplicate cluster name '\(c.name)' (first defined at line \(clusters[first].location.line))")
            }
            clusters.append(c)
        }
        return clusters
    }

    static func parseCluster(_ node: ConfigNode) throws(ConfigError) -> ClusterConfig {
        let m = try node.mapping(allowed: clusterFields)
        let name = try name(m.required("name"))
        let list = try m.required("endpoints")
        var endpoints: [EndpointConfig] = []
        for item in try list.list() {
            let e = try parseEndpoint(item)
            if let dup = endpoints.first(where: { $0.address.canonicalKey == e.address.canonicalKey }) {
                let same = dup.address.text == e.address.text ? "" : " (same address as \(dup.address.text))"
                throw item.error("duplicate endpoint \(e.address.text)\(same)")
            }
            endpoints.append(e)
        }
        guard !endpoints.isEmpty else { throw list.error("cluster '\(name)' has no endpoints; add at least one host:port") }
        var c = ClusterConfig(name: name, endpoints: endpoints, location: node.location)
        if let n = m.optional("balance") {
            let words = [BalancePolicy.roundRobin, .weightedRoundRobin, .leastConnections, .randomTwo, .consistentHash, .leastLatency].map(\.rawValue)
            let w = try n.oneOf(words, what: "balance policy")
            c.balance = BalancePolicy(rawValue: w) ?? .roundRobin
        }
        if let n = m.optional("hash_on") {
            guard c.balance == .consistentHash else {
                throw n.error("hash_on needs 'balance: consistent_hash' (balance is \(c.balance.rawValue))")
            }
            c.hashOn = try hashOn(n)
        }
        if let n = m.optional("connect_timeout") { c.connectTimeoutMs = try n.durationMs() }
        if let n = m.optional("max_idle") { c.maxIdlePerEndpoint = try n.int(in: 0...100_000) }
        if let n = m.optional("idle_timeout") { c.idleTimeoutMs = try n.durationMs() }
        if let n = m.optional("dns_refresh") { c.dnsRefreshMs = try n.durationMs(min: 1000) }
        if let n = m.optional("proxy_protocol") {
            switch try n.oneOf(["v1", "v2", "off"], what: "proxy_protocol") {
            case "v1": c.sendProxyProtocol = 1
            case "v2": c.sendProxyProtocol = 2
            default: c.sendProxyProtocol = 0
            }
        }
        if let n = m.optional("protocol") { c.upstreamProtocol = try parseUpstreamProtocol(n, proxyProtocol: c.sendProxyProtocol) }
        if let n = m.optional("tls") { c.tls = try parseClusterTLS(n, alpnH2: c.upstreamProtocol == .http2) }
        c.resilience = try parseResilience(m, endpointCount: endpoints.count)
        if let n = m.optional("allow_metadata_addresses") { c.allowMetadataAddresses = try n.bool() }
        try checkMetadataGuard(c, m)
        return c
    }

    /// `client_ip`, `{header: NAME}` or `{cookie: NAME}`.
    static func hashOn(_ node: ConfigNode) throws(ConfigError) -> HashKeySource {
        if case .scalar = node.node {
            _ = try node.oneOf(["client_ip"], what: "hash_on source (or {header: NAME} / {cookie: NAME})")
            return .clientIP
        }
        let m = try node.mapping(allowed: ["header", "cookie"])
        guard m.entries.count == 1, let e = m.entries.first else {
            throw node.error("give exactly one of {header: NAME} or {cookie: NAME}")
        }
        let name = try e.value.nonEmptyString()
        guard name.utf8.allSatisfy(isTokenByte) else { throw e.value.error("'\(name)' is not a valid \(e.key) name") }
        return e.key == "header" ? .header(name) : .cookie(name)
    }

    /// `"host:port"` or `{ address: "host:port", weight: N }`. Host names are
    /// resolved now (first getaddrinfo result) and remembered in `hostName`
    /// for re-resolution every `dns_refresh`. A name that does not resolve is
    /// kept (with `resolveFailure`, reported as a warning): one DNS hiccup must
    /// not block a start or a reload of everything else.
    static func parseEndpoint(_ node: ConfigNode) throws(ConfigError) -> EndpointConfig {
        if case .mapping = node.node {
            let m = try node.mapping(allowed: endpointFields)
            var e = try endpoint(try m.required("address"))
            if let w = m.optional("weight") { e.weight = try w.int(in: 1...10_000) }
            return e
        }
        return try endpoint(node)
    }

    private static func endpoint(_ node: ConfigNode) throws(ConfigError) -> EndpointConfig {
        let text = try node.string()
        do {
            let r = try ConfigValues.resolveEndpoint(text)
            return EndpointConfig(address: r.address, hostName: r.hostName, resolveFailure: r.failure, location: node.location)
        } catch {
            throw node.error(error)
        }
    }
}
