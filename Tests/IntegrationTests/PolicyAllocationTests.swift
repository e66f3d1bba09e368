// Heap allocations per request on the cached policy path: a route with CORS,
// JWT (token already verified: cache hit), a rate limit and security headers,
// counted by Benchmarks/alloc/alloc_count.c (LD_PRELOAD), as
// PerformanceTests does for the plain path.

import Foundation
import XCTest

final class PolicyAllocationTests: L4TestCase {
    func testCachedPolicyPathDoesNotAllocate() throws {
        let lib = try PerformanceTests.buildAllocCounter(in: w.dir)
        let py = try Paths.require("python3")
        let tool = Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/jwttool.py").path
        let t = try runCommand(py, [tool, "make", w.dir.path], timeout: 60)
        guard t.status == 0, let tokens = try JSONSerialization.jsonObject(with: Data(t.stdoutText.utf8)) as? [String: String],
              let token = tokens["es256"] else { throw HarnessError("jwttool.py failed: \(t.stderr)") }
        let up = try w.port(), port = try w.port()
        try w.startUpstreamPy(port: up)
        try w.startEdge(w.head + """
            consumers:
              - name: alice
            policies:
              - { name: cors, cors: { origins: [ "https://app.example" ], methods: [GET], credentials: true } }
              - { name: jwt, jwt: { jwks_file: jwks.json, issuer: "https://id.example", audiences: [api], algorithms: [ES256], consumer_claim: sub, forward_claims: { sub: X-User-Id } } }
              - { name: limit, rate_limit: { key: consumer, rate: 1000000/s, burst: 1000000 } }
              - { name: secure, security_headers: { hsts: "max-age=600", content_type_options: nosniff } }
            listeners:
              - name: web
                address: "127.0.0.1:\(port)"
                protocol: http
                routes:
                  - match: { path_prefix: "/" }
                    cluster: up
                    policies: [ cors, jwt, limit, secure ]
            clusters:

            """ + cluster("up", [up]), environment: ["LD_PRELOAD": lib])

        let c = try RawClient(port: port)
        defer { c.close() }
        let request = Array("GET /conn HTTP/1.1\r\nHost: alloc.test\r\nOrigin: https://app.example\r\nAuthorization: Bearer \(token)\r\n\r\n".utf8)
        func run(_ n: Int) throws {
            for i in 0..<n {
                try c.send(request)
                let r = try c.readResponse()
                if r.status != 200 || r.header("Access-Control-Allow-Origin") == nil || r.header("RateLimit-Remaining") == nil {
                    throw HarnessError("request \(i): policies did not all run: \(r.summary)")
                }
            }
        }
        func allocations() throws -> Double {
            let m = try HTTP.get(port: w.adminPort, "/metrics")
            guard let v = EdgeHarness.parseMetrics(String(decoding: m.body, as: UTF8.self))["edge_heap_allocations_total"] else {
                throw HarnessError("edge_heap_allocations_total missing from /metrics")
            }
            return v
        }
        try run(2_000)  // warm-up; the first request verified the token, the rest hit the cache
        let a = try allocations()
        let b = try allocations()
        let n = 5_000
        try run(n)
        let d = try allocations()
        let perRequest = (d - b - (b - a)) / Double(n)
        print(String(format: "policy path allocations: %.3f per request (%.0f over %d)", perRequest, d - b - (b - a), n))
        XCTAssertGreaterThan(a, 0, "counter reads 0: is alloc_count.so preloaded?")
        XCTAssertLessThanOrEqual(perRequest, 0.05, "cors + cached jwt + rate limit + security headers must not allocate per request")
    }
}
