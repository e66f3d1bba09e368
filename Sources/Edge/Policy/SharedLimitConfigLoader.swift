/// `redis:` and `rate_limit.shared`. Every problem is a `file:line: field: problem` error.
extension ConfigLoader {
    static func parseRedis(_ node: ConfigNode) throws(ConfigError) -> RedisConfig {
        let m = try node.mapping(allowed: ["address", "timeout", "on_failure"])
        let address = try m.required("address").socketAddress()
        var r = RedisConfig(address: address, location: node.location, field: node.path)
        if let n = m.optional("timeout") {
            r.timeoutMs = try n.durationMs(min: 1)
            guard r.timeoutMs <= 10_000 else { throw n.error("a Redis timeout is at most 10s, got \(r.timeoutMs)ms") }
        }
        if let n = m.optional("on_failure") {
            r.onFailure = try n.oneOf(["open", "closed"], what: "on_failure mode") == "open" ? .open : .closed
        }
        return r
    }

    /// `shared: local | redis | { redis: ..., sync_interval, max_keys }`; nil = local.
    static func parseSharedLimit(_ node: ConfigNode) throws(ConfigError) -> SharedLimitConfig? {
        var s = SharedLimitConfig(redis: nil, location: node.location, field: node.path)
        if case .mapping = node.node {
            let m = try node.mapping(allowed: ["redis", "sync_interval", "max_keys"])
            let rn = try m.required("redis")
            if case .mapping = rn.node {
                s.redis = try parseRedis(rn)
            } else {
                _ = try rn.oneOf(["redis"], what: "Redis reference (write 'redis' to use the top-level redis: block, or a mapping)")
                s.location = rn.location
                s.field = rn.path
            }
            if let n = m.optional("sync_interval") {
                s.syncIntervalMs = try n.durationMs(min: 5)
                guard s.syncIntervalMs <= 10_000 else { throw n.error("sync_interval is at most 10s, got \(s.syncIntervalMs)ms") }
            }
            if let n = m.optional("max_keys") {
                s.maxKeys = try n.int(in: 1...65536)
                // Slots are probed in a power-of-two table.
                var p = 1
                while p < s.maxKeys { p <<= 1 }
                s.maxKeys = p
            }
            return s
        }
        return try node.oneOf(["local", "redis"], what: "rate-limit sharing") == "redis" ? s : nil
    }

    /// Fills `shared: redis` from the top-level block and checks that every
    /// shared limit talks to one Redis server (one connection per process).
    static func resolveSharedLimits(_ config: inout EdgeConfig) throws(ConfigError) {
        var first: RedisConfig? = nil
        for i in config.policies.indices {
            guard case .rateLimit(var r) = config.policies[i].kind, var s = r.shared else { continue }
            if s.redis == nil {
                guard let top = config.redis else {
                    throw ConfigError(location: s.location, field: s.field,
                                      problem: "'shared: redis' needs a top-level 'redis: { address: ... }' block (or write the address here: shared: { redis: { address: ... } })")
                }
                s.redis = top
            }
            guard let redis = s.redis else { continue }
            if let f = first, f.address.text != redis.address.text {
                throw ConfigError(location: redis.location, field: redis.field.isEmpty ? s.field : redis.field,
                                  problem: "all shared rate limits use one Redis server per process; this names \(redis.address.text) but another limit uses \(f.address.text)")
            }
            if first == nil { first = redis }
            r.shared = s
            config.policies[i].kind = .rateLimit(r)
        }
    }
}
