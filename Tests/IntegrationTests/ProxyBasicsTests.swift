// Request/response forwarding through the real edge binary: bodies, header
// rewriting, pipelining, keep-alive pooling, 100-continue, HEAD/204/304.

import Foundation
import XCTest

final class ProxyBasicsTests: EdgeTestCase {

    // MARK: bodies

    func testGetIsForwardedAsHTTP11() throws {
        let h = try startEdge()
        let r = try Curl.run(["http://127.0.0.1:\(h.listenPort)/echo?x=1&y=two"])
        XCTAssertEqual(r.exitCode, 0, r.stderr)
        XCTAssertEqual(r.status, 200)
        let e = EchoedRequest(json: try r.json())
        XCTAssertEqual(e.method, "GET")
        XCTAssertEqual(e.path, "/echo")
        XCTAssertEqual(e.query, "x=1&y=two")
        XCTAssertEqual(e.version, "HTTP/1.1", "edge must talk HTTP/1.1 to the upstream")
        XCTAssertEqual(e.bodyLength, 0)
    }

    func testPostContentLengthBody() throws {
        let h = try startEdge()
        let (file, sha) = try TestData.randomFile(1 << 20, in: h.dir)
        let r = try Curl.run(["-H", "Content-Type: application/octet-stream", "--data-binary", "@\(file)",
                              "http://127.0.0.1:\(h.listenPort)/echo"])
        XCTAssertEqual(r.status, 200, r.stderr)
        let e = EchoedRequest(json: try r.json())
        XCTAssertEqual(e.method, "POST")
        XCTAssertEqual(e.bodyLength, 1 << 20)
        XCTAssertEqual(e.bodySHA256, sha)
        XCTAssertEqual(e.values("Content-Length"), ["\(1 << 20)"], "CL body must be forwarded with Content-Length")
        XCTAssertFalse(e.has("Transfer-Encoding"), "CL body must not be re-framed as chunked")

        let u = try Curl.run(["--data-binary", "@\(file)", "http://127.0.0.1:\(h.listenPort)/upload"])
        XCTAssertEqual(u.status, 200, u.stderr)
        let j = try u.json()
        XCTAssertEqual(j["length"] as? Int, 1 << 20)
        XCTAssertEqual(j["sha256"] as? String, sha)
    }

    func testPutContentLengthBody() throws {
        let h = try startEdge()
        let (file, sha) = try TestData.randomFile(300_001, in: h.dir)
        let r = try Curl.run(["-X", "PUT", "--data-binary", "@\(file)", "http://127.0.0.1:\(h.listenPort)/echo"])
        XCTAssertEqual(r.status, 200, r.stderr)
        let e = EchoedRequest(json: try r.json())
        XCTAssertEqual(e.method, "PUT")
        XCTAssertEqual(e.bodyLength, 300_001)
        XCTAssertEqual(e.bodySHA256, sha)
    }

    func testChunkedRequestBodyIsForwardedChunked() throws {
        let h = try startEdge()
        let (file, sha) = try TestData.randomFile(777_777, in: h.dir)
        let r = try Curl.run(["-H", "Transfer-Encoding: chunked", "--data-binary", "@\(file)",
                              "http://127.0.0.1:\(h.listenPort)/echo"])
        XCTAssertEqual(r.status, 200, r.stderr)
        let e = EchoedRequest(json: try r.json())
        XCTAssertEqual(e.method, "POST")
        XCTAssertEqual(e.bodyLength, 777_777)
        XCTAssertEqual(e.bodySHA256, sha)
        XCTAssertEqual(e.values("Transfer-Encoding").map { $0.lowercased() }, ["chunked"],
                       "chunked request body must be forwarded chunked; upstream saw \(e.headers)")
        XCTAssertFalse(e.has("Content-Length"))

        let p = try Curl.run(["-X", "PUT", "-H", "Transfer-Encoding: chunked", "--data-binary", "@\(file)",
                              "http://127.0.0.1:\(h.listenPort)/upload"])
        XCTAssertEqual(p.status, 200, p.stderr)
        XCTAssertEqual(try p.json()["sha256"] as? String, sha)
    }

