import XCTest
@testable import Edge

/// `redis:` and `rate_limit.shared`: both shapes read back and compiled, then
/// one case per error (`file:line: field: problem`).
final class ConfigLoaderSharedLimitTests: XCTestCase {
    static let full = """
    redis: { address: "127.0.0.1:6379", timeout: 50ms, on_failure: closed }
    policies:
      - { name: per-route, rate_limit: { key: route, rate: 100/s, burst: 200, shared: redis } }
      - name: per-ip
        rate_limit:
          key: client_ip
          rate: 600/m
          shared: { redis: redis, sync_interval: 50ms, max_keys: 1000 }
      - { name: local, rate_limit: { rate: 5/s, shared: local } }
    listeners:
      - name: web
        address: 127.0.0.1:8080
        routes:
          - match: { path_prefix: "/" }
            direct_response: { status: 200, body: "ok" }
            policies: [ per-route, per-ip, local ]
    """

    func testSharedLimitsLoadAndCompile() throws {
        let c = try ConfigLoader.parse(yaml: Self.full, file: "edge.yaml")
        guard case .rateLimit(let a) = c.policies[0].kind, case .rateLimit(let b) = c.policies[1].kind,
              case .rateLimit(let l) = c.policies[2].kind else { return XCTFail("rate limits") }
        XCTAssertEqual(a.shared?.redis?.address.text, "127.0.0.1:6379")
        XCTAssertEqual(a.shared?.redis?.timeoutMs, 50)
        XCTAssertEqual(a.shared?.redis?.onFailure, .closed)
        XCTAssertEqual(a.shared?.syncIntervalMs, SharedLimitConfig.defaultSyncIntervalMs)
        XCTAssertEqual(b.shared?.syncIntervalMs, 50)
        XCTAssertEqual(b.shared?.maxKeys, 1024, "max_keys rounds up to a power of two")
        XCTAssertNil(l.shared)
        let table = RouteTableCompiler.compile(c)
        let hot = try XCTUnwrap(table.policyHot).pointee
        XCTAssertEqual(hot.sharedLimits.count, 2)
        XCTAssertEqual(hot.rateLimits.map(\.shared), [0, 1, -1])
        XCTAssertEqual(hot.sharedLimits[1].periodMs, 60_000)
        XCTAssertTrue(hot.sharedLimits[0].closedOnFailure)
        XCTAssertEqual(table.policySet?.sharedPlans.map(\.policyName), ["per-route", "per-ip"])
    }

    func testInlineRedisNeedsNoTopLevelBlock() throws {
        let yaml = Self.full.replacingOccurrences(of: "redis: { address: \"127.0.0.1:6379\", timeout: 50ms, on_failure: closed }\n", with: "")
            .replacingOccurrences(of: "shared: redis }", with: "shared: { redis: { address: \"[::1]:6380\" } } }")
            .replacingOccurrences(of: "shared: { redis: redis,", with: "shared: { redis: { address: \"[::1]:6380\", on_failure: open },")
        let c = try ConfigLoader.parse(yaml: yaml, file: "edge.yaml")
        guard case .rateLimit(let a) = c.policies[0].kind else { return XCTFail("rate limit") }
        XCTAssertEqual(a.shared?.redis?.address.text, "[::1]:6380")
        XCTAssertEqual(a.shared?.redis?.onFailure, .open)
    }

    private func assertError(_ from: String, _ to: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        let yaml = Self.full.replacingOccurrences(of: from, with: to)
        XCTAssertNotEqual(yaml, Self.full, "replacement did not apply", file: file, line: line)
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: yaml, file: "edge.yaml"), file: file, line: line) { e in
            XCTAssertEqual((e as? ConfigError)?.description, expected, file: file, line: line)
        }
    }

    func testSharedLimitErrorsNameFileLineAndField() {
        assertError("redis: { address: \"127.0.0.1:6379\", timeout: 50ms, on_failure: closed }\n", "",
                    "edge.yaml:2: policies[0].rate_limit.shared: 'shared: redis' needs a top-level 'redis: { address: ... }' block (or write the address here: shared: { redis: { address: ... } })")
        assertError("on_failure: closed", "on_failure: maybe",
                    "edge.yaml:1: redis.on_failure: unknown on_failure mode 'maybe', expected one of: open, closed")
        assertError("timeout: 50ms", "timeout: 0ms",
                    "edge.yaml:1: redis.timeout: must be at least 1ms, got '0ms'")
        assertError("timeout: 50ms", "timeout: 30s",
                    "edge.yaml:1: redis.timeout: a Redis timeout is at most 10s, got 30000ms")
        assertError("address: \"127.0.0.1:6379\"", "address: \"redis.local\"",
                    "edge.yaml:1: redis.address: missing port in 'redis.local'; expected host:port like 127.0.0.1:8080")
        assertError("redis: { address: \"127.0.0.1:6379\",", "redis: { port: 6379,",
                    "edge.yaml:1: redis.port: unknown field 'port', expected one of: address, timeout, on_failure")
        assertError("shared: redis }", "shared: memcached }",
                    "edge.yaml:3: policies[0].rate_limit.shared: unknown rate-limit sharing 'memcached', expected one of: local, redis")
        assertError("sync_interval: 50ms", "sync_interval: 1ms",
                    "edge.yaml:8: policies[1].rate_limit.shared.sync_interval: must be at least 5ms, got '1ms'")
        assertError("sync_interval: 50ms", "sync_interval: 1m",
                    "edge.yaml:8: policies[1].rate_limit.shared.sync_interval: sync_interval is at most 10s, got 60000ms")
        assertError("max_keys: 1000", "max_keys: 0",
                    "edge.yaml:8: policies[1].rate_limit.shared.max_keys: must be between 1 and 65536, got 0")
        assertError("shared: { redis: redis,", "shared: { redis: sentinel,",
                    "edge.yaml:8: policies[1].rate_limit.shared.redis: unknown Redis reference (write 'redis' to use the top-level redis: block, or a mapping) 'sentinel', expected one of: redis")
        assertError("shared: { redis: redis,", "shared: {",
                    "edge.yaml:8: policies[1].rate_limit.shared: missing required field 'redis'")
        assertError("shared: { redis: redis,", "shared: { redis: { address: \"127.0.0.1:6390\" },",
                    "edge.yaml:8: policies[1].rate_limit.shared.redis: all shared rate limits use one Redis server per process; this names 127.0.0.1:6390 but another limit uses 127.0.0.1:6379")
        assertError("shared: { redis: redis,", "shared: { redis: redis, ttl: 5s,",
                    "edge.yaml:8: policies[1].rate_limit.shared.ttl: unknown field 'ttl', expected one of: redis, sync_interval, max_keys")
    }
}
