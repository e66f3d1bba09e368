// HTTP/2 over cleartext (prior knowledge) against the real binary: real
// clients (curl --http2-prior-knowledge, h2load, python h2 through h2probe.py),
// HTTP/1.1 upstreams (upstream.py, recorder.py), the h2 -> h1 translation rules
// and the attack defences (each ends the abusive connection with GOAWAY
// ENHANCE_YOUR_CALM while a normal client keeps being served).

import Foundation
import XCTest

final class HTTP2Tests: EdgeTestCase {
    static var probeScript: String { Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/h2probe.py").path }

    private func startH2() throws -> EdgeHarness {
        var o = EdgeOptions()
        o.listenerExtra = ["    http2: { cleartext: true }"]
        return try startEdge(o)
    }

    private func curlH2(_ h: EdgeHarness, _ args: [String]) throws -> CommandResult {
        try runCommand(try Paths.require("curl"), ["-sS", "--http2-prior-knowledge", "--max-time", "20"] + args, timeout: 30)
    }

    private func probe(_ args: [String], timeout: Double = 30) throws -> [String: Any] {
        let r = try runCommand(try Paths.require("python3"), [HTTP2Tests.probeScript] + args, timeout: timeout)
        guard let j = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] else {
            throw HarnessError("h2probe.py gave no JSON: \(r.stdoutText) \(r.stderr)")
        }
        return j
    }

    private func assertStillServesH2(_ h: EdgeHarness, file: StaticString = #filePath, line: UInt = #line) {
        let r = try? curlH2(h, ["-o", "/dev/null", "-w", "%{http_code} %{http_version}", "http://127.0.0.1:\(h.listenPort)/echo"])
        XCTAssertEqual(r?.stdoutText, "200 2", "edge no longer serves HTTP/2: \(r?.stderr ?? "")", file: file, line: line)
    }

    func testCurlGetPostLargeAndErrors() throws {
        let h = try startH2()
        let base = "http://127.0.0.1:\(h.listenPort)"
        // GET through the HTTP/1.1 upstream: the upstream sees HTTP/1.1 with Host from :authority.
        let get = try curlH2(h, ["-D", "-", "\(base)/echo?a=1"])
        XCTAssertTrue(get.stdoutText.hasPrefix("HTTP/2 200"), get.stdoutText + get.stderr)
        XCTAssertTrue(get.stdoutText.contains("\"version\": \"HTTP/1.1\""), get.stdoutText)
        XCTAssertTrue(get.stdoutText.contains("[\"Host\", \"127.0.0.1:\(h.listenPort)\"]"), get.stdoutText)
        // POST with a body of known length, and one without content-length (chunked upstream).
        let file = try TestData.randomFile(300_000, in: h.dir)
        let post = try curlH2(h, ["--data-binary", "@\(file.path)", "\(base)/upload"])
        XCTAssertTrue(post.stdoutText.contains(file.sha256), "POST body changed on the way: \(post.stdoutText) \(post.stderr)")
        let streamed = try runShell("cat \(file.path) | curl -sS --http2-prior-knowledge --max-time 20 -T - \(base)/upload", timeout: 30)
        XCTAssertTrue(streamed.stdoutText.contains(file.sha256), "chunked POST body changed: \(streamed.stdoutText) \(streamed.stderr)")
        // A large response through DATA frames and flow control.
        let big = try curlH2(h, ["-o", "/dev/null", "-w", "%{http_code} %{size_download}", "\(base)/bytes?n=3000000"])
        XCTAssertEqual(big.stdoutText, "200 3000000", big.stderr)
        // Direct responses and Edge's own errors keep their contract on HTTP/2.
        let direct = try curlH2(h, ["-D", "-", "\(base)/direct"])
        XCTAssertTrue(direct.stdoutText.hasPrefix("HTTP/2 201"), direct.stdoutText)
        XCTAssertTrue(direct.stdoutText.contains("x-direct: yes"), direct.stdoutText)
        XCTAssertTrue(direct.stdoutText.hasSuffix("direct body\n"), direct.stdoutText)
        let missing = try curlH2(h, ["-D", "-", "\(base)/nothing-here"])
        XCTAssertTrue(missing.stdoutText.hasPrefix("HTTP/2 404"), missing.stdoutText)
        XCTAssertTrue(missing.stdoutText.contains("x-edge-error: route_not_found"), missing.stdoutText)
        let refused = try curlH2(h, ["-D", "-", "\(base)/refused/echo"])
        XCTAssertTrue(refused.stdoutText.hasPrefix("HTTP/2 502"), refused.stdoutText)
        XCTAssertTrue(refused.stdoutText.contains("x-edge-error: upstream_connect_refused"), refused.stdoutText)
        // HTTP/1.1 on the same listener still works.
        XCTAssertEqual(try HTTP.get(port: h.listenPort, "/echo").status, 200)
    }

