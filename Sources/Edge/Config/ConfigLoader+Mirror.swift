/// `routes[].mirror` (see Upstream/Mirror.swift).
extension ConfigLoader {
    static func parseMirror(_ node: ConfigNode, clusters: [ClusterConfig]) throws(ConfigError) -> MirrorConfig {
        let m = try node.mapping(allowed: ["cluster", "percent"])
        var out = MirrorConfig(cluster: try clusterReference(m.required("cluster"), clusters: clusters))
        if let n = m.optional("percent") { out.percent = try percent(n) }
        return out
    }
}
