/// `clusters[].health_check`, `outlier_detection`, `panic_threshold`,
/// `circuit_breakers` and `retry`: every field validated with a
/// `file:line: field: problem` error.
extension ConfigLoader {
    static let resilienceFields = ["health_check", "outlier_detection", "panic_threshold", "circuit_breakers", "retry"]
    static let healthCheckFields = ["type", "path", "method", "host", "expect_status", "interval", "timeout",
                                    "healthy_threshold", "unhealthy_threshold", "jitter", "send", "expect"]
    static let outlierFields = ["consecutive_5xx", "consecutive_connect_failures", "base_ejection_time",
                                "max_ejection_time", "max_ejection_percent"]
    static let circuitBreakerFields = ["max_connections", "max_pending_requests", "max_requests", "max_retries"]
    static let retryFields = ["on", "attempts", "per_try_timeout", "backoff", "budget"]
    static let retryConditions = ["connect-failure", "reset", "502", "503", "504", "idempotent-timeout"]

    static func parseResilience(_ m: ConfigMapping, endpointCount: Int) throws(ConfigError) -> ClusterResilienceConfig {
        var r = ClusterResilienceConfig()
        if let n = m.optional("health_check") { r.healthCheck = try parseHealthCheck(n) }
        if let n = m.optional("outlier_detection") { r.outlier = try parseOutlier(n) }
        if let n = m.optional("panic_threshold") { r.panicThresholdPercent = try percent(n) }
        if let n = m.optional("circuit_breakers") { r.circuitBreakers = try parseCircuitBreakers(n) }
        if let n = m.optional("retry") { r.retry = try parseRetry(n) }
        return r
    }