    func testManyStreamsWithH2load() throws {
        let h = try startH2()
        let h2load = try Paths.require("h2load")
        let r = try runCommand(h2load, ["-n", "2000", "-c", "4", "-m", "10", "-T", "20", "http://127.0.0.1:\(h.listenPort)/echo"], timeout: 60)
        XCTAssertTrue(r.stdoutText.contains("2000 succeeded, 0 failed, 0 errored, 0 timeout"), r.stdoutText + r.stderr)
        XCTAssertTrue(r.stdoutText.contains("2000 2xx"), r.stdoutText)
        // Concurrent large responses on one connection: flow control per stream.
        let big = try runCommand(h2load, ["-n", "40", "-c", "1", "-m", "20", "-T", "20", "http://127.0.0.1:\(h.listenPort)/bytes?n=200000"], timeout: 60)
        XCTAssertTrue(big.stdoutText.contains("40 succeeded, 0 failed, 0 errored, 0 timeout"), big.stdoutText + big.stderr)
        let m = EdgeHarness.parseMetrics(try h.metricsText())
        XCTAssertGreaterThanOrEqual(m.filter { $0.key.hasPrefix("edge_http2_streams_total") }.values.reduce(0, +), 2040)
    }

    /// Per-stream backpressure: a stream whose window the client never opens
    /// gets exactly its window, and another stream on the connection completes.
    func testSlowStreamDoesNotStallOthers() throws {
        let h = try startH2()
        let r = try probe(["slow_stream", "--port", String(h.listenPort), "--seconds", "10"])
        XCTAssertEqual(r["fast_status"] as? Int, 200, "\(r)")
        XCTAssertEqual(r["fast_done"] as? Bool, true, "the second stream stalled behind the slow one: \(r)")
        XCTAssertEqual(r["slow_bytes"] as? Int, 65_535, "the slow stream must get exactly its initial window: \(r)")
    }

    /// Edge's own errors on a gRPC request are gRPC statuses (HTTP 200, grpc-status).
    func testGRPCErrorsAreGRPCStatuses() throws {
        let h = try startH2()
        let headers = [[":method", "POST"], [":scheme", "http"], [":authority", "127.0.0.1"], [":path", "/refused/pkg.Svc/Call"],
                       ["content-type", "application/grpc"], ["te", "trailers"]]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: headers), as: UTF8.self)
        let r = try probe(["request", "--port", String(h.listenPort), "--headers", json, "--body", "\u{0}\u{0}\u{0}\u{0}\u{0}"])
        XCTAssertEqual(r["status"] as? Int, 200, "\(r)")
        let fields = (r["headers"] as? [[String]]) ?? []
        XCTAssertTrue(fields.contains(["grpc-status", "14"]), "no endpoint → UNAVAILABLE: \(r)")
        XCTAssertTrue(fields.contains(["x-edge-error", "upstream_connect_refused"]), "\(r)")
        assertStillServesH2(h)
    }

    /// Each abuse pattern: GOAWAY ENHANCE_YOUR_CALM (11) on the abusive
    /// connection, its counter in /metrics, and a normal client served after.
    func testAttacksEndWithGoAwayEnhanceYourCalm() throws {
        let h = try startH2()
        let cases: [(kind: String, count: Int, metric: String)] = [
            ("rapid_reset", 2000, "edge_http2_rapid_reset_total"),
            ("ping_flood", 5000, "edge_http2_"),
            ("settings_flood", 5000, "edge_http2_"),
            ("empty_data", 5000, "edge_http2_glitch_limit_total"),
            ("continuation", 200, "edge_http2_continuation_flood_total"),
            ("hpack_bomb", 1, "edge_http2_header_list_too_large_total"),
        ]
        for c in cases {
            let r = try probe(["attack", "--port", String(h.listenPort), "--kind", c.kind, "--count", String(c.count), "--seconds", "8"])
            XCTAssertEqual(r["goaway"] as? Int, 11, "\(c.kind): expected GOAWAY ENHANCE_YOUR_CALM, got \(r)")
            XCTAssertEqual(r["closed"] as? Bool, true, "\(c.kind): abusive connection left open: \(r)")
            assertStillServesH2(h)
        }
        let m = EdgeHarness.parseMetrics(try h.metricsText())
        func total(_ name: String) -> Double { m.filter { $0.key.hasPrefix(name + "{") }.values.reduce(0, +) }
        XCTAssertGreaterThan(total("edge_http2_rapid_reset_total"), 0)
        XCTAssertGreaterThan(total("edge_http2_early_resets_total"), 0)
        XCTAssertGreaterThan(total("edge_http2_continuation_flood_total"), 0)
        XCTAssertGreaterThan(total("edge_http2_header_list_too_large_total"), 0)
        XCTAssertGreaterThan(total("edge_http2_glitch_limit_total") + total("edge_http2_flood_total"), 1)
    }
}

