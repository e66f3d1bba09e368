// Upstream resilience settings of a cluster as the user wrote them:
// `health_check`, `outlier_detection`, `panic_threshold`, `circuit_breakers`
// and `retry`. Parsed by ConfigLoader+Resilience.swift, compiled into
// `CompiledCluster` fields and the health registry (Health/).

/// `health_check:` active probing of every endpoint of the cluster.
struct HealthCheckConfig: Sendable, Equatable {
    enum Kind: String, Sendable { case http, tcp, udp }
    var kind: Kind = .http
    var path = "/"
    var method = "GET"
    /// Host header of HTTP checks (empty: the endpoint address).
    var host = ""
    /// Inclusive status ranges counted as healthy.
    var expectStatus: [ClosedRange<Int>] = [200...399]
    var intervalMs = 5_000
    var timeoutMs = 1_000
    var healthyThreshold = 2
    var unhealthyThreshold = 3
    /// Each probe is delayed by a random 0..<jitter so checks of many endpoints spread out.
    var jitterMs = 0
    /// UDP: datagram sent, and bytes the reply must start with (empty: any reply).
    var send = "ping"
    var expect = ""
}

/// `outlier_detection:` passive ejection from live traffic (Envoy semantics).
struct OutlierConfig: Sendable, Equatable {
    /// Consecutive 5xx answers (connect failures, resets and timeouts count too); 0 = off.
    var consecutive5xx = 5
    /// Consecutive connect failures; 0 = off.
    var consecutiveConnectFailures = 3
    var baseEjectionMs = 30_000
    var maxEjectionMs = 300_000
    var maxEjectionPercent = 10
}

/// `circuit_breakers:` per-cluster limits, split evenly over the workers
/// (each worker enforces ceil(limit / workers) since workers share nothing).
struct CircuitBreakerConfig: Sendable, Equatable {
    var maxConnections = 1_000_000
    var maxPendingRequests = 1_000_000
    var maxRequests = 1_000_000
    var maxRetries = 1_000_000
}

/// `retry:` when and how often a failed attempt is sent to another endpoint.
struct RetryConfig: Sendable, Equatable {
    struct On: OptionSet, Sendable, Equatable {
        let rawValue: UInt8
        static let connectFailure = On(rawValue: 1)
        static let reset = On(rawValue: 2)
        static let status502 = On(rawValue: 4)
        static let status503 = On(rawValue: 8)
        static let status504 = On(rawValue: 16)
        static let idempotentTimeout = On(rawValue: 32)
    }
    var on: On = [.connectFailure, .reset]
    /// Total attempts including the first.
    var attempts = 3
    /// Timeout of one attempt (0: the route's timeout).
    var perTryTimeoutMs = 0
    var backoffBaseMs = 25
    var backoffMaxMs = 250
    /// Retries in flight may be at most this percent of the cluster's requests in flight
    /// (but at least `minRetryConcurrency`).
    var budgetPercent = 20
    /// Retries always allowed per worker and cluster, whatever the budget says.
    static let minRetryConcurrency = 3
}

/// Everything resilience-related of one cluster.
struct ClusterResilienceConfig: Sendable, Equatable {
    var healthCheck: HealthCheckConfig? = nil
    var outlier: OutlierConfig? = nil
    /// Below this percentage of usable endpoints, health is ignored (all are used).
    var panicThresholdPercent = 50
    var circuitBreakers: CircuitBreakerConfig? = nil
    var retry: RetryConfig? = nil
}

/// `routes[].mirror: { cluster: shadow, percent: 10 }`.
struct MirrorConfig: Sendable, Equatable {
    var cluster: String
    /// 0...100; requests picked at random.
    var percent: Int = 100
}