    func testChunkedAndContentLengthResponsesStream() throws {
        let h = try startEdge()
        let c = try RawClient(port: h.listenPort)
        for chunked in [false, true] {
            let n = 300_007
            let r = try HTTP.request(c, "/bytes?n=\(n)&chunked=\(chunked ? 1 : 0)", port: h.listenPort)
            XCTAssertEqual(r.status, 200)
            XCTAssertFalse(r.truncated)
            XCTAssertEqual(r.body.count, n, "chunked=\(chunked)")
            XCTAssertTrue(r.body == TestData.pattern(n), "body bytes differ from the pattern (chunked=\(chunked))")
        }
    }

    func testStripPrefix() throws {
        let h = try startEdge()
        let r = try HTTP.get(port: h.listenPort, "/api/echo?q=1")
        XCTAssertEqual(r.status, 200, r.summary)
        let e = try EchoedRequest(r)
        XCTAssertEqual(e.path, "/echo", "strip_prefix on /api/ must forward /api/echo as /echo")
        XCTAssertEqual(e.query, "q=1")
    }

    func testHostRouting() throws {
        let h = try startEdge()
        let v = try HTTP.get(port: h.listenPort, "/anything", host: "vhost.test")
        XCTAssertEqual(v.status, 200, v.summary)
        XCTAssertEqual(v.text, "vhost\n")
        let v2 = try HTTP.get(port: h.listenPort, "/anything", host: "VHOST.test:\(h.listenPort)")
        XCTAssertEqual(v2.status, 200, "host match is case-insensitive and ignores the port: \(v2.summary)")
        let other = try HTTP.get(port: h.listenPort, "/anything", host: "other.test")
        XCTAssertEqual(other.status, 404, other.summary)
    }

    // MARK: header rewriting

    func testForwardedHeadersAndVia() throws {
        let h = try startEdge()
        let c = try RawClient(port: h.listenPort)
        try c.send("GET /echo HTTP/1.1\r\nHost: front.example:8443\r\nX-Forwarded-For: 10.1.2.3\r\nVia: 1.0 fred\r\n\r\n")
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, r.summary)
        let e = try EchoedRequest(r)
        XCTAssertEqual(e.combined("X-Forwarded-For"), "10.1.2.3, 127.0.0.1", "client IP appended")
        XCTAssertEqual(e.values("X-Forwarded-Proto"), ["http"])
        XCTAssertEqual(e.values("X-Forwarded-Host"), ["front.example:8443"])
        XCTAssertEqual(e.combined("Via"), "1.0 fred, 1.1 edge", "Via appended on the request")
        XCTAssertTrue(r.headerValues("Via").joined(separator: ", ").contains("1.1 edge"),
                      "response must carry Via: 1.1 edge; got \(r.headerValues("Via"))")

