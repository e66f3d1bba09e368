/// A cluster's circuit-breaker limits (already divided over the workers) and
/// retry policy, flattened for the reactors. Built on the control thread.
struct CompiledResilience {
    /// Per-worker limits (Int32.max: none).
    var maxConnections: Int32 = .max
    var maxPending: Int32 = .max
    var maxRequests: Int32 = .max
    var maxRetries: Int32 = .max
    /// `RetryConfig.On` bits; 0 = no retries.
    var retryOn: UInt8 = 0
    var attempts: UInt8 = 1
    /// 0 = the route's timeout.
    var perTryTimeoutMs: Int32 = 0
    var backoffBaseMs: Int32 = 25
    var backoffMaxMs: Int32 = 250
    var budgetPercent: Int32 = 20
    /// Endpoints can be marked unusable (health checks or outlier detection configured).
    var tracksHealth = false
    /// Outlier detection configured: reactors count failure streaks.
    var countsFailures = false

    init() {}

    init(_ r: ClusterResilienceConfig, workers: Int) {
        let w = max(workers, 1)
        // ceil(limit / workers), at least 1: every worker can serve something.
        func share(_ limit: Int) -> Int32 { Int32(clamping: max(1, (limit + w - 1) / w)) }
        if let cb = r.circuitBreakers {
            maxConnections = share(cb.maxConnections)
            maxPending = share(cb.maxPendingRequests)
            maxRequests = share(cb.maxRequests)
            maxRetries = cb.maxRetries == 0 ? 0 : share(cb.maxRetries)
        }
        if let rt = r.retry, rt.attempts > 1 {
            retryOn = rt.on.rawValue
            attempts = UInt8(clamping: rt.attempts)
            perTryTimeoutMs = Int32(clamping: rt.perTryTimeoutMs)
            backoffBaseMs = Int32(clamping: rt.backoffBaseMs)
            backoffMaxMs = Int32(clamping: rt.backoffMaxMs)
            budgetPercent = Int32(clamping: rt.budgetPercent)
        }
        tracksHealth = r.healthCheck != nil || r.outlier != nil
        countsFailures = r.outlier != nil
    }
}
