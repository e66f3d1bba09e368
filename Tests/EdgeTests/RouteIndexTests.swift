import XCTest
import Protocols
@testable import Edge

/// Matching through the index: each matcher kind and the precedence rules
/// (host exact > wildcard > any; exact path > longest prefix > regex > none;
/// failed conditions fall through; ties keep file order). Each case names the
/// route it expects by its `x-r` direct-response body, so the tables read
/// as "request → route name".
final class RouteIndexTests: XCTestCase {
    /// Routes given as YAML flow mappings; each gets `direct_response` with body = its name.
    private func table(_ routes: [(String, String)], extraClusters: String = "") throws -> RouteTable {
        var yaml = "runtime: { workers: 2 }\nlisteners:\n  - name: web\n    address: 127.0.0.1:18081\n    routes:\n"
        for (name, match) in routes {
            yaml += "      - match: \(match)\n        direct_response: { status: 200, body: \"\(name)\" }\n"
        }
        return try RouteTableTests.table(yaml + extraClusters)
    }

    private func name(_ t: RouteTable, _ r: TestRequest, worker: Int = 0) -> String {
        let i = t.match(r, worker: worker)
        guard i >= 0 else { return "-" }
        return String(decoding: t.routes[i].directBody.buffer, as: UTF8.self)
    }

    private func check(_ t: RouteTable, _ cases: [(TestRequest, String)], file: StaticString = #filePath, line: UInt = #line) {
        for (req, want) in cases {
            XCTAssertEqual(name(t, req), want, "\(req)", file: file, line: line)
        }
    }

    func testHostMatchers() throws {
        let t = try table([
            ("any", "{ path_prefix: /any }"),
            ("star", "{ host: \"*\", path: /star }"),
            ("exact", "{ host: api.example.com }"),
            ("wild", "{ host: \"*.example.com\" }"),
            ("deeper", "{ host: \"*.eu.example.com\" }"),
            ("v6", "{ host: \"[::1]\" }"),
        ])
        check(t, [
            (TestRequest(host: "api.example.com"), "exact"),
            (TestRequest(host: "API.EXAMPLE.com"), "exact"),
            (TestRequest(host: "www.example.com"), "wild"),
            (TestRequest(host: "a.b.example.com"), "wild"),
            (TestRequest(host: "x.eu.example.com"), "deeper"),
            (TestRequest(host: "X.EU.Example.Com"), "deeper"),
            (TestRequest(host: "eu.example.com"), "wild", ),
            (TestRequest(host: "example.com"), "-"),
            (TestRequest(host: ".example.com"), "-"),
            (TestRequest(host: "example.com", path: "/any/x"), "any"),
            (TestRequest(host: "", path: "/star"), "star"),
            (TestRequest(host: "[::1]"), "v6"),
            (TestRequest(host: "notexample.com"), "-"),
        ])
    }

    func testPathMatchers() throws {
        let t = try table([
            ("exact", "{ path: /a/b }"),
            ("p-a", "{ path_prefix: /a/ }"),
            ("p-ab", "{ path_prefix: /a/b }"),
            ("re", "{ path_regex: \"/items/[0-9]+\" }"),
            ("re-any", "{ path_regex: \"/items/.*\" }"),
            ("case", "{ path: /Case }"),
            ("root", "{ path_prefix: / }"),
        ])
        check(t, [
            (TestRequest(path: "/a/b"), "exact"),
            (TestRequest(path: "/a/bc"), "p-ab"),
            (TestRequest(path: "/a/c"), "p-a"),
            (TestRequest(path: "/a/"), "p-a"),
            (TestRequest(path: "/a"), "root"),
            (TestRequest(path: "/items/42"), "re"),
            (TestRequest(path: "/items/42x"), "re-any", ),
            (TestRequest(path: "/x/items/42"), "root"),
            (TestRequest(path: "/Case"), "case"),
            (TestRequest(path: "/case"), "root"),
            (TestRequest(path: ""), "-"),
        ])
    }