        // Without client-supplied values.
        let r2 = try HTTP.request(c, "/echo", port: h.listenPort)
        let e2 = try EchoedRequest(r2)
        XCTAssertEqual(e2.combined("X-Forwarded-For"), "127.0.0.1")
        XCTAssertEqual(e2.combined("Via"), "1.1 edge")
    }

    func testRequestIdGeneratedAndPassedThrough() throws {
        let h = try startEdge()
        let c = try RawClient(port: h.listenPort)
        var ids: [String] = []
        for _ in 0..<3 {
            let e = try EchoedRequest(HTTP.request(c, "/echo", port: h.listenPort))
            let v = e.values("X-Request-Id")
            XCTAssertEqual(v.count, 1, "exactly one X-Request-Id; got \(v)")
            let id = v.first ?? ""
            XCTAssertEqual(id.count, 32, "generated id must be 32 hex chars: \(id)")
            XCTAssertTrue(id.allSatisfy { $0.isHexDigit }, "generated id must be hex: \(id)")
            ids.append(id)
        }
        XCTAssertEqual(Set(ids).count, 3, "generated ids must differ: \(ids)")

        let given = "client-chosen-ID_42"
        let e = try EchoedRequest(HTTP.request(c, "/echo", port: h.listenPort, headers: ["X-Request-Id: \(given)"]))
        XCTAssertEqual(e.values("X-Request-Id"), [given], "an existing X-Request-Id passes through unchanged")
    }

    func testHopByHopHeadersRemoved() throws {
        let h = try startEdge()
        let c = try RawClient(port: h.listenPort)
        try c.send("GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
                   + "Keep-Alive: 5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Foo\r\n"
                   + "X-Other: keep\r\n\r\n")
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, r.summary)
        let e = try EchoedRequest(r)
        for name in ["X-Secret", "Keep-Alive", "Proxy-Connection", "TE", "Trailer"] {
            XCTAssertFalse(e.has(name), "upstream must not see hop-by-hop \(name); saw \(e.headers)")
        }
        for v in e.values("Connection") {
            XCTAssertFalse(v.lowercased().contains("x-secret"), "Connection forwarded as-is: \(v)")
        }
        XCTAssertEqual(e.values("X-Other"), ["keep"], "end-to-end headers pass")
        // The client connection stays usable (keep-alive was requested).
        let r2 = try HTTP.request(c, "/echo", port: h.listenPort)
        XCTAssertEqual(r2.status, 200)
    }

    // MARK: connection handling

    func testPipelinedRequestsAnsweredInOrder() throws {
        let h = try startEdge()
        let c = try RawClient(port: h.listenPort)
        var batch = ""
        for i in 1...3 { batch += "GET /echo?i=\(i) HTTP/1.1\r\nHost: p.test\r\n\r\n" }
        try c.send(batch)  // one write
        for i in 1...3 {
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200, r.summary)
            XCTAssertEqual(try EchoedRequest(r).query, "i=\(i)", "responses must come back in request order")
        }
        // Pipelined with a body in the middle.
        try c.send("GET /echo?i=4 HTTP/1.1\r\nHost: p\r\n\r\nPOST /echo?i=5 HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nhelloGET /echo?i=6 HTTP/1.1\r\nHost: p\r\n\r\n")
        for i in 4...6 {
            let e = try EchoedRequest(c.readResponse())
            XCTAssertEqual(e.query, "i=\(i)")
            if i == 5 { XCTAssertEqual(e.bodyLength, 5) }
        }
    }

    func testKeepAliveReuseOneClientConnection() throws {
        let h = try startEdge()
        let before = try h.stats()
        let c = try RawClient(port: h.listenPort)
        var connIds = Set<String>()
        for _ in 0..<50 {
            let r = try HTTP.request(c, "/conn", port: h.listenPort)
            XCTAssertEqual(r.status, 200)
            connIds.insert(r.text)
        }
        let after = try h.stats()
        let requests = after.requests - before.requests
        let conns = after.connections - before.connections
        print("keep-alive (1 client conn): \(requests) upstream requests over \(conns) upstream connections; ids \(connIds.sorted())")
        XCTAssertEqual(requests, 50)
        XCTAssertLessThan(conns, requests, "upstream connections must be pooled (upstream saw \(conns) for \(requests) requests)")
        XCTAssertLessThanOrEqual(conns, 2)
    }

    func testKeepAliveReuseAcrossClientConnections() throws {
        let h = try startEdge()
        let before = try h.stats()
        for i in 0..<50 {
            let r = try Curl.run(["http://127.0.0.1:\(h.listenPort)/conn"])
            XCTAssertEqual(r.status, 200, "curl #\(i): \(r.stderr)")
        }
        let after = try h.stats()
        let requests = after.requests - before.requests
        let conns = after.connections - before.connections
        print("keep-alive (50 curl runs): \(requests) upstream requests over \(conns) upstream connections")
        XCTAssertEqual(requests, 50)
        XCTAssertLessThan(conns, requests, "upstream connections must be pooled across client connections")
    }

    func testExpect100ContinueRawSocket() throws {
        let h = try startEdge()
        let body = TestData.pattern(65_536)
        let sha = try TestData.patternSHA256(65_536)
        let c = try RawClient(port: h.listenPort, timeout: 5)
        try c.send("POST /continue HTTP/1.1\r\nHost: c.test\r\nContent-Length: 65536\r\nExpect: 100-continue\r\n\r\n")
        let interim = try c.readResponse(skipInterim: false)
        XCTAssertEqual(interim.status, 100, "client must get 100 Continue before sending the body: \(interim.summary)")
        try c.send(body)
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, r.summary)
        let j = try r.json()
        XCTAssertEqual(j["length"] as? Int, 65_536)
        XCTAssertEqual(j["sha256"] as? String, sha)
        // Connection still usable.
        XCTAssertEqual(try HTTP.request(c, "/echo", port: h.listenPort).status, 200)
    }

    func testExpect100ContinueCurl() throws {
        let h = try startEdge()
        let (file, sha) = try TestData.randomFile(2 << 20, in: h.dir)
        let t0 = OS.now()
        let r = try Curl.run(["-v", "-H", "Expect: 100-continue", "--expect100-timeout", "8",
                              "--data-binary", "@\(file)", "http://127.0.0.1:\(h.listenPort)/continue"])
        let elapsed = OS.now() - t0
        XCTAssertEqual(r.status, 200, r.stderr)
        XCTAssertTrue(r.stderr.contains("HTTP/1.1 100 Continue"), "curl never saw 100 Continue:\n\(r.stderr.suffix(1500))")
        XCTAssertLessThan(elapsed, 6, "curl waited for its expect100 timeout instead of getting 100 Continue")
        let j = try r.json()
        XCTAssertEqual(j["length"] as? Int, 2 << 20)
        XCTAssertEqual(j["sha256"] as? String, sha)
    }

    func testHeadKeepsContentLengthAndHasNoBody() throws {
        let h = try startEdge()
        let c = try RawClient(port: h.listenPort)
        let r = try HTTP.request(c, method: "HEAD", "/bytes?n=12345", port: h.listenPort)
        XCTAssertEqual(r.status, 200, r.summary)
        XCTAssertEqual(r.header("Content-Length"), "12345", "HEAD must keep the upstream Content-Length")
        XCTAssertTrue(r.body.isEmpty)
        // If edge sent body bytes after the HEAD response, the next response would not parse.
        let next = try HTTP.request(c, "/echo?after=head", port: h.listenPort)
        XCTAssertEqual(next.status, 200, next.summary)
        XCTAssertEqual(try EchoedRequest(next).query, "after=head")
    }

    func testNoBodyStatusesKeepConnectionUsable() throws {
        let h = try startEdge()
        let c = try RawClient(port: h.listenPort)
        for code in [204, 304] {
            let r = try HTTP.request(c, "/status/\(code)", port: h.listenPort)
            XCTAssertEqual(r.status, code, r.summary)
            XCTAssertTrue(r.body.isEmpty)
            XCTAssertNil(r.header("Transfer-Encoding"), "\(code) must not be chunked")
            let next = try HTTP.request(c, "/echo?after=\(code)", port: h.listenPort)
            XCTAssertEqual(next.status, 200, "connection unusable after \(code): \(next.summary)")
            XCTAssertEqual(try EchoedRequest(next).query, "after=\(code)")
        }
        // Other statuses with bodies pass through unchanged.
        let teapot = try HTTP.request(c, "/status/418", port: h.listenPort)
        XCTAssertEqual(teapot.status, 418)
        XCTAssertEqual(teapot.text, "status 418\n")
    }
}