/// h2 -> h1 translation, asserted on what a raw HTTP/1.1 recorder receives.
final class HTTP2TranslationTests: XCTestCase {
    private var world: SmugglingWorld?

    override func tearDown() {
        if let w = world {
            w.stop()
            if (testRun?.totalFailureCount ?? 0) > 0 { print(w.diagnostics()) } else { w.cleanup() }
        }
        world = nil
        super.tearDown()
    }

    private func request(_ w: SmugglingWorld, _ headers: [[String]], body: String? = nil) throws -> [String: Any] {
        var args = [HTTP2Tests.probeScript, "request", "--port", String(w.listenPort),
                    "--headers", String(decoding: try JSONSerialization.data(withJSONObject: headers), as: UTF8.self)]
        if let body { args += ["--body", body] }
        let r = try runCommand(try Paths.require("python3"), args, timeout: 20)
        guard let j = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any] else {
            throw HarnessError("h2probe.py gave no JSON: \(r.stdoutText) \(r.stderr)")
        }
        return j
    }

    private func base(_ method: String = "GET", _ path: String = "/t", authority: String = "a.example") -> [[String]] {
        [[":method", method], [":scheme", "http"], [":authority", authority], [":path", path]]
    }

    func testTranslationTable() throws {
        let w = try SmugglingWorld()
        w.listenerExtra = "    http2: { cleartext: true }"
        world = w
        try w.start()
        // Forwarded cases: what the HTTP/1.1 upstream must see.
        do {
            let r = try request(w, base("GET", "/plain?q=1") + [["x-one", "1"], ["cookie", "a=1"], ["cookie", "b=2"], ["te", "trailers"]])
            XCTAssertEqual(r["status"] as? Int, 200, "\(r)")
            let up = w.collectUpstream(partialOK: false)
            XCTAssertEqual(up.problems, [], up.excerpts.joined(separator: "\n"))
            XCTAssertEqual(up.requests.map(\.line), ["GET /plain?q=1"])
            let req = try XCTUnwrap(up.requests.first)
            XCTAssertEqual(req.values("host"), ["a.example"], "Host must come from :authority")
            XCTAssertEqual(req.values("cookie"), ["a=1; b=2"], "cookie fields are joined for HTTP/1.1")
            XCTAssertEqual(req.values("te"), [], "te is hop-by-hop towards HTTP/1.1")
            XCTAssertEqual(req.values("x-one"), ["1"])
        }
        do {
            // content-length checked and re-written by Edge.
            let r = try request(w, base("POST", "/len") + [["content-length", "5"]], body: "hello")
            XCTAssertEqual(r["status"] as? Int, 200, "\(r)")
            let up = w.collectUpstream(partialOK: false)
            XCTAssertEqual(up.problems, [])
            XCTAssertEqual(up.requests.first?.values("content-length"), ["5"])
            XCTAssertEqual(up.requests.first.map { String(decoding: $0.body, as: UTF8.self) }, "hello")
        }
        do {
            // No content-length: chunked towards HTTP/1.1.
            let r = try request(w, base("POST", "/chunked"), body: "abc")
            XCTAssertEqual(r["status"] as? Int, 200, "\(r)")
            let up = w.collectUpstream(partialOK: false)
            XCTAssertEqual(up.problems, [])
            XCTAssertEqual(up.requests.first?.framing, "chunked")
            XCTAssertEqual(up.requests.first.map { String(decoding: $0.body, as: UTF8.self) }, "abc")
        }
        // Refused cases: nothing may reach the upstream.
        let refused: [(String, [[String]], String?)] = [
            ("upper-case name", base() + [["X-Upper", "1"]], nil),
            ("CR LF in a value", base() + [["x-a", "1\r\nx-injected: 1"]], nil),
            ("LF in a value", base() + [["x-a", "1\nGET /smuggled HTTP/1.1"]], nil),
            ("NUL in a value", base() + [["x-a", "1\u{0}2"]], nil),
            ("connection field", base() + [["connection", "close"]], nil),
            ("transfer-encoding", base("POST") + [["transfer-encoding", "chunked"]], "0\r\n\r\n"),
            ("upgrade field", base() + [["upgrade", "h2c"]], nil),
            ("te other than trailers", base() + [["te", "gzip"]], nil),
            ("method not a token", base("GET /x HTTP/1.1\r\nX:", "/t"), nil),
            ("path not starting with /", base("GET", "x/../t"), nil),
            ("space in path", base("GET", "/a b"), nil),
            ("host differs from :authority", base() + [["host", "b.example"]], nil),
            ("content-length longer than the body", base("POST") + [["content-length", "10"]], "abc"),
            ("two content-lengths", base("POST") + [["content-length", "3"], ["content-length", "4"]], "abc"),
        ]
        for (name, headers, body) in refused {
            let r = try request(w, headers, body: body)
            let status = r["status"] as? Int
            let refusedOK = r["reset"] != nil || r["goaway"] != nil || (status.map { $0 >= 400 } ?? false)
            XCTAssertTrue(refusedOK, "\(name): not refused: \(r)")
            let up = w.collectUpstream(partialOK: true)
            XCTAssertEqual(up.requests.map(\.line), [], "\(name): reached the upstream: \(up.excerpts)")
            XCTAssertEqual(up.newBytes, 0, "\(name): bytes reached the upstream: \(up.excerpts)")
        }
    }

    /// A client that opens a zero window never takes its response: after
    /// body_timeout (3 s here) without progress the connection gets GOAWAY
    /// ENHANCE_YOUR_CALM and closes; other clients are served meanwhile.
    func testZeroWindowStallEndsWithGoAway() throws {
        let w = try SmugglingWorld()
        w.listenerExtra = "    http2: { cleartext: true }"
        world = w
        try w.start()
        let r = try runCommand(try Paths.require("python3"), [HTTP2Tests.probeScript, "attack", "--port", String(w.listenPort),
                                                              "--kind", "zero_window", "--seconds", "12"], timeout: 30)
        let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], r.stdoutText + r.stderr)
        XCTAssertEqual(j["goaway"] as? Int, 11, "\(j)")
        XCTAssertEqual(j["closed"] as? Bool, true, "\(j)")
        XCTAssertEqual(j["data_frames"] as? Int, 0, "no DATA may be sent into a zero window: \(j)")
        let ok = try request(w, base("GET", "/after"))
        XCTAssertEqual(ok["status"] as? Int, 200, "\(ok)")
    }

    /// `Upgrade: h2c` on HTTP/1.1 is neither honoured nor forwarded.
    func testH1UpgradeH2cNotForwarded() throws {
        let w = try SmugglingWorld()
        w.listenerExtra = "    http2: { cleartext: true }"
        world = w
        try w.start()
        let c = try RawClient(port: w.listenPort)
        try c.send("GET /up HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, "answered by the recorder as plain HTTP/1.1")
        let up = w.collectUpstream(partialOK: false)
        XCTAssertEqual(up.requests.map(\.line), ["GET /up"])
        XCTAssertEqual(up.requests.first?.values("upgrade"), [], "Upgrade: h2c must not be forwarded")
        XCTAssertEqual(up.requests.first?.values("http2-settings"), [], "HTTP2-Settings must not be forwarded")
    }
}