    func testMethods() throws {
        let t = try table([("w", "{ path: /x, methods: [POST, PUT, PROPFIND] }"), ("r", "{ path: /x }")])
        check(t, [
            (TestRequest(path: "/x", method: .post), "w"),
            (TestRequest(path: "/x", method: .put), "w"),
            (TestRequest(path: "/x", method: .other), "w"),
            (TestRequest(path: "/x", method: .get), "r"),
        ])
    }

    func testHeaderMatchers() throws {
        let t = try table([
            ("canary", "{ headers: [ { name: X-Env, exact: canary } ] }"),
            ("debug", "{ headers: [ { name: x-debug, present: true } ] }"),
            ("id", "{ headers: [ { name: X-Id, regex: \"[0-9]+\" }, { name: X-Skip, present: false } ] }"),
            ("both", "{ headers: [ { name: A, exact: \"1\" }, { name: B, exact: \"2\" } ] }"),
            ("rest", "{}"),
        ])
        check(t, [
            (TestRequest(headers: [("x-env", "canary")]), "canary"),
            (TestRequest(headers: [("X-ENV", "Canary")]), "rest"),
            (TestRequest(headers: [("X-Env", "prod"), ("X-Env", "canary")]), "canary"),
            (TestRequest(headers: [("X-Debug", "")]), "debug"),
            (TestRequest(headers: [("X-Id", "123")]), "id"),
            (TestRequest(headers: [("X-Id", "123a")]), "rest"),
            (TestRequest(headers: [("X-Id", "")]), "rest"),
            (TestRequest(headers: [("X-Id", "7"), ("X-Skip", "1")]), "rest"),
            (TestRequest(headers: [("A", "1"), ("B", "2")]), "both"),
            (TestRequest(headers: [("A", "1")]), "rest"),
            (TestRequest(headers: [("X-Envy", "canary")]), "rest"),
            (TestRequest(), "rest"),
        ])
    }

    func testQueryMatchers() throws {
        let t = try table([
            ("v2", "{ query: [ { name: version, exact: \"2\" } ] }"),
            ("flag", "{ query: [ { name: debug, present: true } ] }"),
            ("num", "{ query: [ { name: page, regex: \"[0-9]{1,3}\" }, { name: all, present: false } ] }"),
            ("raw", "{ query: [ { name: q, exact: \"a%20b\" } ] }"),
            ("rest", "{}"),
        ])
        check(t, [
            (TestRequest(query: "version=2"), "v2"),
            (TestRequest(query: "a=1&version=2&b"), "v2"),
            (TestRequest(query: "version=22"), "rest"),
            (TestRequest(query: "Version=2"), "rest"),
            (TestRequest(query: "debug"), "flag"),
            (TestRequest(query: "x=1&debug="), "flag"),
            (TestRequest(query: "debugx=1"), "rest"),
            (TestRequest(query: "page=12"), "num"),
            (TestRequest(query: "page=1234"), "rest"),
            (TestRequest(query: "page=12&all"), "rest"),
            (TestRequest(query: "q=a%20b"), "raw"),
            (TestRequest(query: "q=a+b"), "rest"),
            (TestRequest(query: "&&="), "rest"),
            (TestRequest(query: ""), "rest"),
        ])
    }

    func testPrecedence() throws {
        let t = try table([
            ("any-root", "{ path_prefix: / }"),
            ("any-api", "{ path_prefix: /api/ }"),
            ("wild", "{ host: \"*.example.com\", path_prefix: /api/ }"),
            ("exact-host", "{ host: www.example.com, path_prefix: /api/ }"),
            ("exact-host-re", "{ host: www.example.com, path_regex: \"/api/v[0-9]/.*\" }"),
            ("exact-host-long", "{ host: www.example.com, path_prefix: /api/v1/ }"),
            ("exact-host-path", "{ host: www.example.com, path: /api/v1/x }"),
            ("tie-1", "{ path: /tie }"),
            ("tie-2", "{ path: /tie }"),
            ("re-first", "{ path_regex: \"/r/.*\" }"),
            ("re-second", "{ path_regex: \"/r/[a-z]+\" }"),
        ])
        check(t, [
            (TestRequest(host: "www.example.com", path: "/api/v1/x"), "exact-host-path"),
            (TestRequest(host: "www.example.com", path: "/api/v1/y"), "exact-host-long"),
            (TestRequest(host: "www.example.com", path: "/api/v2/y"), "exact-host"),
            (TestRequest(host: "www.example.com", path: "/other"), "any-root"),
            (TestRequest(host: "app.example.com", path: "/api/v2/y"), "wild"),
            (TestRequest(host: "example.org", path: "/api/v2/y"), "any-api"),
            (TestRequest(path: "/tie"), "tie-1"),
            (TestRequest(path: "/r/abc"), "re-first"),
        ])
    }

