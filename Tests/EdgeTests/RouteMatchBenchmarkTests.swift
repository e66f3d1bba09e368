import XCTest
import Glibc
import Protocols
@testable import Edge

/// Route-count microbenchmark (print only, no timing assertions): tables of
/// 10 and 10,000 routes (a third exact hosts, a third wildcard hosts, a third
/// any-host, each with its own path prefix) matched against the same request
/// shape, hitting the LAST route of each table, plus a regex route and a miss.
/// Route numbers are zero-padded so both tables have the same key lengths:
/// match cost depends on the number of distinct prefix lengths in a host
/// bucket (one probe each), and this isolates the route count.
/// Run: `swift test --filter RouteMatchBenchmark` (add `-c release` for real numbers).
final class RouteMatchBenchmark: XCTestCase {
    /// `withRegex` appends one `path_regex` route after the `n` prefix routes (index `n`).
    static func config(routes n: Int, withRegex: Bool = false) -> String {
        var y = "listeners:\n  - name: web\n    address: 127.0.0.1:18081\n    routes:\n"
        for i in 0..<n {
            let id = pad(i)
            let host: String
            switch i % 3 {
            case 0: host = "host: h\(id).example.com, "
            case 1: host = "host: \"*.w\(id).example.com\", "
            default: host = ""
            }
            y += "      - { match: { \(host)path_prefix: /svc\(id)/ }, cluster: api }\n"
        }
        if withRegex { y += "      - { match: { path_regex: \"/items/[0-9]+/detail\" }, cluster: api }\n" }
        return y + "clusters:\n  - { name: api, endpoints: [\"127.0.0.1:9000\"] }\n"
    }

    static func pad(_ i: Int) -> String {
        let s = String(i)
        return String(repeating: "0", count: max(0, 5 - s.count)) + s
    }

    /// A request for route `routes - 1` (the last one in file order).
    static func lastRequest(routes n: Int) -> TestRequest {
        let i = n - 1, id = pad(i)
        let host = i % 3 == 1 ? "a.w\(id).example.com" : "h\(id).example.com"
        return TestRequest(host: host, path: "/svc\(id)/users/42", query: "page=1",
                           headers: [("User-Agent", "bench"), ("Accept", "*/*")])
    }

    /// Nanoseconds per `match` call for `req`, best of 5 rounds.
    static func nsPerMatch(_ t: RouteTable, _ r: TestRequest, iterations: Int) -> (ns: Double, route: Int) {
        let host = Array(r.host.utf8), path = Array(r.path.utf8), query = Array(r.query.utf8)
        var head: [UInt8] = []
        var fields: [HeaderField] = []
        for (n, v) in r.headers {
            let no = head.count; head += Array(n.utf8) + Array(": ".utf8)
            let vo = head.count; head += Array(v.utf8) + [13, 10]
            fields.append(HeaderField(name: ByteRange(offset: Int32(no), length: Int32(n.utf8.count)),
                                      value: ByteRange(offset: Int32(vo), length: Int32(v.utf8.count)), kind: .other))
        }
        var best = Double.infinity
        var route = -1
        host.withUnsafeBytes { h in path.withUnsafeBytes { p in query.withUnsafeBytes { q in
            head.withUnsafeBytes { hd in fields.withUnsafeBufferPointer { f in
                let view = RequestView(host: h, path: p, query: q, method: .get, head: hd, headers: f, clientIP: h)
                for _ in 0..<5 {
                    var sink = 0
                    let start = now()
                    for _ in 0..<iterations { sink &+= t.match(listener: 0, view, worker: 0) }
                    let ns = Double(now() - start) / Double(iterations)
                    best = min(best, ns)
                    route = sink / iterations
                }
            } } } } }
        return (best, route)
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    func testRouteCountDoesNotChangeMatchCost() throws {
        let iterations = 200_000
        var lines: [String] = []
        for n in [10, 10_000] {
            var start = Self.now()
            let t = try RouteTableTests.table(Self.config(routes: n, withRegex: true))
            let compileMs = Double(Self.now() - start) / 1e6
            start = Self.now()
            let hit = Self.nsPerMatch(t, Self.lastRequest(routes: n), iterations: iterations)
            let miss = Self.nsPerMatch(t, TestRequest(host: "nope.example.com", path: "/nothing/here"), iterations: iterations)
            let regex = Self.nsPerMatch(t, TestRequest(host: "x.example.org", path: "/items/42/detail"), iterations: iterations)
            XCTAssertEqual(hit.route, n - 1)
            XCTAssertEqual(miss.route, -1)
            XCTAssertEqual(regex.route, n)
            lines.append(String(format: "RouteMatchBenchmark: %6d routes: hit(last prefix route) %7.1f ns/match, regex hit %7.1f ns/match, miss %7.1f ns/match (load+compile %.1f ms",
                                n, hit.ns, regex.ns, miss.ns, compileMs) + ", pcre2 jit \(t.regexes.allSatisfy(\.jit) ? "on" : "off"))")
        }
        for l in lines { print(l) }
    }
}
