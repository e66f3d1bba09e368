/// `routes[].cache`: what the route's response cache may hold (per worker).
struct CacheConfig: Sendable, Equatable {
    /// Bytes of stored responses (key, head and body) per worker; LRU beyond it.
    var maxSize: UInt64 = 64 << 20
    /// Larger responses pass through uncached.
    var maxObject: UInt64 = 1 << 20
    /// Freshness for 200 responses that give none (no max-age, s-maxage or Expires); 0 = do not cache them.
    var defaultTtlMs: Int = 0
    /// Concurrent misses of one key wait for the first one's response.
    var coalesce = true
    /// How long a coalesced miss waits before going upstream itself.
    var coalesceTimeoutMs: Int = 5_000
    /// Store responses that carry Set-Cookie (the cookie is then served to everyone).
    var allowSetCookie = false
}
