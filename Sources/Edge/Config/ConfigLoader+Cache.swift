/// `routes[].cache` (see Cache/ResponseCache*.swift): a per-route, per-worker
/// in-memory response cache.
extension ConfigLoader {
    static let cacheFields = ["max_size", "max_object", "default_ttl", "coalesce", "coalesce_timeout", "allow_set_cookie"]

    /// nil for `cache: false`.
    static func parseCache(_ node: ConfigNode) throws(ConfigError) -> CacheConfig? {
        var out = CacheConfig()
        // `cache: true` takes the defaults.
        if case .scalar = node.node, let on = try? node.bool() { return on ? out : nil }
        let m = try node.mapping(allowed: cacheFields)
        if let n = m.optional("max_size") { out.maxSize = try n.sizeBytes(in: (64 << 10)...(64 << 30)) }
        if let n = m.optional("max_object") { out.maxObject = try n.sizeBytes(in: 1...(256 << 20)) }
        if let n = m.optional("default_ttl") { out.defaultTtlMs = try n.durationMs(min: 0) }
        if let n = m.optional("coalesce") { out.coalesce = try n.bool() }
        if let n = m.optional("coalesce_timeout") { out.coalesceTimeoutMs = try n.durationMs() }
        if let n = m.optional("allow_set_cookie") { out.allowSetCookie = try n.bool() }
        if out.maxObject > out.maxSize / 4 {
            throw (m.optional("max_object") ?? node).error(
                "max_object (\(ConfigNode.formatSize(out.maxObject))) must be at most a quarter of max_size (\(ConfigNode.formatSize(out.maxSize)))")
        }
        return out
    }
}
