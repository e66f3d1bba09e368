// Response compression (issue #15): the real edge binary in front of
// compress_origin.py; curl --compressed decodes gzip, python's brotli and
// zstandard decode br and zstd; every body is compared by SHA-256 with what
// the origin sent. Also negotiation, the cases that must pass uncompressed,
// Vary/ETag, keep-alive, and heap allocations per compressed response.

import Foundation
import XCTest

final class CompressionTests: L4TestCase {
    static var originScript: String { Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/compress_origin.py").path }

    private var edgePort: UInt16 = 0

    /// Origin + edge with one compressing route on `/` and, on `/gzip-only/`, a gzip-only route.
    private func start(compression: String = "{ algorithms: [br, zstd, gzip], level: { gzip: 6, br: 4, zstd: 3 }, min_size: 1024 }",
                       http2: Bool = false, environment: [String: String]? = nil) throws {
        let up = try w.port()
        edgePort = try w.port()
        let py = try Paths.require("python3")
        let p = try ManagedProcess(name: "origin-\(up)", executable: py, arguments: ["-u", Self.originScript, "serve", "--port", String(up)], dir: w.dir)
        w.track(p)
        let deadline = OS.now() + 15
        while !p.stdoutText().contains("listening \(up)") {
            if OS.now() > deadline || !p.isRunning { throw HarnessError("compress_origin.py did not start: \(p.stderrText())") }
            OS.sleepMs(20)
        }
        try w.startEdge(w.head + """
            listeners:
              - name: web
                address: "127.0.0.1:\(edgePort)"
                protocol: http\(http2 ? "\n    http2: { cleartext: true }" : "")
                routes:
                  - match: { path_prefix: "/gzip-only/" }
                    cluster: up
                    prefix_rewrite: "/"
                    compression: { algorithms: [gzip] }
                  - match: { path_prefix: "/plain/" }
                    cluster: up
                    prefix_rewrite: "/"
                  - match: { path_prefix: "/" }
                    cluster: up
                    compression: \(compression)
            clusters:

            """ + cluster("up", [up]), environment: environment)
    }

    private func expected(_ n: Int, kind: String) throws -> String {
        let r = try runCommand(try Paths.require("python3"), [Self.originScript, "expect", String(n), "--kind", kind], timeout: 30)
        guard let o = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], let sha = o["sha256"] as? String else {
            throw HarnessError("expect failed: \(r.stderr)")
        }
        return sha
    }