    static func parseHealthCheck(_ node: ConfigNode) throws(ConfigError) -> HealthCheckConfig {
        let m = try node.mapping(allowed: healthCheckFields)
        var h = HealthCheckConfig()
        if let n = m.optional("type") {
            h.kind = HealthCheckConfig.Kind(rawValue: try n.oneOf(["http", "tcp", "udp"], what: "health check type")) ?? .http
        }
        let httpOnly = ["path", "method", "host", "expect_status"]
        let udpOnly = ["send", "expect"]
        for e in m.entries {
            if h.kind != .http && httpOnly.contains(e.key) {
                throw e.keyNode.error("only applies to 'type: http' health checks (type is \(h.kind.rawValue))")
            }
            if h.kind != .udp && udpOnly.contains(e.key) {
                throw e.keyNode.error("only applies to 'type: udp' health checks (type is \(h.kind.rawValue))")
            }
        }
        if let n = m.optional("path") {
            let p = try n.nonEmptyString()
            guard p.hasPrefix("/"), p.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw n.error("must start with '/' and contain no spaces or control characters, got '\(p)'")
            }
            h.path = p
        }
        if let n = m.optional("method") {
            let t = try n.nonEmptyString()
            guard t.utf8.allSatisfy(isTokenByte) else { throw n.error("'\(t)' is not a valid HTTP method token") }
            h.method = t.uppercased()
        }
        if let n = m.optional("host") {
            let t = try n.nonEmptyString()
            guard t.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw n.error("host must be printable ASCII without spaces") }
            h.host = t
        }
        if let n = m.optional("expect_status") { h.expectStatus = try statusRanges(n) }
        if let n = m.optional("interval") { h.intervalMs = try n.durationMs(min: 10) }
        if let n = m.optional("timeout") { h.timeoutMs = try n.durationMs(min: 1) }
        if let n = m.optional("healthy_threshold") { h.healthyThreshold = try n.int(in: 1...1000) }
        if let n = m.optional("unhealthy_threshold") { h.unhealthyThreshold = try n.int(in: 1...1000) }
        if let n = m.optional("jitter") { h.jitterMs = try n.durationMs(min: 0) }
        if let n = m.optional("send") {
            let s = try n.nonEmptyString()
            guard s.utf8.count <= 1024 else { throw n.error("at most 1024 bytes, got \(s.utf8.count)") }
            h.send = s
        }
        if let n = m.optional("expect") {
            let s = try n.nonEmptyString()
            guard s.utf8.count <= 1024 else { throw n.error("at most 1024 bytes, got \(s.utf8.count)") }
            h.expect = s
        }
        if h.timeoutMs > h.intervalMs, let n = m.optional("timeout") ?? m.optional("interval") {
            throw n.error("timeout (\(h.timeoutMs)ms) must not exceed interval (\(h.intervalMs)ms)")
        }
        if h.jitterMs > h.intervalMs, let n = m.optional("jitter") {
            throw n.error("jitter (\(h.jitterMs)ms) must not exceed interval (\(h.intervalMs)ms)")
        }
        return h
    }

    /// `[200, 204, "200-399"]` (a single `"200-399"` is accepted too).
    static func statusRanges(_ node: ConfigNode) throws(ConfigError) -> [ClosedRange<Int>] {
        let items: [ConfigNode]
        if case .scalar = node.node { items = [node] } else { items = try node.list() }
        guard !items.isEmpty else { throw node.error("give at least one status or range like 200-399") }
        var out: [ClosedRange<Int>] = []
        for item in items {
            let text = try item.string().trimmingSpaces()
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 1 || parts.count == 2,
                  let lo = Int(parts[0].trimmingSpaces()), let hi = Int((parts.count == 2 ? parts[1] : parts[0]).trimmingSpaces()) else {
                throw item.error("expected a status like 200 or a range like 200-399, got '\(text)'")
            }
            guard (100...599).contains(lo), (100...599).contains(hi), lo <= hi else {
                throw item.error("statuses must be between 100 and 599 with low <= high, got '\(text)'")
            }
            out.append(lo...hi)
        }
        return out
    }

    static func parseOutlier(_ node: ConfigNode) throws(ConfigError) -> OutlierConfig {
        let m = try node.mapping(allowed: outlierFields)
        var o = OutlierConfig()
        if let n = m.optional("consecutive_5xx") { o.consecutive5xx = try n.int(in: 0...10_000) }
        if let n = m.optional("consecutive_connect_failures") { o.consecutiveConnectFailures = try n.int(in: 0...10_000) }
        if let n = m.optional("base_ejection_time") { o.baseEjectionMs = try n.durationMs(min: 1) }
        if let n = m.optional("max_ejection_time") { o.maxEjectionMs = try n.durationMs(min: 1) }
        if let n = m.optional("max_ejection_percent") { o.maxEjectionPercent = try percent(n) }
        if o.maxEjectionMs < o.baseEjectionMs, let n = m.optional("max_ejection_time") ?? m.optional("base_ejection_time") {
            throw n.error("max_ejection_time (\(o.maxEjectionMs)ms) must be at least base_ejection_time (\(o.baseEjectionMs)ms)")
        }
        if o.consecutive5xx == 0 && o.consecutiveConnectFailures == 0 {
            throw node.error("consecutive_5xx and consecutive_connect_failures are both 0: nothing would ever be ejected (remove outlier_detection instead)")
        }
        return o
    }

    static func parseCircuitBreakers(_ node: ConfigNode) throws(ConfigError) -> CircuitBreakerConfig {
        let m = try node.mapping(allowed: circuitBreakerFields)
        var c = CircuitBreakerConfig()
        if let n = m.optional("max_connections") { c.maxConnections = try n.int(in: 1...10_000_000) }
        if let n = m.optional("max_pending_requests") { c.maxPendingRequests = try n.int(in: 1...10_000_000) }
        if let n = m.optional("max_requests") { c.maxRequests = try n.int(in: 1...10_000_000) }
        if let n = m.optional("max_retries") { c.maxRetries = try n.int(in: 0...10_000_000) }
        return c
    }

    static func parseRetry(_ node: ConfigNode) throws(ConfigError) -> RetryConfig {
        let m = try node.mapping(allowed: retryFields)
        var r = RetryConfig()
        if let n = m.optional("on") {
            var on: RetryConfig.On = []
            let items = try n.list()
            guard !items.isEmpty else { throw n.error("give at least one of: \(retryConditions.joined(separator: ", "))") }
            for item in items {
                switch try item.oneOf(retryConditions, what: "retry condition") {
                case "connect-failure": on.insert(.connectFailure)
                case "reset": on.insert(.reset)
                case "502": on.insert(.status502)
                case "503": on.insert(.status503)
                case "504": on.insert(.status504)
                default: on.insert(.idempotentTimeout)
                }
            }
            r.on = on
        }
        if let n = m.optional("attempts") { r.attempts = try n.int(in: 1...10) }
        if let n = m.optional("per_try_timeout") { r.perTryTimeoutMs = try n.durationMs(min: 1) }
        if let n = m.optional("backoff") { (r.backoffBaseMs, r.backoffMaxMs) = try backoff(n) }
        if let n = m.optional("budget") { r.budgetPercent = try percent(n) }
        return r
    }

    /// `25ms..250ms` (base..max) or a single `25ms` (max = 10 × base).
    static func backoff(_ node: ConfigNode) throws(ConfigError) -> (Int, Int) {
        let text = try node.string()
        do throws(ValueError) {
            guard let dots = text.firstRange(of: "..") else {
                let b = try ConfigValues.durationMs(text)
                return (b, min(b &* 10, ConfigValues.maxDurationMs))
            }
            let b = try ConfigValues.durationMs(String(text[..<dots.lowerBound]))
            let mx = try ConfigValues.durationMs(String(text[dots.upperBound...]))
            guard b <= mx else { throw ValueError("base (\(b)ms) must not exceed max (\(mx)ms) in '\(text)'") }
            return (b, mx)
        } catch {
            throw node.error(error)
        }
    }

    /// `20%` or `20` (0...100).
    static func percent(_ node: ConfigNode) throws(ConfigError) -> Int {
        let raw = try node.string().trimmingSpaces()
        let digits = raw.hasSuffix("%") ? String(raw.dropLast()).trimmingSpaces() : raw
        guard let n = Int(digits), (0...100).contains(n) else {
            throw node.error("expected a percentage between 0 and 100 like 20%, got '\(raw)'")
        }
        return n
    }
}
