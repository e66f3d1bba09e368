import XCTest
@testable import Edge

/// `access_log:`, `metrics:`, route `name`/`access_log`, admin token fields.
final class ConfigLoaderObservabilityTests: XCTestCase {
    static let base = ConfigLoaderTests.base

    func parse(_ yaml: String) throws(ConfigError) -> EdgeConfig { try ConfigLoader.parse(yaml: yaml, file: "edge.yaml") }

    func testAccepted() throws {
        setenv("EDGE_UNIT_ADMIN_TOKEN", "0123456789abcdef-token", 1)
        let c = try parse("""
            admin: { address: "127.0.0.1:9901", token_env: EDGE_UNIT_ADMIN_TOKEN, auth_reads: true }
            access_log: { path: /tmp/edge-access.log, format: text, template: "$time $status $$ $route", sample: 0.25, buffer: 64KiB }
            metrics: { histograms: false }
            listeners:
              - name: web
                address: 127.0.0.1:8080
                routes:
                  - cluster: api
                    name: api-v1
                    access_log: false
            clusters:
              - name: api
                endpoints: ["127.0.0.1:9000"]
            """)
        XCTAssertEqual(c.admin.auth.token, Array("0123456789abcdef-token".utf8))
        XCTAssertTrue(c.admin.auth.authReads)
        XCTAssertEqual(c.observability.accessLog?.format, .text)
        XCTAssertEqual(c.observability.accessLog?.sample, 0.25)
        XCTAssertEqual(c.observability.accessLog?.bufferBytes, 65536)
        XCTAssertFalse(c.observability.metrics.histograms)
        XCTAssertEqual(c.listeners[0].routes[0].name, "api-v1")
        XCTAssertFalse(c.listeners[0].routes[0].accessLog)
        XCTAssertNil(try parse("access_log: false\n" + Self.base).observability.accessLog)
        XCTAssertEqual(try parse("access_log: {}\n" + Self.base).observability.accessLog?.path, "stderr")
        guard case .success(let ops) = AccessLogFormat.parse("$time $status $$ $route") else { return XCTFail() }
        XCTAssertEqual(ops.map { $0.1 }, [.time, .status, .route])
        XCTAssertEqual(ops.map { $0.0 }, ["", " ", " $ "])
    }

    static let errorCases: [(String, String, String)] = [
        ("relative path", "access_log: { path: access.log }\n" + base,
         "edge.yaml:1: access_log.path: expected 'stderr' or an absolute file path, got 'access.log'"),
        ("bad format", "access_log: { format: xml }\n" + base,
         "edge.yaml:1: access_log.format: unknown access log format 'xml', expected one of: json, text"),
        ("template without text", "access_log: { template: \"$status\" }\n" + base,
         "edge.yaml:1: access_log.template: template needs 'format: text'"),
        ("unknown field", "access_log: { format: text, template: \"$status $nope\" }\n" + base,
         "edge.yaml:1: access_log.template: unknown access log field '$nope'; known: time, request_id, client, listener, route, cluster, endpoint, method, authority, path, protocol, status, bytes_in, bytes_out, upstream_connect_ms, upstream_first_byte_ms, total_ms, error, tls_version, sni, consumer"),
        ("sample range", "access_log: { sample: 1.5 }\n" + base,
         "edge.yaml:1: access_log.sample: expected a fraction between 0 and 1 (e.g. 0.1), got '1.5'"),
        ("metrics field", "metrics: { buckets: [1] }\n" + base,
         "edge.yaml:1: metrics.buckets: unknown field 'buckets', expected one of: histograms"),
        ("token env unset", "admin: { token_env: EDGE_UNIT_SURELY_UNSET_VAR }\n" + base,
         "edge.yaml:1: admin.token_env: environment variable EDGE_UNIT_SURELY_UNSET_VAR is not set"),
        ("token file missing", "admin: { token_file: /nonexistent/edge.token }\n" + base,
         "edge.yaml:1: admin.token_file: cannot read token file /nonexistent/edge.token: No such file or directory"),
        ("auth_reads without token", "admin: { auth_reads: true }\n" + base,
         "edge.yaml:1: admin.auth_reads: auth_reads needs token_file or token_env"),
        ("route name", base.replacingOccurrences(of: "      - cluster: api", with: "      - cluster: api\n        name: \"a b\""),
         "edge.yaml:6: listeners[0].routes[0].name: a route name is up to 64 letters, digits, '-', '_', '.' or '/', got 'a b'"),
    ]

    func testErrors() {
        setenv("EDGE_UNIT_SHORT_TOKEN", "short", 1)
        var cases = Self.errorCases
        cases.append(("short token", "admin: { token_env: EDGE_UNIT_SHORT_TOKEN }\n" + Self.base,
                      "edge.yaml:1: admin.token_env: environment variable EDGE_UNIT_SHORT_TOKEN: the token must be at least 16 characters"))
        for (name, yaml, expected) in cases {
            do {
                _ = try parse(yaml)
                XCTFail("\(name): expected an error, config was accepted")
            } catch {
                XCTAssertEqual(error.description, expected, name)
            }
        }
    }

    func testAdminAuthGate() {
        var auth = AdminAuthConfig()
        XCTAssertNil(AdminAuth.check(auth, method: "POST", head: Array("POST /reload HTTP/1.1\r\n\r\n".utf8)))
        auth.token = Array("0123456789abcdef".utf8)
        XCTAssertEqual(AdminAuth.check(auth, method: "POST", head: Array("POST /reload HTTP/1.1\r\n\r\n".utf8))?.status, 401)
        XCTAssertNil(AdminAuth.check(auth, method: "GET", head: Array("GET /metrics HTTP/1.1\r\n\r\n".utf8)))
        XCTAssertNil(AdminAuth.check(auth, method: "POST", head: Array("POST /reload HTTP/1.1\r\nauthorization:  bearer 0123456789abcdef \r\n\r\n".utf8)))
        XCTAssertEqual(AdminAuth.check(auth, method: "POST", head: Array("POST /reload HTTP/1.1\r\nAuthorization: Bearer 0123456789abcdeF\r\n\r\n".utf8))?.status, 401)
        XCTAssertEqual(AdminAuth.check(auth, method: "POST", head: Array("POST /reload HTTP/1.1\r\nAuthorization: Bearer 0123456789abcdef0\r\n\r\n".utf8))?.status, 401)
        auth.authReads = true
        XCTAssertEqual(AdminAuth.check(auth, method: "GET", head: Array("GET /metrics HTTP/1.1\r\n\r\n".utf8))?.status, 401)
        XCTAssertFalse(AdminAuth.constantTimeEqual([1, 2], [1, 2, 0]))
        XCTAssertTrue(AdminAuth.constantTimeEqual([1, 2], [1, 2]))
    }

    func testOpenMetricsConversion() {
        let om = OpenMetrics.convert("# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n# TYPE g gauge\ng 1\n")
        XCTAssertEqual(om, "# HELP a A.\n# TYPE a counter\na_total{x=\"1\"} 2\n# TYPE g gauge\ng 1\n# EOF\n")
    }
}