    func testRegexBelowPrefixAndFallThrough() throws {
        let t = try table([
            ("re", "{ path_regex: \"/api/v[0-9]+/.*\" }"),
            ("prefix-get", "{ path_prefix: /api/, methods: [GET] }"),
            ("prefix-canary", "{ path_prefix: /api/v1/, headers: [ { name: X-Canary, present: true } ] }"),
            ("exact-post", "{ path: /api/v1/users, methods: [POST] }"),
            ("tie-a", "{ path_prefix: /t/, query: [ { name: a, present: true } ] }"),
            ("tie-b", "{ path_prefix: /t/ }"),
            ("tie-c", "{ path_prefix: /t/ }"),
        ])
        check(t, [
            (TestRequest(path: "/api/v1/users", method: .post), "exact-post"),
            (TestRequest(path: "/api/v1/users", method: .get), "prefix-get"),
            (TestRequest(path: "/api/v1/users", method: .put, headers: [("X-Canary", "1")]), "prefix-canary"),
            (TestRequest(path: "/api/v1/users", method: .put), "re"),
            (TestRequest(path: "/api/x", method: .put), "-"),
            (TestRequest(path: "/t/1", query: "a"), "tie-a"),
            (TestRequest(path: "/t/1"), "tie-b"),
        ])
    }

    func testFallThroughAcrossHostLevels() throws {
        let t = try table([
            ("exact-post", "{ host: a.example.com, methods: [POST] }"),
            ("wild-hdr", "{ host: \"*.example.com\", headers: [ { name: X-W, present: true } ] }"),
            ("wild-long", "{ host: \"*.a.example.com\", methods: [PUT] }"),
            ("any", "{}"),
        ])
        check(t, [
            (TestRequest(host: "a.example.com", method: .post), "exact-post"),
            (TestRequest(host: "a.example.com", headers: [("X-W", "")]), "wild-hdr"),
            (TestRequest(host: "a.example.com"), "any"),
            (TestRequest(host: "b.a.example.com", method: .put), "wild-long"),
            (TestRequest(host: "b.a.example.com", method: .get, headers: [("X-W", "")]), "wild-hdr"),
        ])
    }

    func testRegexPerWorkerAndAnchoring() throws {
        let t = try table([("re", "{ path_regex: \"^/a+$\" }"), ("bare", "{ path_regex: \"/b\" }")])
        XCTAssertGreaterThanOrEqual(t.regexMatchData.count, 2, "sized for runtime.workers")
        XCTAssertEqual(name(t, TestRequest(path: "/aaa"), worker: 1), "re")
        XCTAssertEqual(name(t, TestRequest(path: "/b"), worker: 0), "bare")
        XCTAssertEqual(name(t, TestRequest(path: "/bb")), "-", "patterns are anchored at both ends")
        XCTAssertEqual(name(t, TestRequest(path: "/xb")), "-")
        XCTAssertEqual(name(t, TestRequest(path: "/aaa"), worker: 1000), "-", "a worker without match data never matches a regex")
        t.prepareForWorkers(1001)
        XCTAssertEqual(name(t, TestRequest(path: "/aaa"), worker: 1000), "re")
    }

