import XCTest
@testable import Edge

/// `routes[].cache`: values land in the model and every field's bad value
/// fails with `file:line: field: problem`.
final class ConfigLoaderCacheTests: XCTestCase {
    /// The cache block is on line 6.
    static func yaml(_ cache: String, direct: Bool = false) -> String {
        """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            routes:
              - \(direct ? "direct_response: { status: 200 }" : "cluster: api")
                cache: \(cache)
        clusters:
          - name: api
            endpoints: ["127.0.0.1:9000"]
        """
    }

    func testFullCacheConfig() throws {
        let c = try ConfigLoader.parse(yaml: Self.yaml(
            "{ max_size: 64MiB, max_object: 1MiB, default_ttl: 30s, coalesce: false, coalesce_timeout: 2s, allow_set_cookie: true }"), file: "edge.yaml")
        XCTAssertEqual(c.listeners[0].routes[0].cache,
                       CacheConfig(maxSize: 64 << 20, maxObject: 1 << 20, defaultTtlMs: 30_000, coalesce: false,
                                   coalesceTimeoutMs: 2000, allowSetCookie: true))
    }

    func testDefaults() throws {
        XCTAssertEqual(try ConfigLoader.parse(yaml: Self.yaml("{}"), file: "edge.yaml").listeners[0].routes[0].cache, CacheConfig())
        XCTAssertEqual(try ConfigLoader.parse(yaml: Self.yaml("true"), file: "edge.yaml").listeners[0].routes[0].cache, CacheConfig())
        XCTAssertNil(try ConfigLoader.parse(yaml: Self.yaml("{}").replacingOccurrences(of: "        cache: {}\n", with: ""),
                                            file: "edge.yaml").listeners[0].routes[0].cache)
        XCTAssertNil(try ConfigLoader.parse(yaml: Self.yaml("false"), file: "edge.yaml").listeners[0].routes[0].cache)
        // default_ttl may be 0 (no heuristic freshness).
        XCTAssertEqual(try ConfigLoader.parse(yaml: Self.yaml("{ default_ttl: 0s }"), file: "edge.yaml").listeners[0].routes[0].cache?.defaultTtlMs, 0)
    }

    func testEveryFieldIsValidated() {
        let p = "edge.yaml:6: listeners[0].routes[0].cache"
        let cases: [(String, Bool, String)] = [
            ("{ max_size: lots }", false, "\(p).max_size: expected a size like 64KiB (units: B, KiB, MiB, GiB; a bare number is bytes), got 'lots'"),
            ("{ max_size: 1KiB }", false, "\(p).max_size: must be between 64KiB and 64GiB, got '1KiB'"),
            ("{ max_object: 0 }", false, "\(p).max_object: must be between 1B and 256MiB, got '0'"),
            ("{ max_size: 1MiB, max_object: 512KiB }", false, "\(p).max_object: max_object (512KiB) must be at most a quarter of max_size (1MiB)"),
            ("{ default_ttl: soon }", false, "\(p).default_ttl: expected a duration like 5s, got 'soon'"),
            ("{ coalesce: on }", false, "\(p).coalesce: expected true or false, got 'on'"),
            ("{ coalesce_timeout: 0s }", false, "\(p).coalesce_timeout: must be at least 1ms, got '0s'"),
            ("{ allow_set_cookie: 1 }", false, "\(p).allow_set_cookie: expected true or false, got '1'"),
            ("{ size: 1MiB }", false, "\(p).size: unknown field 'size', expected one of: max_size, max_object, default_ttl, coalesce, coalesce_timeout, allow_set_cookie"),
            ("[1]", false, "\(p): expected a mapping with fields: max_size, max_object, default_ttl, coalesce, coalesce_timeout, allow_set_cookie"),
            ("{}", true, "\(p): a direct_response route has nothing to cache"),
        ]
        for (cache, direct, expected) in cases {
            do {
                _ = try ConfigLoader.parse(yaml: Self.yaml(cache, direct: direct), file: "edge.yaml")
                XCTFail("\(cache): expected an error, config was accepted")
            } catch {
                XCTAssertEqual(error.description, expected, cache)
            }
        }
    }
}
