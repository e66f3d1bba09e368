/// `protocol: tcp` listeners: SNI routes (`routes: [{ match: { sni: NAME }, cluster: C }]`,
/// routing the untouched TLS stream by its ClientHello) and the relay settings
/// under `tcp:` (`relay`, `splice_after`, `sni_timeout`).
extension ConfigLoader {
    static let streamRouteFields = ["match", "cluster"]
    static let streamMatchFields = ["sni"]
    static let relayModes = ["auto", "copy", "splice"]

    /// `routes` of a tcp listener: each one `{ match: { sni: NAME }, cluster: C }`.
    static func parseStreamRoutes(_ node: ConfigNode, clusters: [ClusterConfig]) throws(ConfigError) -> [RouteConfig] {
        let items = try node.list()
        guard !items.isEmpty else { throw node.error("routes must not be empty (leave it out and give 'cluster' to relay every connection)") }
        var routes: [RouteConfig] = []
        var seen: [String: Int] = [:]
        for item in items {
            let r = try item.mapping(allowed: streamRouteFields)
            guard let matchNode = r.optional("match") else {
                throw item.error("a tcp route needs 'match: { sni: NAME }' (the listener's 'cluster' is the default)")
            }
            let m = try matchNode.mapping(allowed: streamMatchFields)
            let sniNode = try m.required("sni")
            let sni = try serverName(sniNode)
            if let line = seen[sni.lowercased()] {
                throw sniNode.error("sni '\(sni)' is already routed at line \(line)")
            }
            seen[sni.lowercased()] = sniNode.line
            let cluster = try clusterReference(try r.required("cluster"), clusters: clusters)
            var match = RouteMatchConfig()
            match.host = sni
            routes.append(RouteConfig(match: match, action: .cluster(cluster), location: item.location))
        }
        return routes
    }

    /// An SNI to route on: a host name ("db.example.com") or a wildcard for any
    /// subdomain ("*.example.com"); no port, no IP literal check (clients send names).
    static func serverName(_ node: ConfigNode) throws(ConfigError) -> String {
        let s = try node.nonEmptyString()
        let name = s.hasPrefix("*.") ? String(s.dropFirst(2)) : s
        guard !name.isEmpty, s.utf8.count <= 255,
              name.utf8.allSatisfy({ isNameByte($0) }), !name.hasPrefix("."), !name.hasSuffix("."), !name.contains("..")
        else {
            throw node.error("'\(s)' is not a server name; use a host name like \"db.example.com\" or a wildcard like \"*.example.com\"")
        }
        return s
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x2E || b == 0x5F
    }

    /// Relay settings under `tcp:` besides idle_timeout.
    static func parseRelaySettings(_ t: ConfigMapping, into l: inout ListenerConfig) throws(ConfigError) {
        if let n = t.optional("relay") {
            l.relayMode = RelayModeConfig(rawValue: try n.oneOf(relayModes, what: "relay")) ?? .auto
        }
        if let n = t.optional("splice_after") {
            guard l.relayMode == .auto else { throw n.error("splice_after applies to relay: auto only") }
            l.spliceAfterBytes = Int(try n.sizeBytes(in: 1...(1 << 30)))
        }
        if let n = t.optional("sni_timeout") { l.sniTimeoutMs = try n.durationMs() }
    }
}
