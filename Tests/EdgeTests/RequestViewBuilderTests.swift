import XCTest
import Protocols
@testable import Edge

/// `RequestView.make`: the one builder of the routing view (reactor, fuzz, benchmarks).
final class RequestViewBuilderTests: XCTestCase {
    /// Parses `head` and hands `body` the view `RequestView.make` builds over it.
    private func withView(_ head: String, clientIP: String = "192.0.2.7", file: StaticString = #filePath, line: UInt = #line,
                          _ body: (RequestView) -> Void) {
        let bytes = Array(head.utf8), ip = Array(clientIP.utf8)
        var fields = [HeaderField](repeating: .empty, count: 16)
        bytes.withUnsafeBytes { buf in ip.withUnsafeBytes { ipBuf in fields.withUnsafeMutableBufferPointer { table in
            var rh = RequestHead()
            guard HTTP1Parser.parseRequest(buf, limits: HTTP1Limits(maxHeaderCount: table.count), head: &rh,
                                           headers: table) == .complete else {
                XCTFail("head does not parse: \(head)", file: file, line: line)
                return
            }
            body(RequestView.make(head: rh, buffer: buf, headers: UnsafeBufferPointer(table), clientIP: ipBuf))
        } } }
    }

    private func text(_ b: UnsafeRawBufferPointer) -> String { String(decoding: b, as: UTF8.self) }

    /// Request head, then the host, path and query the view must show.
    static let cases: [(head: String, host: String, path: String, query: String)] = [
        // Host field, port stripped.
        ("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", "/", ""),
        ("GET / HTTP/1.1\r\nHost: API.Example.com:8080\r\n\r\n", "API.Example.com", "/", ""),
        // IPv6 literals keep their brackets, with or without a port.
        ("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "[::1]", "/", ""),
        ("GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", "[::1]", "/", ""),
        ("GET / HTTP/1.1\r\nHost: [2001:db8::5]:443\r\n\r\n", "[2001:db8::5]", "/", ""),
        // Absolute form: the authority wins over Host.
        ("GET http://www.example.org:81/static/a.css?v=2 HTTP/1.1\r\nHost: other.example\r\n\r\n",
         "www.example.org", "/static/a.css", "v=2"),
        ("GET http://[::1]:8080/x HTTP/1.1\r\nHost: other.example\r\n\r\n", "[::1]", "/x", ""),
        // Nothing after the authority: empty path.
        ("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", "", ""),
        // Query split at the first '?'; a bare '?' leaves it empty.
        ("GET /api/v1/items?x=1&y=2 HTTP/1.1\r\nHost: a\r\n\r\n", "a", "/api/v1/items", "x=1&y=2"),
        ("GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n", "a", "/a", "b?c"),
        ("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", "a", "/a", ""),
        // No Host at all.
        ("GET / HTTP/1.0\r\n\r\n", "", "/", ""),
    ]

    func testHostPathAndQuery() {
        for c in Self.cases {
            withView(c.head) { v in
                XCTAssertEqual(text(v.host), c.host, "host of \(c.head.debugDescription)")
                XCTAssertEqual(text(v.path), c.path, "path of \(c.head.debugDescription)")
                XCTAssertEqual(text(v.query), c.query, "query of \(c.head.debugDescription)")
            }
        }
    }

    func testEmptyTarget() {
        // An empty target range (as a head with no target would have) gives an empty path and query.
        var rh = RequestHead()
        rh.hostIndex = -1
        let v = RequestView.make(head: rh, buffer: UnsafeRawBufferPointer(start: nil, count: 0),
                                 headers: UnsafeBufferPointer(start: nil, count: 0), clientIP: UnsafeRawBufferPointer(start: nil, count: 0))
        XCTAssertEqual(v.host.count, 0)
        XCTAssertEqual(v.path.count, 0)
        XCTAssertEqual(v.query.count, 0)
        XCTAssertEqual(v.headers.count, 0)
    }

    func testMethodHeadersAndClientIP() {
        withView("POST /p HTTP/1.1\r\nHost: a\r\nX-Tenant: t\r\n\r\n", clientIP: "2001:db8::1") { v in
            XCTAssertEqual(v.method, .post)
            XCTAssertEqual(v.headers.count, 2)
            XCTAssertEqual(text(v.clientIP), "2001:db8::1")
            let tenant = v.headers[1].value
            XCTAssertEqual(text(UnsafeRawBufferPointer(rebasing: v.head[Int(tenant.offset)..<Int(tenant.end)])), "t")
        }
    }

    func testStreamViewCarriesOnlyTheClient() {
        let ip = Array("192.0.2.9".utf8)
        ip.withUnsafeBytes { b in
            let v = RequestView.stream(clientIP: b)
            XCTAssertEqual(text(v.clientIP), "192.0.2.9")
            XCTAssertEqual(v.host.count + v.path.count + v.query.count + v.head.count + v.headers.count, 0)
            XCTAssertEqual(v.method, .other)
        }
    }
}
