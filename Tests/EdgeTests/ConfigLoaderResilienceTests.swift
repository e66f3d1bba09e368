import XCTest
@testable import Edge

/// `health_check`, `outlier_detection`, `panic_threshold`, `circuit_breakers`
/// and `retry` on clusters: values land in the model, and every field's bad
/// value fails with `file:line: field: problem`.
final class ConfigLoaderResilienceTests: XCTestCase {
    /// Base config; `extra` goes under the cluster (line 9 onwards, 4-space indent).
    static func yaml(_ extra: String) -> String {
        """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            routes:
              - cluster: api
        clusters:
          - name: api
            endpoints: ["127.0.0.1:9000", "127.0.0.1:9001"]
        \(extra)
        """
    }

    func testFullResilienceConfig() throws {
        let c = try ConfigLoader.parse(yaml: Self.yaml("""
            health_check: { type: http, path: /healthz, method: head, host: health.local, expect_status: [200, "300-399"], interval: 2s, timeout: 500ms, healthy_threshold: 3, unhealthy_threshold: 4, jitter: 100ms }
            outlier_detection: { consecutive_5xx: 7, consecutive_connect_failures: 2, base_ejection_time: 10s, max_ejection_time: 1m, max_ejection_percent: 50% }
            panic_threshold: 30%
            circuit_breakers: { max_connections: 100, max_pending_requests: 10, max_requests: 50, max_retries: 5 }
            retry: { on: [connect-failure, reset, 502, 503, 504, idempotent-timeout], attempts: 4, per_try_timeout: 1s, backoff: 10ms..100ms, budget: 25% }
        """), file: "edge.yaml")
        let r = c.clusters[0].resilience
        let h = try XCTUnwrap(r.healthCheck)
        XCTAssertEqual(h.kind, .http)
        XCTAssertEqual(h.path, "/healthz")
        XCTAssertEqual(h.method, "HEAD")
        XCTAssertEqual(h.host, "health.local")
        XCTAssertEqual(h.expectStatus, [200...200, 300...399])
        XCTAssertEqual(h.intervalMs, 2000)
        XCTAssertEqual(h.timeoutMs, 500)
        XCTAssertEqual(h.healthyThreshold, 3)
        XCTAssertEqual(h.unhealthyThreshold, 4)
        XCTAssertEqual(h.jitterMs, 100)
        XCTAssertEqual(r.outlier, OutlierConfig(consecutive5xx: 7, consecutiveConnectFailures: 2, baseEjectionMs: 10_000,
                                                maxEjectionMs: 60_000, maxEjectionPercent: 50))
        XCTAssertEqual(r.panicThresholdPercent, 30)
        XCTAssertEqual(r.circuitBreakers, CircuitBreakerConfig(maxConnections: 100, maxPendingRequests: 10, maxRequests: 50, maxRetries: 5))
        let rt = try XCTUnwrap(r.retry)
        XCTAssertEqual(rt.on, [.connectFailure, .reset, .status502, .status503, .status504, .idempotentTimeout])
        XCTAssertEqual(rt.attempts, 4)
        XCTAssertEqual(rt.perTryTimeoutMs, 1000)
        XCTAssertEqual(rt.backoffBaseMs, 10)
        XCTAssertEqual(rt.backoffMaxMs, 100)
        XCTAssertEqual(rt.budgetPercent, 25)
    }

    func testUDPAndTCPChecksAndDefaults() throws {
        let udp = try ConfigLoader.parse(yaml: Self.yaml("    health_check: { type: udp, send: hello, expect: olleh }"), file: "edge.yaml")
        XCTAssertEqual(udp.clusters[0].resilience.healthCheck?.send, "hello")
        XCTAssertEqual(udp.clusters[0].resilience.healthCheck?.expect, "olleh")
        let tcp = try ConfigLoader.parse(yaml: Self.yaml("    health_check: { type: tcp }\n    retry: {}"), file: "edge.yaml")
        XCTAssertEqual(tcp.clusters[0].resilience.healthCheck?.kind, .tcp)
        XCTAssertEqual(tcp.clusters[0].resilience.retry, RetryConfig())
        XCTAssertNil(tcp.clusters[0].resilience.outlier)
        XCTAssertEqual(tcp.clusters[0].resilience.panicThresholdPercent, 50)
    }

    /// Limits are split over workers (ceil), retries compiled only with attempts > 1.
    func testCompiledShares() {
        var r = ClusterResilienceConfig()
        r.circuitBreakers = CircuitBreakerConfig(maxConnections: 10, maxPendingRequests: 1, maxRequests: 7, maxRetries: 0)
        r.retry = RetryConfig()
        let c = CompiledResilience(r, workers: 4)
        XCTAssertEqual(c.maxConnections, 3)
        XCTAssertEqual(c.maxPending, 1)
        XCTAssertEqual(c.maxRequests, 2)
        XCTAssertEqual(c.maxRetries, 0)
        XCTAssertEqual(c.attempts, 3)
        XCTAssertEqual(c.retryOn, RetryConfig.On([.connectFailure, .reset]).rawValue)
        r.retry?.attempts = 1
        XCTAssertEqual(CompiledResilience(r, workers: 1).retryOn, 0)
    }