/// Heap allocations per proxied HTTP/2 request (LD_PRELOAD counter, as for
/// HTTP/1.1): reported, and bounded. nghttp2 allocates per stream (its stream
/// object, the header copies it makes on submit, HPACK buffers) through the
/// per-worker accounting allocator; Edge's own glue allocates nothing per request.
final class HTTP2AllocationTests: EdgeTestCase {
    func testAllocationsPerH2Request() throws {
        let libDir = try Paths.makeTempDir("alloc-h2")
        addTeardownBlock { try? FileManager.default.removeItem(at: libDir) }
        var o = EdgeOptions()
        o.environment["LD_PRELOAD"] = try PerformanceTests.buildAllocCounter(in: libDir)
        o.listenerExtra = ["    http2: { cleartext: true }"]
        let h = try startEdge(o)
        let h2load = try Paths.require("h2load")
        func count() throws -> Double {
            guard let v = EdgeHarness.parseMetrics(try h.metricsText())["edge_heap_allocations_total"] else {
                throw HarnessError("edge_heap_allocations_total missing although alloc_count.so is preloaded")
            }
            return v
        }
        func load(_ n: Int) throws {
            let r = try runCommand(h2load, ["-n", String(n), "-c", "1", "-m", "10", "-T", "30", "http://127.0.0.1:\(h.listenPort)/conn"], timeout: 90)
            guard r.stdoutText.contains("\(n) succeeded, 0 failed") else { throw HarnessError("h2load: \(r.stdoutText) \(r.stderr)") }
        }
        try load(2_000)  // warm-up: tables, pools, buffers
        let a = try count()
        let b = try count()
        let n = 10_000
        try load(n)
        let d = try count()
        let perRequest = (d - b - (b - a)) / Double(n)
        print(String(format: "allocations: %.2f per proxied HTTP/2 request (%.0f over %d, one connection, -m10)", perRequest, d - b - (b - a), n))
        XCTAssertGreaterThan(a, 0)
        XCTAssertLessThanOrEqual(perRequest, 8, "heap allocations per HTTP/2 request grew")
    }
}
