/// `redis:` (top level) and `rate_limit.shared` as the user wrote them.
/// Parsed by `SharedLimitConfigLoader.swift`; compiled into `SharedLimitPlan`
/// by `PolicyCompiler`. Nothing here is read per request.

/// What a shared limit does while Redis is unreachable.
enum RedisFailureMode: Sendable, Equatable {
    /// Keep serving under the per-worker local token bucket.
    case open
    /// Refuse with 503 `x-edge-error: rate_limit_unavailable`.
    case closed
}

/// `redis: { address: "127.0.0.1:6379", timeout: 50ms, on_failure: open }`.
struct RedisConfig: Sendable {
    var address: SocketAddress
    var timeoutMs = 50
    var onFailure = RedisFailureMode.open
    var location: SourceLocation
    var field: String
}

/// `shared: redis` (the top-level `redis:` block) or
/// `shared: { redis: redis | { address, timeout, on_failure }, sync_interval: 20ms, max_keys: 1024 }`.
struct SharedLimitConfig: Sendable {
    /// nil until resolved against the top-level `redis:` block.
    var redis: RedisConfig?
    /// How often the process pushes its counts and reads the global ones back.
    var syncIntervalMs = SharedLimitConfig.defaultSyncIntervalMs
    /// Distinct keys tracked per worker per window; keys beyond it fall back to the local bucket.
    var maxKeys = 1024
    var location: SourceLocation
    var field: String

    static let defaultSyncIntervalMs = 20
}