    static let errorCases: [(String, String)] = [
        ("    health_check: { type: icmp }",
         "edge.yaml:9: clusters[0].health_check.type: unknown health check type 'icmp', expected one of: http, tcp, udp"),
        ("    health_check: { typo: 1 }",
         "edge.yaml:9: clusters[0].health_check.typo: unknown field 'typo', expected one of: type, path, method, host, expect_status, interval, timeout, healthy_threshold, unhealthy_threshold, jitter, send, expect"),
        ("    health_check: { path: health }",
         "edge.yaml:9: clusters[0].health_check.path: must start with '/' and contain no spaces or control characters, got 'health'"),
        ("    health_check: { method: \"G T\" }",
         "edge.yaml:9: clusters[0].health_check.method: 'G T' is not a valid HTTP method token"),
        ("    health_check: { host: \"a b\" }",
         "edge.yaml:9: clusters[0].health_check.host: host must be printable ASCII without spaces"),
        ("    health_check: { expect_status: [\"200-99\"] }",
         "edge.yaml:9: clusters[0].health_check.expect_status[0]: statuses must be between 100 and 599 with low <= high, got '200-99'"),
        ("    health_check: { expect_status: [ok] }",
         "edge.yaml:9: clusters[0].health_check.expect_status[0]: expected a status like 200 or a range like 200-399, got 'ok'"),
        ("    health_check: { expect_status: [] }",
         "edge.yaml:9: clusters[0].health_check.expect_status: give at least one status or range like 200-399"),
        ("    health_check: { interval: 5ms }",
         "edge.yaml:9: clusters[0].health_check.interval: must be at least 10ms, got '5ms'"),
        ("    health_check: { timeout: 1 }",
         "edge.yaml:9: clusters[0].health_check.timeout: duration needs a unit: ms, s, m, h (e.g. '1s'), got '1'"),
        ("    health_check: { interval: 1s, timeout: 2s }",
         "edge.yaml:9: clusters[0].health_check.timeout: timeout (2000ms) must not exceed interval (1000ms)"),
        ("    health_check: { healthy_threshold: 0 }",
         "edge.yaml:9: clusters[0].health_check.healthy_threshold: must be between 1 and 1000, got 0"),
        ("    health_check: { unhealthy_threshold: 1001 }",
         "edge.yaml:9: clusters[0].health_check.unhealthy_threshold: must be between 1 and 1000, got 1001"),
        ("    health_check: { interval: 1s, jitter: 2s }",
         "edge.yaml:9: clusters[0].health_check.jitter: jitter (2000ms) must not exceed interval (1000ms)"),
        ("    health_check: { type: tcp, path: /x }",
         "edge.yaml:9: clusters[0].health_check.path: only applies to 'type: http' health checks (type is tcp)"),
        ("    health_check: { type: http, send: x }",
         "edge.yaml:9: clusters[0].health_check.send: only applies to 'type: udp' health checks (type is http)"),
        ("    health_check: { type: udp, expect: \"\" }",
         "edge.yaml:9: clusters[0].health_check.expect: must not be empty"),
        ("    outlier_detection: { consecutive_5xx: -1 }",
         "edge.yaml:9: clusters[0].outlier_detection.consecutive_5xx: must be between 0 and 10000, got -1"),
        ("    outlier_detection: { consecutive_connect_failures: x }",
         "edge.yaml:9: clusters[0].outlier_detection.consecutive_connect_failures: expected an integer, got 'x'"),
        ("    outlier_detection: { base_ejection_time: 0s }",
         "edge.yaml:9: clusters[0].outlier_detection.base_ejection_time: must be at least 1ms, got '0s'"),
        ("    outlier_detection: { base_ejection_time: 10s, max_ejection_time: 5s }",
         "edge.yaml:9: clusters[0].outlier_detection.max_ejection_time: max_ejection_time (5000ms) must be at least base_ejection_time (10000ms)"),
        ("    outlier_detection: { max_ejection_percent: 101% }",
         "edge.yaml:9: clusters[0].outlier_detection.max_ejection_percent: expected a percentage between 0 and 100 like 20%, got '101%'"),
        ("    outlier_detection: { consecutive_5xx: 0, consecutive_connect_failures: 0 }",
         "edge.yaml:9: clusters[0].outlier_detection: consecutive_5xx and consecutive_connect_failures are both 0: nothing would ever be ejected (remove outlier_detection instead)"),
        ("    outlier_detection: { bogus: 1 }",
         "edge.yaml:9: clusters[0].outlier_detection.bogus: unknown field 'bogus', expected one of: consecutive_5xx, consecutive_connect_failures, base_ejection_time, max_ejection_time, max_ejection_percent"),
        ("    panic_threshold: lots",
         "edge.yaml:9: clusters[0].panic_threshold: expected a percentage between 0 and 100 like 20%, got 'lots'"),
        ("    circuit_breakers: { max_connections: 0 }",
         "edge.yaml:9: clusters[0].circuit_breakers.max_connections: must be between 1 and 10000000, got 0"),
        ("    circuit_breakers: { max_pending_requests: 0 }",
         "edge.yaml:9: clusters[0].circuit_breakers.max_pending_requests: must be between 1 and 10000000, got 0"),
        ("    circuit_breakers: { max_requests: many }",
         "edge.yaml:9: clusters[0].circuit_breakers.max_requests: expected an integer, got 'many'"),
        ("    circuit_breakers: { max_retries: -2 }",
         "edge.yaml:9: clusters[0].circuit_breakers.max_retries: must be between 0 and 10000000, got -2"),
        ("    circuit_breakers: { max_conns: 1 }",
         "edge.yaml:9: clusters[0].circuit_breakers.max_conns: unknown field 'max_conns', expected one of: max_connections, max_pending_requests, max_requests, max_retries"),
        ("    retry: { on: [gateway-error] }",
         "edge.yaml:9: clusters[0].retry.on[0]: unknown retry condition 'gateway-error', expected one of: connect-failure, reset, 502, 503, 504, idempotent-timeout"),
        ("    retry: { on: [] }",
         "edge.yaml:9: clusters[0].retry.on: give at least one of: connect-failure, reset, 502, 503, 504, idempotent-timeout"),
        ("    retry: { attempts: 11 }",
         "edge.yaml:9: clusters[0].retry.attempts: must be between 1 and 10, got 11"),
        ("    retry: { per_try_timeout: fast }",
         "edge.yaml:9: clusters[0].retry.per_try_timeout: expected a duration like 5s, got 'fast'"),
        ("    retry: { backoff: 250ms..25ms }",
         "edge.yaml:9: clusters[0].retry.backoff: base (250ms) must not exceed max (25ms) in '250ms..25ms'"),
        ("    retry: { backoff: 25..250ms }",
         "edge.yaml:9: clusters[0].retry.backoff: duration needs a unit: ms, s, m, h (e.g. '25s'), got '25'"),
        ("    retry: { budget: 120% }",
         "edge.yaml:9: clusters[0].retry.budget: expected a percentage between 0 and 100 like 20%, got '120%'"),
        ("    retry: { tries: 2 }",
         "edge.yaml:9: clusters[0].retry.tries: unknown field 'tries', expected one of: on, attempts, per_try_timeout, backoff, budget"),
    ]

