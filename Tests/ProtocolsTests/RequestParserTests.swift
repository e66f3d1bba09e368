import XCTest
@testable import Protocols

final class RequestParserTests: XCTestCase {
    // MARK: strictness table

    /// (name, raw request, expected outcome). Each row breaks exactly one rule.
    static let rejectTable: [(String, String, Outcome)] = [
        // Request line
        ("bad method char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("method then CRLF", "GET\r\nHost: a\r\n\r\n", .error(400)),
        ("double SP after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("double SP before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("tab as separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("control char in target", "GET /a\u{1}b HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("DEL in target", "GET /a\u{7F}b HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("non-ASCII in target", "GET /\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("missing version (HTTP/0.9 style)", "GET /\r\nHost: a\r\n\r\n", .error(400)),
        ("lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("version without minor", "GET / HTTP/1\r\nHost: a\r\n\r\n", .error(400)),
        ("version two-digit minor", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", .error(400)),
        ("version letters", "GET / HTTP/x.y\r\nHost: a\r\n\r\n", .error(400)),
        ("trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .error(400)),
        ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", .error(505)),
        ("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", .error(505)),
        ("HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", .error(505)),
        ("HTTP/3.1", "GET / HTTP/3.1\r\nHost: a\r\n\r\n", .error(505)),
        // Target forms
        ("asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("asterisk with junk", "OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("authority-form with GET", "GET a.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("CONNECT with origin-form", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("CONNECT without port", "CONNECT a.com HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("CONNECT with non-digit port", "CONNECT a.com:44x HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("CONNECT with userinfo", "CONNECT u@a.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("CONNECT empty host", "CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("unknown scheme", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("absolute-form empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("absolute-form userinfo", "GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        // Line endings
        ("bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", .error(400)),
        ("bare LF after header", "GET / HTTP/1.1\r\nHost: a\n\r\n", .error(400)),
        ("bare LF as blank line", "GET / HTTP/1.1\r\nHost: a\r\n\n", .error(400)),
        ("bare LF in method", "GE\nT / HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("bare LF in header name", "GET / HTTP/1.1\r\nHo\nst: a\r\n\r\n", .error(400)),
        ("bare LF leading", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("bare CR in request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", .error(400)),
        ("bare CR in value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", .error(400)),
        ("CR CR LF", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", .error(400)),
        ("bare CR blank line", "GET / HTTP/1.1\r\nHost: a\r\n\rX", .error(400)),
        ("bare CR leading", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        ("too many leading CRLF", String(repeating: "\r\n", count: 9) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", .error(400)),
        // Field lines
        ("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n  b\r\n\r\n", .error(400)),
        ("obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", .error(400)),
        ("whitespace line after request line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", .error(400)),
        ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", .error(400)),
        ("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", .error(400)),
        ("empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", .error(400)),
        ("invalid name char", "GET / HTTP/1.1\r\nHost: a\r\nX(y: b\r\n\r\n", .error(400)),
        ("non-ASCII name", "GET / HTTP/1.1\r\nHost: a\r\nX\u{e9}: b\r\n\r\n", .error(400)),
        ("no colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", .error(400)),
        ("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", .error(400)),
        ("CTL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{1}b\r\n\r\n", .error(400)),
        ("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}b\r\n\r\n", .error(400)),
        ("VT in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{B}\r\n\r\n", .error(400)),
        // Content-Length
        ("CL letters", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", .error(400)),
        ("CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", .error(400)),
        ("CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", .error(400)),
        ("CL plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", .error(400)),
        ("CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", .error(400)),
        ("CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", .error(400)),
        ("CL differing list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", .error(400)),
        ("CL empty list element", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n", .error(400)),
        ("CL trailing comma", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", .error(400)),
        ("CL differing fields", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", .error(400)),
        ("CL 2^63", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", .error(400)),
        ("CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", .error(400)),
        // Transfer-Encoding
        ("CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .error(400)),
        ("TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", .error(400)),
        ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .error(400)),
        ("TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", .error(400)),
        ("TE empty (spaces)", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:   \r\n\r\n", .error(400)),
        ("TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", .error(400)),
        ("TE chunked twice across fields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .error(400)),
        ("TE chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .error(400)),
        ("TE chunked not last across fields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", .error(400)),
        ("TE trailing junk", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked x\r\n\r\n", .error(400)),
        ("TE trailing comma", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", .error(400)),
        ("TE leading comma", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n", .error(400)),
        ("TE bad param", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;\r\n\r\n", .error(400)),
        ("TE quoted junk", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", .error(400)),
        ("TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", .error(501)),
        ("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .error(501)),
        ("TE gzip then chunked fields", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", .error(501)),
        ("TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", .error(501)),
        ("TE chunkedx", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", .error(501)),
        ("TE chunked with param", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", .error(501)),
        ("TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", .error(501)),
        // Host
        ("missing Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", .error(400)),
        ("two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", .error(400)),
        ("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", .error(400)),
        ("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", .error(400)),
        ("Host with at", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", .error(400)),
        ("Host with question mark", "GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", .error(400)),
        ("Host with hash", "GET / HTTP/1.1\r\nHost: a#b\r\n\r\n", .error(400)),
        ("Host with obs-text", "GET / HTTP/1.1\r\nHost: a\u{e9}\r\n\r\n", .error(400)),
        // Connection
        ("Connection with junk", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close x\r\n\r\n", .error(400)),
    ]

    func testRejectTable() {
        for (name, raw, expected) in Self.rejectTable {
            let r = parseRequest(raw)
            XCTAssertEqual(r.outcome, expected, "\(name): got \(r.outcome) \(r.reason ?? "")")
            if case .error = expected { XCTAssertFalse(r.reason?.isEmpty ?? true, name) }
        }
    }

    /// Every prefix of a rejected request must be incomplete or the same error
    /// class, never `.complete`.
    func testRejectTablePrefixesNeverComplete() {
        for (name, raw, _) in Self.rejectTable {
            let b = bytes(raw)
            for n in 0..<b.count {
                let r = parseRequest(Array(b[0..<n]))
                XCTAssertNotEqual(r.outcome, .complete, "\(name) prefix \(n)")
            }
        }
    }

    func testReasons() {
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\nHost: a\r\n\r\n").reason, "bare LF in head")
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n").reason, "obs-fold not allowed")
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\nHost : a\r\n\r\n").reason, "invalid header name")
        XCTAssertEqual(parseRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").reason,
                       "conflicting Content-Length")
        XCTAssertEqual(parseRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n").reason,
                       "both Content-Length and Transfer-Encoding")
        XCTAssertEqual(parseRequest("GET / HTTP/2.0\r\n\r\n").reason, "HTTP version not supported")
        XCTAssertEqual(parseRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n").reason,
                       "unsupported transfer coding")
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\n\r\n").reason, "missing Host header")
        // Errors compare by status and text, not by literal address.
        let e = parseRequest("GET / HTTP/1.1\nHost: a\r\n\r\n").status
        XCTAssertEqual(e, .error(HTTP1Error(status: 400, reason: "bare LF in head")))
        XCTAssertNotEqual(e, .error(HTTP1Error(status: 400, reason: "bare LF in hea")))
        XCTAssertNotEqual(e, .error(HTTP1Error(status: 431, reason: "bare LF in head")))
    }

    // MARK: positive cases

    func testSimpleGet() {
        let r = parseRequest("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n")
        XCTAssertEqual(r.outcome, .complete)
        XCTAssertEqual(r.str(r.head.method), "GET")
        XCTAssertEqual(r.head.methodKind, .get)
        XCTAssertEqual(r.str(r.head.target), "/index.html?q=1")
        XCTAssertEqual(r.head.versionMinor, 1)
        XCTAssertEqual(r.head.headerCount, 2)
        XCTAssertEqual(r.head.headLength, r.raw.count)
        XCTAssertEqual(r.head.framing, .none)
        XCTAssertTrue(r.head.keepAlive)
        XCTAssertFalse(r.head.expectContinue)
        XCTAssertFalse(r.head.isAbsoluteForm)
        XCTAssertEqual(r.head.hostIndex, 0)
        XCTAssertEqual(r.headers[0].kind, .host)
        XCTAssertEqual(r.str(r.headers[0].value), "example.com")
        XCTAssertEqual(r.headers[1].kind, .other)
        XCTAssertEqual(r.str(r.headers[1].name), "User-Agent")
    }

    func testValueTrimmingAndInnerSpaces() {
        let r = parseRequest("GET / HTTP/1.1\r\nHost:a\r\nX-A: \t hello  world \t\r\nX-B:\r\nX-C:   \r\nX-D: \u{e9}t\u{e9}\r\n\r\n")
        XCTAssertEqual(r.outcome, .complete)
        XCTAssertEqual(r.header("host"), "a")
        XCTAssertEqual(r.header("x-a"), "hello  world")
        XCTAssertEqual(r.header("x-b"), "")
        XCTAssertEqual(r.header("x-c"), "")
        XCTAssertEqual(r.header("x-d"), "\u{e9}t\u{e9}")
    }

    func testMethodsAndKinds() {
        let cases: [(String, HTTPMethod)] = [("GET", .get), ("HEAD", .head), ("POST", .post), ("PUT", .put),
                                             ("DELETE", .delete), ("OPTIONS", .options), ("TRACE", .trace),
                                             ("PATCH", .patch), ("PROPFIND", .other), ("get", .other), ("M-SEARCH", .other)]
        for (m, kind) in cases {
            let r = parseRequest("\(m) / HTTP/1.1\r\nHost: a\r\n\r\n")
            XCTAssertEqual(r.outcome, .complete, m)
            XCTAssertEqual(r.head.methodKind, kind, m)
            XCTAssertEqual(r.str(r.head.method), m)
        }
        let c = parseRequest("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        XCTAssertEqual(c.outcome, .complete)
        XCTAssertEqual(c.head.methodKind, .connect)
        XCTAssertEqual(c.str(c.head.target), "example.com:443")
        XCTAssertEqual(parseRequest("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n").outcome, .complete)
        XCTAssertEqual(parseRequest("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").outcome, .complete)
    }

    func testHeaderClassification() {
        let names: [(String, HeaderKind)] = [
            ("Host", .host), ("content-length", .contentLength), ("Transfer-Encoding", .transferEncoding),
            ("CONNECTION", .connection), ("Keep-Alive", .keepAlive), ("Proxy-Connection", .proxyConnection),
            ("TE", .te), ("Trailer", .trailer), ("Upgrade", .upgrade), ("Expect", .expect), ("Via", .via),
            ("X-Forwarded-For", .xForwardedFor), ("x-forwarded-proto", .xForwardedProto),
            ("X-Forwarded-Host", .xForwardedHost), ("X-Request-ID", .xRequestId),
            ("Proxy-Authenticate", .proxyAuthenticate), ("Proxy-Authorization", .proxyAuthorization),
            ("Hosts", .other), ("Hos", .other), ("X", .other), ("Content-Lengths", .other), ("Trailers", .other),
            ("Upgrades", .other), ("Tf", .other), ("X-Forwarded-Fox", .other), ("Connectiom", .other),
        ]
        for (name, kind) in names {
            let raw = bytes(name)
            let got = raw.withUnsafeBytes { classifyHeaderName($0, start: 0, count: raw.count) }
            XCTAssertEqual(got, kind, name)
        }
    }

    func testPostWithContentLength() {
        let r = parseRequest("POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world")
        XCTAssertEqual(r.outcome, .complete)
        XCTAssertEqual(r.head.methodKind, .post)
        XCTAssertEqual(r.head.framing, .contentLength(11))
        XCTAssertEqual(r.head.headLength, r.raw.count - 11)
    }

    func testContentLengthVariants() {
        func framing(_ cl: String) -> BodyFraming? {
            let r = parseRequest("POST / HTTP/1.1\r\nHost: a\r\n\(cl)\r\n\r\n")
            return r.outcome == .complete ? r.head.framing : nil
        }
        XCTAssertEqual(framing("Content-Length: 0"), BodyFraming.none, "CL 0 is reported as .none")
        XCTAssertEqual(framing("Content-Length: 000"), BodyFraming.none)
        // Agreeing duplicates are refused too (RFC 9110 §8.6 allows it): Edge
        // forwards fields verbatim, so it must not pass "5, 5" on (SmugglingTests).
        XCTAssertNil(framing("Content-Length: 5, 5"))
        XCTAssertNil(framing("Content-Length: 5,5 ,  5"))
        XCTAssertNil(framing("Content-Length: 5\r\nContent-Length: 5"))
        XCTAssertEqual(framing("Content-Length: 007"), .contentLength(7))
        XCTAssertEqual(framing("Content-Length: 9223372036854775807"), .contentLength(9_223_372_036_854_775_807))
    }

    /// Request-smuggling hardening (see README "Security" and
    /// IntegrationTests/SmugglingTests): each of these used to parse as
    /// `.complete` and reached the upstream in a form it could frame differently.
    func testSmugglingHardening() {
        let cases: [(String, String, String)] = [
            ("CL repeated, same value",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "repeated Content-Length"),
            ("CL list, same value", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", "repeated Content-Length"),
            ("CL list without space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\nhello", "repeated Content-Length"),
            // Connection-listed fields are dropped as hop-by-hop: dropping
            // Content-Length would leave the body to be read as the next request.
            ("Connection lists Content-Length",
             "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello",
             "Connection lists Content-Length or Host"),
            ("Connection lists content-length among others",
             "POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-a ,CONTENT-LENGTH\r\nContent-Length: 5\r\n\r\nhello",
             "Connection lists Content-Length or Host"),
            ("Connection lists Host", "GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n",
             "Connection lists Content-Length or Host"),
            ("Connection lists Host, second field", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: Host\r\n\r\n",
             "Connection lists Content-Length or Host"),
            ("Transfer_Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
             "framing header name with underscore"),
            ("transfer_encoding lowercase", "POST / HTTP/1.1\r\nHost: a\r\ntransfer_encoding: chunked\r\n\r\n",
             "framing header name with underscore"),
            ("Content_Length", "POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\nhello",
             "framing header name with underscore"),
            ("CONTENT_LENGTH", "POST / HTTP/1.0\r\nCONTENT_LENGTH: 5\r\n\r\nhello", "framing header name with underscore"),
        ]
        for (name, raw, reason) in cases {
            let r = parseRequest(raw)
            XCTAssertEqual(r.outcome, .error(400), name)
            XCTAssertEqual(r.reason, reason, name)
        }
        // Neighbours that stay valid.
        let ok = [
            "POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-content-length\r\nContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: hosts, x-host\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX_Content_Length: 5\r\nContent-Lengthx: 1\r\nTransfer_Encodings: x\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n",
        ]
        for raw in ok { XCTAssertEqual(parseRequest(raw).outcome, .complete, raw) }
        // The response parser keeps accepting agreeing duplicates (framing is unambiguous)...
        XCTAssertEqual(parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n").head.framing, .contentLength(5))
        // ...but a response whose Connection lists Content-Length would reach the
        // client unframed (the field is dropped as hop-by-hop): 502.
        let resp = parseResponse("HTTP/1.1 200 OK\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 5\r\n\r\n")
        XCTAssertEqual(resp.outcome, .error(502))
        XCTAssertEqual(resp.reason, "Connection lists Content-Length")
        XCTAssertEqual(parseResponse("HTTP/1.1 200 OK\r\nConnection: host\r\nContent-Length: 5\r\n\r\n").outcome, .complete)
    }

    func testChunkedRequest() {
        let r = parseRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        XCTAssertEqual(r.outcome, .complete)
        XCTAssertEqual(r.head.framing, .chunked)
        for te in ["Chunked", "CHUNKED", "chunked ", "chunked\t"] {
            let r = parseRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(te)\r\n\r\n")
            XCTAssertEqual(r.head.framing, .chunked, te)
        }
    }

    func testPipelined() {
        let raw = bytes("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        var head = RequestHead()
        var table = [HeaderField](repeating: .empty, count: 10)
        raw.withUnsafeBytes { buf in
            table.withUnsafeMutableBufferPointer { hp in
                XCTAssertEqual(HTTP1Parser.parseRequest(buf, limits: HTTP1Limits(), head: &head, headers: hp), .complete)
                let first = head.headLength
                XCTAssertEqual(first, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n".utf8.count)
                XCTAssertTrue(head.keepAlive)
                let rest = UnsafeRawBufferPointer(rebasing: buf[first...])
                XCTAssertEqual(HTTP1Parser.parseRequest(rest, limits: HTTP1Limits(), head: &head, headers: hp), .complete)
                XCTAssertEqual(head.headLength, raw.count - first)
                XCTAssertFalse(head.keepAlive)
                let t = head.target
                XCTAssertEqual(String(decoding: rest[Int(t.offset)..<t.end], as: UTF8.self), "/b")
            }
        }
    }

    func testAbsoluteForm() {
        let r = parseRequest("GET HTTP://Example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n")
        XCTAssertEqual(r.outcome, .complete)
        XCTAssertTrue(r.head.isAbsoluteForm)
        XCTAssertEqual(r.str(r.head.absoluteAuthority), "Example.com:8080")
        XCTAssertEqual(r.str(r.head.absolutePath), "/p/q?x=1")
        let s = parseRequest("GET https://a.com HTTP/1.1\r\nHost: a.com\r\n\r\n")
        XCTAssertEqual(s.outcome, .complete)
        XCTAssertTrue(s.head.isAbsoluteForm)
        XCTAssertEqual(s.str(s.head.absoluteAuthority), "a.com")
        XCTAssertEqual(s.head.absolutePath.length, 0)
        let q = parseRequest("GET http://a.com?x HTTP/1.1\r\nHost: a.com\r\n\r\n")
        XCTAssertEqual(q.str(q.head.absoluteAuthority), "a.com")
        XCTAssertEqual(q.str(q.head.absolutePath), "?x")
        let v6 = parseRequest("GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n")
        XCTAssertEqual(v6.str(v6.head.absoluteAuthority), "[::1]:80")
    }

    func testHTTP10KeepAlive() {
        let plain = parseRequest("GET / HTTP/1.0\r\n\r\n")
        XCTAssertEqual(plain.outcome, .complete)
        XCTAssertEqual(plain.head.versionMinor, 0)
        XCTAssertFalse(plain.head.keepAlive)
        XCTAssertEqual(plain.head.hostIndex, -1)
        let ka = parseRequest("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        XCTAssertTrue(ka.head.keepAlive)
        let both = parseRequest("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")
        XCTAssertFalse(both.head.keepAlive)
        // Expect is only honoured for HTTP/1.1.
        let ex = parseRequest("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
        XCTAssertFalse(ex.head.expectContinue)
    }

    func testConnectionTokens() {
        let close = parseRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n")
        XCTAssertFalse(close.head.keepAlive)
        XCTAssertFalse(close.head.connectionListsOther)
        let multi = parseRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: , Upgrade ,x-foo\r\nUpgrade: websocket\r\n\r\n")
        XCTAssertEqual(multi.outcome, .complete)
        XCTAssertTrue(multi.head.keepAlive)
        XCTAssertTrue(multi.head.wantsUpgrade)
        XCTAssertTrue(multi.head.connectionListsOther)
        let noUpgradeHeader = parseRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n")
        XCTAssertFalse(noUpgradeHeader.head.wantsUpgrade)
        let upgradeNoToken = parseRequest("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")
        XCTAssertFalse(upgradeNoToken.head.wantsUpgrade)
    }

    func testIsListedInConnection() {
        let raw = bytes("GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret\r\nConnection: foo\r\nx-secret: 1\r\nFoo: 2\r\nBar: 3\r\n\r\n")
        var head = RequestHead()
        var table = [HeaderField](repeating: .empty, count: 10)
        raw.withUnsafeBytes { buf in
            table.withUnsafeMutableBufferPointer { hp in
                XCTAssertEqual(HTTP1Parser.parseRequest(buf, limits: HTTP1Limits(), head: &head, headers: hp), .complete)
                XCTAssertTrue(head.connectionListsOther)
                let ro = UnsafeBufferPointer(hp)
                let n = head.headerCount
                XCTAssertTrue(HTTP1Parser.isListedInConnection(buf, headers: ro, count: n, name: hp[3].name))
                XCTAssertTrue(HTTP1Parser.isListedInConnection(buf, headers: ro, count: n, name: hp[4].name))
                XCTAssertFalse(HTTP1Parser.isListedInConnection(buf, headers: ro, count: n, name: hp[5].name))
                XCTAssertFalse(HTTP1Parser.isListedInConnection(buf, headers: ro, count: n, name: hp[0].name))
                // Garbage ranges and counts never trap.
                XCTAssertFalse(HTTP1Parser.isListedInConnection(buf, headers: ro, count: 1000,
                                                                name: ByteRange(offset: 1_000_000, length: 5)))
                XCTAssertFalse(HTTP1Parser.isListedInConnection(buf, headers: ro, count: -1, name: hp[3].name))
            }
        }
    }

    func testExpect() {
        XCTAssertTrue(parseRequest("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n").head.expectContinue)
        let other = parseRequest("POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 3\r\n\r\n")
        XCTAssertEqual(other.outcome, .complete)
        XCTAssertFalse(other.head.expectContinue)
    }

    func testLeadingCRLF() {
        let r = parseRequest("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(r.outcome, .complete)
        XCTAssertEqual(r.head.headLength, r.raw.count)
        XCTAssertEqual(r.str(r.head.method), "GET")
        XCTAssertEqual(parseRequest("\r\n").outcome, .incomplete)
        XCTAssertEqual(parseRequest("\r").outcome, .incomplete)
        XCTAssertEqual(parseRequest(String(repeating: "\r\n", count: 8) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n").outcome, .complete)
    }

    func testHostVariants() {
        for host in ["example.com", "example.com:8080", "[::1]:80", "a-b_c.d~e", "xn--bcher-kva.example", ""] {
            let r = parseRequest("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
            XCTAssertEqual(r.outcome, .complete, host)
            XCTAssertEqual(r.header("host"), host)
        }
    }

    // MARK: incompleteness

    static let validRequests: [String] = [
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /submit?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nX-Empty:\r\nX-Spaces:  a b  \r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "\r\n\r\nGET http://a.com/x HTTP/1.1\r\nHost: a.com\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "CONNECT a.com:443 HTTP/1.1\r\nHost: a.com:443\r\n\r\n",
    ]

    func testIncompleteAtEverySplit() {
        for raw in Self.validRequests {
            let b = bytes(raw)
            XCTAssertEqual(parseRequest(b).outcome, .complete, raw)
            for n in 0..<b.count {
                let r = parseRequest(Array(b[0..<n]))
                XCTAssertEqual(r.outcome, .incomplete, "prefix \(n) of \(raw.debugDescription): \(r.reason ?? "")")
            }
        }
    }

    // MARK: limits

    func testRequestLineTooLong() {
        let limits = HTTP1Limits(maxRequestLine: 64, maxHeaderBytes: 4096, maxHeaderCount: 10)
        let longTarget = "/" + String(repeating: "a", count: 100)
        XCTAssertEqual(parseRequest("GET \(longTarget) HTTP/1.1\r\nHost: a\r\n\r\n", limits: limits).outcome, .error(414))
        // Incomplete: no CRLF yet within the limit.
        XCTAssertEqual(parseRequest("GET \(longTarget)", limits: limits).outcome, .error(414))
        XCTAssertEqual(parseRequest("GET /" + String(repeating: "a", count: 30), limits: limits).outcome, .incomplete)
        // Exactly at the limit (line incl. CRLF == 64) passes, one more fails.
        let fit = "GET /" + String(repeating: "a", count: 64 - 16) + " HTTP/1.1\r\n"
        XCTAssertEqual(fit.utf8.count, 64)
        XCTAssertEqual(parseRequest(fit + "Host: a\r\n\r\n", limits: limits).outcome, .complete)
        let over = "GET /" + String(repeating: "a", count: 64 - 16 + 1) + " HTTP/1.1\r\n"
        XCTAssertEqual(parseRequest(over + "Host: a\r\n\r\n", limits: limits).outcome, .error(414))
        XCTAssertEqual(parseRequest(over, limits: limits).outcome, .error(414))
        // Leading CRLFs do not count toward the request line.
        XCTAssertEqual(parseRequest("\r\n" + fit + "Host: a\r\n\r\n", limits: limits).outcome, .complete)
    }

    func testHeadTooLarge() {
        let limits = HTTP1Limits(maxRequestLine: 1024, maxHeaderBytes: 128, maxHeaderCount: 50)
        let big = "X-Big: " + String(repeating: "b", count: 200)
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\nHost: a\r\n\(big)\r\n\r\n", limits: limits).outcome, .error(431))
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\nHost: a\r\n\(big)", limits: limits).outcome, .error(431))
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nX-Big: bbbb", limits: limits).outcome, .incomplete)
        // Exactly maxHeaderBytes passes; one byte more fails.
        let base = "GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n"
        let pad = String(repeating: "p", count: 128 - base.utf8.count)
        let exact = "GET / HTTP/1.1\r\nHost: a\r\nX: \(pad)\r\n\r\n"
        XCTAssertEqual(exact.utf8.count, 128)
        XCTAssertEqual(parseRequest(exact, limits: limits).outcome, .complete)
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nX: \(pad)p\r\n\r\n", limits: limits).outcome, .error(431))
        // Incomplete but already at the limit without the blank line.
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nX: \(pad)pp\r\n", limits: limits).outcome, .error(431))
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\nHost: a\r\nX: \(pad)\r\n\r", limits: limits).outcome, .incomplete)
        // A request line bigger than the head limit is 431 (head limit is smaller).
        let tiny = HTTP1Limits(maxRequestLine: 1024, maxHeaderBytes: 16, maxHeaderCount: 5)
        XCTAssertEqual(parseRequest("GET /aaaaaaaaaaaaaaaaaaaaaaaa", limits: tiny).outcome, .error(431))
    }

    func testTooManyHeaders() {
        let limits = HTTP1Limits(maxRequestLine: 1024, maxHeaderBytes: 65536, maxHeaderCount: 5)
        var raw = "GET / HTTP/1.1\r\nHost: a\r\n"
        for i in 0..<4 { raw += "X-\(i): v\r\n" }
        XCTAssertEqual(parseRequest(raw + "\r\n", limits: limits).outcome, .complete)
        XCTAssertEqual(parseRequest(raw + "X-5: v\r\n\r\n", limits: limits).outcome, .error(431))
        // Detected as soon as the sixth field starts, while still incomplete.
        XCTAssertEqual(parseRequest(raw + "X", limits: limits).outcome, .error(431))
        // A caller table smaller than the limit acts as the limit.
        XCTAssertEqual(parseRequest(bytes(raw + "\r\n"), capacity: 5).outcome, .complete)
        XCTAssertEqual(parseRequest(bytes(raw + "X-5: v\r\n\r\n"), capacity: 5).outcome, .error(431))
        XCTAssertEqual(parseRequest(bytes("GET / HTTP/1.0\r\n\r\n"), capacity: 0).outcome, .complete)
        XCTAssertEqual(parseRequest(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), capacity: 0).outcome, .error(431))
    }

    func testEmptyAndTinyBuffers() {
        XCTAssertEqual(parseRequest([UInt8]()).outcome, .incomplete)
        var head = RequestHead()
        var table = [HeaderField](repeating: .empty, count: 4)
        let st = table.withUnsafeMutableBufferPointer { hp in
            HTTP1Parser.parseRequest(UnsafeRawBufferPointer(start: nil, count: 0), limits: HTTP1Limits(), head: &head, headers: hp)
        }
        XCTAssertEqual(st, .incomplete)
        // Zero / negative limits never trap.
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\n\r\n", limits: HTTP1Limits(maxRequestLine: 0, maxHeaderBytes: 0, maxHeaderCount: 0)).outcome, .error(431))
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\n\r\n", limits: HTTP1Limits(maxRequestLine: -5, maxHeaderBytes: 100, maxHeaderCount: -1)).outcome, .error(414))
        XCTAssertEqual(parseRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n", limits: HTTP1Limits(maxRequestLine: .max, maxHeaderBytes: .max, maxHeaderCount: .max)).outcome, .complete)
    }
}
