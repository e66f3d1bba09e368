import XCTest
@testable import Protocols

final class ResponseParserTests: XCTestCase {
    func testSimple() {
        let r = parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello")
        XCTAssertEqual(r.outcome, .complete)
        XCTAssertEqual(r.head.status, 200)
        XCTAssertEqual(r.str(r.head.reason), "OK")
        XCTAssertEqual(r.head.versionMinor, 1)
        XCTAssertEqual(r.head.headerCount, 2)
        XCTAssertEqual(r.head.headLength, r.raw.count - 5)
        XCTAssertEqual(r.head.framing, .contentLength(5))
        XCTAssertTrue(r.head.keepAlive)
        XCTAssertEqual(r.headers[0].kind, .contentLength)
    }

    func testReasonPhrases() {
        XCTAssertEqual(parseResponse("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").str(ByteRange(offset: 13, length: 9)), "Not Found")
        let empty = parseResponse("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(empty.outcome, .complete)
        XCTAssertEqual(empty.head.reason.length, 0)
        let missing = parseResponse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(missing.outcome, .complete)
        XCTAssertEqual(missing.head.reason.length, 0)
        let odd = parseResponse("HTTP/1.1 599 Some\tthing \u{e9}\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(odd.outcome, .complete)
        XCTAssertEqual(odd.head.status, 599)
        XCTAssertEqual(odd.str(odd.head.reason), "Some\tthing \u{e9}")
    }

    static let framingTable: [(String, String, HTTPMethod, BodyFraming, Bool)] = [
        // name, raw, request method, framing, keepAlive
        ("CL", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", .get, .contentLength(10), true),
        ("CL 0 is none", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", .get, .none, true),
        ("CL list", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", .get, .contentLength(3), true),
        ("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .get, .chunked, true),
        ("gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .get, .chunked, true),
        ("TE overrides CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .get, .chunked, false),
        ("TE non-chunked final", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", .get, .untilClose, false),
        ("TE chunked not final", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .get, .untilClose, false),
        ("close-delimited", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", .get, .untilClose, false),
        ("HTTP/1.0 close-delimited", "HTTP/1.0 200 OK\r\n\r\n", .get, .untilClose, false),
        ("HTTP/1.0 keep-alive CL", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", .get, .contentLength(1), true),
        ("HTTP/1.0 CL no keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", .get, .contentLength(1), false),
        ("Connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", .get, .contentLength(1), false),
        ("HEAD response with CL", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", .head, .none, true),
        ("HEAD response chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", .head, .none, true),
        ("204", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", .get, .none, true),
        ("304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", .get, .none, true),
        ("100", "HTTP/1.1 100 Continue\r\n\r\n", .post, .none, true),
        ("101", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", .get, .none, true),
        ("103", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", .get, .none, true),
        ("CONNECT 200", "HTTP/1.1 200 Connection established\r\n\r\n", .connect, .none, true),
        ("CONNECT 407", "HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n", .connect, .contentLength(2), true),
        ("leading CRLF", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", .get, .contentLength(1), true),
    ]

    func testFraming() {
        for (name, raw, method, framing, keepAlive) in Self.framingTable {
            let r = parseResponse(raw, method: method)
            XCTAssertEqual(r.outcome, .complete, "\(name): \(r.reason ?? "")")
            XCTAssertEqual(r.head.framing, framing, name)
            XCTAssertEqual(r.head.keepAlive, keepAlive, name)
            XCTAssertEqual(r.head.headLength, r.raw.count, name)
        }
    }

    static let rejectTable: [(String, String)] = [
        ("garbage", "garbage\r\n\r\n"),
        ("lowercase version", "http/1.1 200 OK\r\n\r\n"),
        ("HTTP/2", "HTTP/2 200 OK\r\n\r\n"),
        ("HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"),
        ("HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n"),
        ("two-digit status", "HTTP/1.1 20 OK\r\n\r\n"),
        ("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"),
        ("status 099", "HTTP/1.1 099 OK\r\n\r\n"),
        ("status 000", "HTTP/1.1 000 OK\r\n\r\n"),
        ("letters in status", "HTTP/1.1 2x0 OK\r\n\r\n"),
        ("double SP", "HTTP/1.1  200 OK\r\n\r\n"),
        ("no SP", "HTTP/1.1200 OK\r\n\r\n"),
        ("CTL in reason", "HTTP/1.1 200 O\u{1}K\r\n\r\n"),
        ("bare LF status line", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
        ("bare LF no reason", "HTTP/1.1 200\n\r\n"),
        ("bare CR status line", "HTTP/1.1 200 OK\rX\r\n\r\n"),
        ("bare LF header", "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"),
        ("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
        ("space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"),
        ("NUL in value", "HTTP/1.1 200 OK\r\nX: \u{0}\r\nContent-Length: 0\r\n\r\n"),
        ("bad CL", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
        ("conflicting CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        ("bad TE", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked x\r\n\r\n"),
        ("empty TE", "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n"),
        ("double chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
        ("TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("bad Connection", "HTTP/1.1 200 OK\r\nConnection: a b\r\nContent-Length: 0\r\n\r\n"),
    ]

    func testRejects() {
        for (name, raw) in Self.rejectTable {
            let r = parseResponse(raw)
            XCTAssertEqual(r.outcome, .error(502), "\(name): got \(r.outcome)")
            let b = bytes(raw)
            for n in 0..<b.count {
                XCTAssertNotEqual(parseResponse(Array(b[0..<n])).outcome, .complete, "\(name) prefix \(n)")
            }
        }
    }

    func testIncompleteAtEverySplit() {
        for (name, raw, method, _, _) in Self.framingTable {
            let b = bytes(raw)
            for n in 0..<b.count {
                let r = parseResponse(Array(b[0..<n]), method: method)
                XCTAssertEqual(r.outcome, .incomplete, "\(name) prefix \(n): \(r.reason ?? "")")
            }
        }
    }

    func testLimits() {
        let limits = HTTP1Limits(maxRequestLine: 64, maxHeaderBytes: 64, maxHeaderCount: 2)
        let big = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 100)
        XCTAssertEqual(parseResponse(big + "\r\n\r\n", limits: limits).outcome, .error(502))
        XCTAssertEqual(parseResponse(big, limits: limits).outcome, .error(502))
        XCTAssertEqual(parseResponse("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits).outcome, .error(502))
        XCTAssertEqual(parseResponse("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", limits: limits).outcome, .complete)
    }

    func testConnectionListsOther() {
        let r = parseResponse("HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\nContent-Length: 0\r\n\r\n")
        XCTAssertTrue(r.head.connectionListsOther)
        r.raw.withUnsafeBytes { buf in
            r.headers.withUnsafeBufferPointer { hp in
                XCTAssertTrue(HTTP1Parser.isListedInConnection(buf, headers: hp, count: hp.count, name: hp[1].name))
                XCTAssertFalse(HTTP1Parser.isListedInConnection(buf, headers: hp, count: hp.count, name: hp[2].name))
            }
        }
    }
}