    func testErrors() {
        for (extra, expected) in Self.errorCases {
            do {
                _ = try ConfigLoader.parse(yaml: Self.yaml(extra), file: "edge.yaml")
                XCTFail("\(extra): expected an error, config was accepted")
            } catch {
                XCTAssertEqual(error.description, expected, extra)
            }
        }
    }

    /// `mirror` on a route (line 6 of this config).
    static func mirrorYAML(_ mirror: String, direct: Bool = false) -> String {
        """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            routes:
              - \(direct ? "direct_response: { status: 200 }" : "cluster: api")
                mirror: \(mirror)
        clusters:
          - name: api
            endpoints: ["127.0.0.1:9000"]
          - name: shadow
            endpoints: ["127.0.0.1:9001"]
        """
    }

    func testMirror() throws {
        let c = try ConfigLoader.parse(yaml: Self.mirrorYAML("{ cluster: shadow, percent: 10% }"), file: "edge.yaml")
        XCTAssertEqual(c.listeners[0].routes[0].mirror, MirrorConfig(cluster: "shadow", percent: 10))
        let cases: [(String, Bool, String)] = [
            ("{ cluster: nowhere }", false, "edge.yaml:6: listeners[0].routes[0].mirror.cluster: unknown cluster 'nowhere' (known: api, shadow)"),
            ("{ cluster: shadow, percent: 200 }", false, "edge.yaml:6: listeners[0].routes[0].mirror.percent: expected a percentage between 0 and 100 like 20%, got '200'"),
            ("{ percent: 5 }", false, "edge.yaml:6: listeners[0].routes[0].mirror: missing required field 'cluster'"),
            ("{ cluster: shadow, share: 5 }", false, "edge.yaml:6: listeners[0].routes[0].mirror.share: unknown field 'share', expected one of: cluster, percent"),
            ("{ cluster: shadow }", true, "edge.yaml:6: listeners[0].routes[0].mirror: a direct_response route sends nothing upstream to mirror"),
        ]
        for (mirror, direct, expected) in cases {
            do {
                _ = try ConfigLoader.parse(yaml: Self.mirrorYAML(mirror, direct: direct), file: "edge.yaml")
                XCTFail("\(mirror): accepted")
            } catch {
                XCTAssertEqual(error.description, expected, mirror)
            }
        }
    }
}