    /// Decodes `bytes` with python (gzip, brotli, zstandard); returns (length, sha256).
    private func decode(_ alg: String, _ bytes: Data) throws -> (Int, String) {
        let f = w.dir.appendingPathComponent("body-\(UUID().uuidString)")
        try bytes.write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        let r = try runCommand(try Paths.require("python3"), [Self.originScript, "decode", "--alg", alg, f.path], timeout: 60)
        guard let o = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], o["ok"] as? Bool == true,
              let n = o["length"] as? Int, let sha = o["sha256"] as? String else {
            throw HarnessError("\(alg) decode failed: \(r.stdoutText) \(r.stderr)")
        }
        return (n, sha)
    }

    private func curl(_ path: String, _ extra: [String] = []) throws -> CurlResult {
        try Curl.run(extra + ["http://127.0.0.1:\(edgePort)\(path)"], timeout: 60)
    }

    /// Bodies of several sizes, Content-Length and chunked, compressible and
    /// half-compressible (the latter spans many output buffers).
    static let bodies: [(n: Int, kind: String)] = [(1500, "text"), (70_000, "hex"), (3_000_000, "hex"), (5_000_000, "text")]

    func testGzipRoundTripWithCurlCompressed() throws {
        try start()
        for (n, kind) in Self.bodies {
            let want = try expected(n, kind: kind)
            for chunked in ["0", "1"] {
                let r = try curl("/text?n=\(n)&kind=\(kind)&chunked=\(chunked)", ["--compressed", "-H", "Accept-Encoding: gzip"])
                XCTAssertEqual(r.status, 200)
                XCTAssertEqual(r.header("Content-Encoding"), "gzip", "n=\(n) chunked=\(chunked)")
                XCTAssertNil(r.header("Content-Length"), "n=\(n): a compressed response is chunked")
                XCTAssertEqual(r.header("Transfer-Encoding"), "chunked")
                XCTAssertEqual(r.body.count, n, "n=\(n) chunked=\(chunked)")
                XCTAssertEqual(Self.sha256(r.body), want, "n=\(n) chunked=\(chunked): decoded body differs")
            }
        }
        try w.checkEdgeAlive()
    }

    func testBrotliAndZstdRoundTrip() throws {
        try start()
        for alg in ["br", "zstd"] {
            for (n, kind) in Self.bodies {
                let want = try expected(n, kind: kind)
                for chunked in ["0", "1"] {
                    let r = try curl("/text?n=\(n)&kind=\(kind)&chunked=\(chunked)", ["-H", "Accept-Encoding: \(alg)"])
                    XCTAssertEqual(r.header("Content-Encoding"), alg, "n=\(n)")
                    XCTAssertLessThan(r.body.count, n, "\(alg) n=\(n): not smaller")
                    let (len, sha) = try decode(alg, r.body)
                    XCTAssertEqual(len, n, "\(alg) n=\(n) chunked=\(chunked)")
                    XCTAssertEqual(sha, want, "\(alg) n=\(n) chunked=\(chunked): decoded body differs")
                }
            }
        }
        // A slow client: output waits for the socket (backpressure), nothing is lost.
        let want = try expected(4_000_000, kind: "hex")
        let r = try curl("/text?n=4000000&kind=hex&chunked=1", ["--limit-rate", "4M", "-H", "Accept-Encoding: zstd"])
        let (len, sha) = try decode("zstd", r.body)
        XCTAssertEqual(len, 4_000_000)
        XCTAssertEqual(sha, want)
        try w.checkEdgeAlive()
    }

    /// Accept-Encoding → the Content-Encoding chosen (nil: identity), for a route preferring br, zstd, gzip.
    static let negotiation: [(String?, String?)] = [
        ("gzip", "gzip"),
        ("gzip, br", "br"),
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("zstd, gzip;q=0.9", "zstd"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("*", "br"),
        ("*;q=0", nil),
        ("gzip;q=0, br;q=0, *;q=0.5", "zstd"),
        ("identity", nil),
        ("identity;q=1, gzip;q=0.2", "gzip"),
        ("deflate", nil),
        ("br;q=0.001, gzip;q=0.000", "br"),
        ("gzip;q=0.5, zstd;q=0.5, br;q=0.5", "br"),
        ("gzip ; q=0.8 , zstd ; q=0.9", "zstd"),
        ("gzip;q=bogus", nil),
        ("", nil),
        (nil, nil),
    ]

    func testNegotiation() throws {
        try start()
        for (accept, want) in Self.negotiation {
            let headers = accept.map { ["Accept-Encoding: \($0)"] } ?? []
            let r = try HTTP.get(port: edgePort, "/text?n=4000", headers: headers)
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.header("Content-Encoding"), want, "Accept-Encoding: \(accept ?? "(none)")")
            if want == nil { XCTAssertEqual(r.body.count, 4000, "Accept-Encoding: \(accept ?? "(none)"): body changed") }
        }
        // The route's list limits the choice.
        XCTAssertEqual(try HTTP.get(port: edgePort, "/gzip-only/text?n=4000", headers: ["Accept-Encoding: br, gzip;q=0.1"]).header("Content-Encoding"), "gzip")
        XCTAssertNil(try HTTP.get(port: edgePort, "/gzip-only/text?n=4000", headers: ["Accept-Encoding: br, zstd"]).header("Content-Encoding"))
        XCTAssertNil(try HTTP.get(port: edgePort, "/plain/text?n=4000", headers: ["Accept-Encoding: gzip"]).header("Content-Encoding"))
    }

    func testResponsesThatMustPassUncompressed() throws {
        try start()
        let gz = ["Accept-Encoding: gzip, br, zstd"]
        let cases: [(String, String)] = [
            ("/text?n=1000", "below min_size"),
            ("/text?n=4000&ce=gzip", "already encoded"),
            ("/text?n=4000&cc=no-transform", "no-transform"),
            ("/text?n=4000&cc=public,%20No-Transform", "no-transform among others"),
            ("/text?n=4000&type=image/png", "image/png"),
            ("/text?n=4000&type=application/octet-stream", "octet-stream"),
            ("/text?n=4000&range=1", "206 from the upstream"),
            ("/text?n=4000&status=204", "204"),
        ]
        for (path, why) in cases {
            let r = try HTTP.get(port: edgePort, path, headers: gz)
            let ce = r.header("Content-Encoding")
            if path.contains("ce=gzip") { XCTAssertEqual(ce, "gzip", why) } else { XCTAssertNil(ce, why) }
            XCTAssertNil(r.header("Vary"), why)
            if r.status == 200 { XCTAssertNotNil(r.header("Content-Length"), "\(why): length kept") }
        }
        let ranged = try HTTP.get(port: edgePort, "/text?n=4000", headers: gz + ["Range: bytes=0-99"])
        XCTAssertNil(ranged.header("Content-Encoding"), "a request with Range")
        let c = try RawClient(port: edgePort)
        defer { c.close() }
        let head = try HTTP.request(c, method: "HEAD", "/text?n=4000", port: edgePort, headers: gz)
        XCTAssertNil(head.header("Content-Encoding"), "HEAD")
        XCTAssertEqual(head.header("Content-Length"), "4000")
        let notModified = try HTTP.request(c, "/text?n=4000&status=304", port: edgePort, headers: gz)
        XCTAssertEqual(notModified.status, 304)
        XCTAssertNil(notModified.header("Content-Encoding"), "304")
        // The same connection still carries a compressed response afterwards.
        XCTAssertEqual(try HTTP.request(c, "/text?n=4000", port: edgePort, headers: gz).header("Content-Encoding"), "br")
    }

    func testVaryAndWeakETag() throws {
        try start()
        let gz = ["Accept-Encoding: gzip"]
        let plain = try HTTP.get(port: edgePort, "/text?n=4000&etag=%22v1%22", headers: gz)
        XCTAssertEqual(plain.headerValues("Vary"), ["Accept-Encoding"])
        XCTAssertEqual(plain.header("ETag"), "W/\"v1\"")
        let merged = try HTTP.get(port: edgePort, "/text?n=4000&vary=Origin&etag=W/%22v2%22", headers: gz)
        XCTAssertEqual(merged.headerValues("Vary"), ["Origin, Accept-Encoding"])
        XCTAssertEqual(merged.header("ETag"), "W/\"v2\"", "a weak ETag stays as it is")
        let already = try HTTP.get(port: edgePort, "/text?n=4000&vary=accept-encoding", headers: gz)
        XCTAssertEqual(already.headerValues("Vary"), ["accept-encoding"])
        let identity = try HTTP.get(port: edgePort, "/text?n=4000&etag=%22v1%22", headers: ["Accept-Encoding: identity"])
        XCTAssertEqual(identity.header("ETag"), "\"v1\"", "an uncompressed response keeps its strong ETag")
    }

    func testKeepAliveAcrossCompressedResponses() throws {
        try start()
        let c = try RawClient(port: edgePort, timeout: 30)
        defer { c.close() }
        let plan: [(String, String)] = [
            ("gzip", "/text?n=5000"), ("br", "/text?n=200000&kind=hex&chunked=1"), ("zstd", "/text?n=9000&chunked=1"),
            ("identity", "/text?n=500"), ("gzip", "/text?n=1500000&kind=hex"), ("br", "/text?n=3000"),
            ("zstd", "/text?n=700000&kind=hex"), ("gzip", "/text?n=2000&chunked=1"),
        ]
        for (i, (alg, path)) in plan.enumerated() {
            let r = try HTTP.request(c, path, port: edgePort, headers: ["Accept-Encoding: \(alg)"])
            XCTAssertEqual(r.status, 200, "request \(i)")
            XCTAssertNil(r.header("Connection"), "request \(i): the connection must stay open")
            let q = URLComponents(string: "http://x\(path)")?.queryItems ?? []
            let n = Int(q.first { $0.name == "n" }?.value ?? "0") ?? 0
            let kind = q.first { $0.name == "kind" }?.value ?? "text"
            let (len, sha) = try decode(alg == "identity" ? "identity" : alg, Data(r.body))
            XCTAssertEqual(len, n, "request \(i) \(alg)")
            XCTAssertEqual(sha, try expected(n, kind: kind), "request \(i) \(alg)")
        }
    }

    /// HTTP/2 (cleartext prior knowledge): compressed DATA frames decode to
    /// the origin's body; many multiplexed compressed streams succeed.
    func testHTTP2CompressedStreams() throws {
        try start(http2: true)
        for (n, kind) in [(3000, "text"), (2_000_000, "hex")] {
            let want = try expected(n, kind: kind)
            let g = try curl("/text?n=\(n)&kind=\(kind)&chunked=1&etag=%22e%22", ["--http2-prior-knowledge", "--compressed", "-H", "Accept-Encoding: gzip"])
            XCTAssertEqual(g.header("content-encoding"), "gzip")
            XCTAssertEqual(g.header("vary"), "accept-encoding")
            XCTAssertEqual(g.header("etag"), "W/\"e\"")
            XCTAssertNil(g.header("content-length"))
            XCTAssertEqual(Self.sha256(g.body), want, "h2 gzip n=\(n)")
            for alg in ["br", "zstd"] {
                let r = try curl("/text?n=\(n)&kind=\(kind)", ["--http2-prior-knowledge", "-H", "Accept-Encoding: \(alg)"])
                XCTAssertEqual(r.header("content-encoding"), alg)
                let (len, sha) = try decode(alg, r.body)
                XCTAssertEqual(len, n, "h2 \(alg) n=\(n)")
                XCTAssertEqual(sha, want, "h2 \(alg) n=\(n)")
            }
        }
        let head = try curl("/text?n=4000", ["--http2-prior-knowledge", "-I", "-H", "Accept-Encoding: gzip"])
        XCTAssertNil(head.header("content-encoding"), "h2 HEAD")
        let h2load = try Paths.require("h2load")
        let r = try runCommand(h2load, ["-n", "400", "-c", "4", "-m", "20", "-H", "Accept-Encoding: br",
                                        "http://127.0.0.1:\(edgePort)/text?n=30000&kind=hex"], timeout: 60)
        XCTAssertTrue(r.stdoutText.contains("400 succeeded"), "h2load: \(r.stdoutText.suffix(800))")
        try w.checkEdgeAlive()
    }

    /// Clients that leave mid-response and an upstream that dies mid-body:
    /// the encoders go back to the pool (more aborts than the pool's 64
    /// encoders, then compression still works) and edge keeps serving.
    func testAbortedResponsesReleaseEncoders() throws {
        try start()
        let gz = ["Accept-Encoding: gzip"]
        for _ in 0..<70 {
            let c = try RawClient(port: edgePort, timeout: 10)
            defer { c.close() }
            try c.send("GET /text?n=200000&kind=hex&die=1 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: zstd\r\n\r\n")
            let r = try c.readResponse()
            XCTAssertEqual(r.header("Content-Encoding"), "zstd")
            XCTAssertTrue(r.truncated || r.body.count < 200_000, "a dying upstream must not look like a complete body")
        }
        for i in 0..<80 {
            // A large body the client does not read: the response is mid-flight when it closes.
            let c = try RawClient(port: edgePort)
            try c.send("GET /text?n=3000000&kind=hex&chunked=\(i % 2) HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br\r\n\r\n")
            c.close()
        }
        try w.checkEdgeAlive()
        let deadline = OS.now() + 10
        var last: HTTPResponse? = nil
        while OS.now() < deadline {
            // Aborted exchanges end as their sockets close; the pool refills.
            last = try HTTP.get(port: edgePort, "/text?n=70000&kind=hex", headers: gz)
            if last?.header("Content-Encoding") == "gzip" { break }
            OS.sleepMs(200)
        }
        XCTAssertEqual(last?.header("Content-Encoding"), "gzip", "encoders leaked: the pool stayed exhausted")
        let (len, sha) = try decode("gzip", Data(last?.body ?? []))
        XCTAssertEqual(len, 70_000)
        XCTAssertEqual(sha, try expected(70_000, kind: "hex"))
    }

    /// Heap allocations per compressed response in steady state (gzip, br,
    /// zstd in turn), counted by Benchmarks/alloc/alloc_count.c as
    /// PerformanceTests does for the plain path.
    func testCompressedResponsesDoNotAllocate() throws {
        let lib = try PerformanceTests.buildAllocCounter(in: w.dir)
        try start(environment: ["LD_PRELOAD": lib])
        let c = try RawClient(port: edgePort, timeout: 30)
        defer { c.close() }
        let algs = ["gzip", "br", "zstd"]
        let requests = algs.map { Array("GET /text?n=20000&kind=hex HTTP/1.1\r\nHost: alloc.test\r\nAccept-Encoding: \($0)\r\n\r\n".utf8) }
        func run(_ n: Int) throws {
            for i in 0..<n {
                try c.send(requests[i % 3])
                let r = try c.readResponse()
                if r.status != 200 || r.header("Content-Encoding") != algs[i % 3] { throw HarnessError("request \(i): \(r.summary)") }
            }
        }
        func allocations() throws -> Double {
            guard let v = try w.metrics()["edge_heap_allocations_total"] else { throw HarnessError("edge_heap_allocations_total missing") }
            return v
        }
        try run(600)
        // The control thread allocates on its own clock (snapshot bookkeeping,
        // the scrape itself): measure that rate while idle and take it out.
        let a = try allocations()
        let b = try allocations()
        let scrape = b - a
        let idleStart = OS.now()
        OS.sleepMs(2_000)
        let idleEnd = try allocations()
        let background = max(0, idleEnd - b - scrape) / max(0.5, OS.now() - idleStart)
        let n = 1_500
        let t0 = OS.now()
        try run(n)
        let elapsed = OS.now() - t0
        let d = try allocations()
        let raw = (d - idleEnd - scrape) / Double(n)
        let perResponse = max(0, d - idleEnd - scrape - background * elapsed) / Double(n)
        print(String(format: "compressed response allocations: %.3f per response (raw %.3f; background %.1f/s over %.1fs)", perResponse, raw, background, elapsed))
        XCTAssertGreaterThan(a, 0, "counter reads 0: is alloc_count.so preloaded?")
        XCTAssertLessThanOrEqual(perResponse, 0.05, "steady-state compressed responses must not allocate")
    }

    static func sha256(_ d: Data) -> String {
        let f = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: f) }
        guard (try? d.write(to: f)) != nil, let r = try? runCommand("/usr/bin/sha256sum", [f.path], timeout: 30) else { return "" }
        return String(r.stdoutText.prefix(64))
    }
}