    /// A catastrophically backtracking pattern gives up at the match limit
    /// (counted as no match) instead of pinning the reactor.
    func testBacktrackingIsBounded() throws {
        let t = try table([("evil", "{ path_regex: \"/(a+)+b\" }"), ("rest", "{}")])
        let path = "/" + String(repeating: "a", count: 40)
        XCTAssertEqual(name(t, TestRequest(path: path)), "rest")
        XCTAssertEqual(name(t, TestRequest(path: "/aaab")), "evil")
    }

    func testTablesWithoutRegexNeedNoMatchData() throws {
        let t = try table([("x", "{ path: /x }")])
        XCTAssertEqual(t.regexMatchData.count, 0)
        t.prepareForWorkers(4)
        XCTAssertEqual(t.regexMatchData.count, 0)
    }

    func testMultipleListenersAreSeparate() throws {
        let t = try RouteTableTests.table("""
        listeners:
          - name: a
            address: 127.0.0.1:18081
            routes: [ { match: { host: x.com }, direct_response: { status: 200, body: a } } ]
          - name: b
            address: 127.0.0.1:18082
            routes: [ { match: { path: /b }, direct_response: { status: 200, body: b } } ]
        """)
        XCTAssertEqual(t.match(TestRequest(host: "x.com"), listener: 0), 0)
        XCTAssertEqual(t.match(TestRequest(host: "x.com"), listener: 1), -1)
        XCTAssertEqual(t.match(TestRequest(path: "/b"), listener: 1), 1)
        XCTAssertEqual(t.match(TestRequest(path: "/b"), listener: 0), -1)
    }

    func testCompilesTenThousandRoutes() throws {
        let t = try RouteTableTests.table(RouteMatchBenchmark.config(routes: 10_000))
        XCTAssertEqual(t.routes.count, 10_000)
        XCTAssertEqual(t.listeners[0].routeCount, 10_000)
        XCTAssertEqual(t.match(RouteMatchBenchmark.lastRequest(routes: 10_000)), 9_999)
        XCTAssertEqual(t.match(TestRequest(host: "h00005.example.com", path: "/svc00005/x")), 5)
        XCTAssertEqual(t.match(TestRequest(host: "a.W00004.Example.com", path: "/svc00004/x")), 4)
        XCTAssertEqual(t.match(TestRequest(host: "a.w00004.example.com", path: "/svc00003/x")), -1, "route 3 is for host h00003")
        XCTAssertEqual(t.match(TestRequest(host: "nope.example.com", path: "/x")), -1)
    }

    /// The SWAR case folding agrees with byte-wise ASCII lower-casing for every
    /// byte value and every length (word, half-word and byte tails).
    func testByteHashCaseFolding() {
        var rng = SystemRandomNumberGenerator()
        for len in 0..<40 {
            for _ in 0..<50 {
                let raw = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let lower = raw.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
                raw.withUnsafeBytes { r in lower.withUnsafeBytes { l in
                    let rp = r.baseAddress ?? UnsafeRawPointer(Regex.emptySubject)
                    let lp = l.baseAddress ?? UnsafeRawPointer(Regex.emptySubject)
                    XCTAssertEqual(ByteHash.hash(rp, len, foldCase: true), ByteHash.hash(lp, len, foldCase: false), "\(raw)")
                    XCTAssertTrue(ByteHash.equal(rp, lp, len, foldCase: true), "\(raw)")
                    if len > 0 {
                        var other = lower
                        other[len - 1] ^= 0x01
                        other.withUnsafeBytes { o in
                            XCTAssertFalse(ByteHash.equal(rp, o.baseAddress ?? lp, len, foldCase: true) && (raw[len - 1] | 0x20) != (other[len - 1] | 0x20))
                        }
                    }
                } }
            }
        }
        let all = (0...255).map { UInt8($0) }
        for b in all {
            let word = UInt64(b) * 0x0101_0101_0101_0101
            let want = UInt64(b >= 0x41 && b <= 0x5A ? b | 0x20 : b) * 0x0101_0101_0101_0101
            XCTAssertEqual(ByteHash.lower8(word), want, "byte \(b)")
        }
    }
}
