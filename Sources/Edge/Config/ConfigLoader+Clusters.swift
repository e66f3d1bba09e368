/// `clusters[]`: upstream groups, their endpoints and pool settings.
extension ConfigLoader {
    static let clusterFields = ["name", "endpoints", "balance", "connect_timeout", "max_idle", "idle_timeout"]
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
            if endpoints.contains(where: { $0.address.canonicalKey == e.address.canonicalKey }) {
                throw item.error("duplicate endpoint \(e.address.text)")
            }
            endpoints.append(e)
        }
        guard !endpoints.isEmpty else { throw list.error("cluster '\(name)' has no endpoints; add at least one host:port") }
        var c = ClusterConfig(name: name, endpoints: endpoints, location: node.location)
        if let n = m.optional("balance") {
            let words = [BalancePolicy.roundRobin, .weightedRoundRobin, .leastConnections, .randomTwo, .consistentHash].map(\.rawValue)
            let w = try n.oneOf(words, what: "balance policy")
            c.balance = BalancePolicy(rawValue: w) ?? .roundRobin
        }
        if let n = m.optional("connect_timeout") { c.connectTimeoutMs = try n.durationMs() }
        if let n = m.optional("max_idle") { c.maxIdlePerEndpoint = try n.int(in: 0...100_000) }
        if let n = m.optional("idle_timeout") { c.idleTimeoutMs = try n.durationMs() }
        return c
    }

    /// `"host:port"` or `{ address: "host:port", weight: N }`.
    static func parseEndpoint(_ node: ConfigNode) throws(ConfigError) -> EndpointConfig {
        if case .mapping = node.node {
            let m = try node.mapping(allowed: endpointFields)
            var e = EndpointConfig(address: try m.required("address").socketAddress())
            if let w = m.optional("weight") { e.weight = try w.int(in: 1...10_000) }
            return e
        }
        return EndpointConfig(address: try node.socketAddress())
    }
}
