// The error contract: what a client gets when routing or the upstream fails.

import Foundation
import XCTest

final class ProxyErrorTests: EdgeTestCase {

    /// After an error the proxy must still serve normally.
    private func assertStillServes(_ h: EdgeHarness, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let r = try HTTP.get(port: h.listenPort, "/echo?still=1")
            XCTAssertEqual(r.status, 200, "edge no longer serves after the error: \(r.summary)", file: file, line: line)
        } catch {
            XCTFail("edge no longer serves after the error: \(error)", file: file, line: line)
        }
    }

    func testUnknownRouteIs404() throws {
        let h = try startEdge()
        let before = try h.stats()
        let r = try HTTP.get(port: h.listenPort, "/nothing-here")
        XCTAssertEqual(r.status, 404, r.summary)
        XCTAssertEqual(r.header("x-edge-error"), "route_not_found")
        XCTAssertEqual(try h.stats().requests, before.requests, "404 must not reach the upstream")
    }

    func testDirectResponse() throws {
        let h = try startEdge()
        let before = try h.stats()
        let r = try HTTP.get(port: h.listenPort, "/direct")
        XCTAssertEqual(r.status, 201, r.summary)
        XCTAssertEqual(r.header("x-direct"), "yes")
        XCTAssertEqual(r.header("content-type"), "text/plain")
        XCTAssertEqual(r.text, "direct body\n")
        XCTAssertEqual(r.header("content-length"), "12")
        // HEAD of a direct response: headers, no body.
        let c = try RawClient(port: h.listenPort)
        let head = try HTTP.request(c, method: "HEAD", "/direct", port: h.listenPort)
        XCTAssertEqual(head.status, 201)
        XCTAssertTrue(head.body.isEmpty)
        XCTAssertEqual(try HTTP.request(c, "/direct", port: h.listenPort).text, "direct body\n")
        XCTAssertEqual(try h.stats().requests, before.requests, "direct_response must not reach the upstream")
    }

    func testUpstreamConnectionRefusedIs502() throws {
        let h = try startEdge()
        let r = try HTTP.get(port: h.listenPort, "/refused/echo")
        XCTAssertEqual(r.status, 502, r.summary)
        XCTAssertEqual(r.header("x-edge-error"), "upstream_connect_refused")
        assertStillServes(h)
    }

    func testUpstreamConnectTimeoutIs504() throws {
        let h = try startEdge()  // cluster `blackhole`: connect_timeout 300ms, accept queue full
        let t0 = OS.now()
        let r = try HTTP.get(port: h.listenPort, "/blackhole/echo", timeout: 10)
        let elapsed = OS.now() - t0
        XCTAssertEqual(r.status, 504, r.summary)
        XCTAssertEqual(r.header("x-edge-error"), "upstream_connect_timeout")
        XCTAssertGreaterThanOrEqual(elapsed, 0.25, "answered before connect_timeout (300ms) elapsed")
        XCTAssertLessThan(elapsed, 3, "connect_timeout 300ms not honoured (took \(elapsed)s)")
        assertStillServes(h)
    }

    func testRouteTimeoutIs504() throws {
        let h = try startEdge()  // /t500 → up with timeout: 500ms
        let t0 = OS.now()
        let r = try HTTP.get(port: h.listenPort, "/t500/slow?ms=3000", timeout: 10)
        let elapsed = OS.now() - t0
        XCTAssertEqual(r.status, 504, r.summary)
        XCTAssertEqual(r.header("x-edge-error"), "upstream_timeout")
        XCTAssertGreaterThanOrEqual(elapsed, 0.45, "answered before the 500ms route timeout")
        XCTAssertLessThan(elapsed, 2.5, "route timeout 500ms not honoured (took \(elapsed)s)")
        // A fast enough response on the same route passes.
        let ok = try HTTP.get(port: h.listenPort, "/t500/slow?ms=50")
        XCTAssertEqual(ok.status, 200, ok.summary)
        XCTAssertEqual(ok.text, "slow done\n")
        assertStillServes(h)
    }

    func testUpstreamClosesWithoutResponseIs502() throws {
        let h = try startEdge()
        let r = try HTTP.get(port: h.listenPort, "/close-early?mode=nohead")
        XCTAssertEqual(r.status, 502, r.summary)
        XCTAssertTrue(["upstream_closed", "upstream_reset"].contains(r.header("x-edge-error") ?? ""),
                      "x-edge-error: \(r.header("x-edge-error") ?? "nil")")
        assertStillServes(h)
    }

    func testUpstreamClosesDuringHeadIs502() throws {
        let h = try startEdge()
        let r = try HTTP.get(port: h.listenPort, "/close-early?mode=head")
        XCTAssertEqual(r.status, 502, r.summary)
        XCTAssertTrue(["upstream_closed", "upstream_reset"].contains(r.header("x-edge-error") ?? ""),
                      "x-edge-error: \(r.header("x-edge-error") ?? "nil")")
        assertStillServes(h)
    }

    func testUpstreamClosesMidBodyClosesClient() throws {
        let h = try startEdge()
        let c = try RawClient(port: h.listenPort, timeout: 5)
        try c.send("GET /close-early?mode=body HTTP/1.1\r\nHost: t\r\n\r\n")
        let t0 = OS.now()
        let r = try c.readResponse()  // reads until the announced length or close
        XCTAssertEqual(r.status, 200, r.summary)
        XCTAssertEqual(r.header("content-length"), "100000")
        XCTAssertTrue(r.truncated, "body must be truncated (upstream sent 1000 of 100000 bytes)")
        XCTAssertEqual(r.body.count, 1000)
        XCTAssertTrue(r.body == TestData.pattern(1000))
        XCTAssertLessThan(OS.now() - t0, 4.5, "client connection must be closed, not left hanging")
        assertStillServes(h)
    }

    func testGarbageResponseIs502() throws {
        let h = try startEdge()
        let r = try HTTP.get(port: h.listenPort, "/garbage")
        XCTAssertEqual(r.status, 502, r.summary)
        XCTAssertEqual(r.header("x-edge-error"), "upstream_bad_response")
        assertStillServes(h)
    }
}
