// Request-smuggling probes: raw bytes sent to the real `edge` binary in front of
// recorder.py, a raw-socket upstream that records every byte it receives.
//
// For every probe the test checks both sides:
// - client side: the exact sequence of statuses Edge answers with, that each
//   forwarded request produced exactly one client-visible upstream response
//   (X-Recorder header), and whether Edge closed the connection;
// - upstream side: the recorded bytes are re-parsed by `StrictHTTP1` below (a
//   deliberately unforgiving RFC 9112 framer). They must split into exactly the
//   expected requests ("METHOD target" list), each with unambiguous framing
//   (at most one Content-Length, Transfer-Encoding exactly "chunked", never
//   both, no framing-like names), a single Host, and no leftover bytes that
//   could start another request. A refused probe must leave the recorder with
//   zero new bytes (unless the probe says the head may already have gone out,
//   in which case the connection must be closed with an incomplete request).
//
// The probe list is documented in README.md ("Security").

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Strict HTTP/1.1 request framer (test-side)

/// One request as the strict framer read it from the upstream capture.
struct FramedRequest {
    var method: String
    var target: String
    var version: String
    var headers: [(name: String, value: String)]
    var framing: String
    var body: [UInt8]
    var trailers: [(name: String, value: String)]

    func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
    var line: String { "\(method) \(target)" }
}

enum StrictHTTP1 {
    enum Step {
        case request(FramedRequest, end: Int)
        case incomplete
        case invalid(String)
    }

    static func isTchar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(c)
        }
    }

    static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
    }

    private enum Line { case line([UInt8], next: Int), incomplete, invalid(String) }

    /// A CRLF-terminated line at `p`; bare CR or bare LF is invalid.
    private static func line(_ b: [UInt8], _ p: Int) -> Line {
        var i = p
        while i < b.count {
            if b[i] == 0x0A { return .invalid("bare LF at offset \(i)") }
            if b[i] == 0x0D {
                guard i + 1 < b.count else { return .incomplete }
                guard b[i + 1] == 0x0A else { return .invalid("bare CR at offset \(i)") }
                return .line(Array(b[p..<i]), next: i + 2)
            }
            i += 1
        }
        return .incomplete
    }

    private static func fieldLine(_ l: [UInt8]) -> (String, String)? {
        guard let colon = l.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
        guard l[..<colon].allSatisfy(isTchar) else { return nil }
        let v = l[(colon + 1)...]
        // field-value: VCHAR / obs-text / SP / HTAB only.
        guard v.allSatisfy({ $0 == 0x20 || $0 == 0x09 || ($0 > 0x20 && $0 != 0x7F) }) else { return nil }
        let value = String(decoding: v, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
        return (String(decoding: l[..<colon], as: UTF8.self), value)
    }

    /// Frames the request starting at `start`.
    static func frame(_ b: [UInt8], from start: Int) -> Step {
        guard start < b.count else { return .incomplete }
        var p = start
        guard case .line(let rl, let afterRL) = line(b, p) else {
            if case .invalid(let why) = line(b, p) { return .invalid("request line: \(why)") }
            return .incomplete
        }
        p = afterRL
        let parts = rl.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isTchar), !parts[1].isEmpty,
              parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .invalid("bad request line \(String(decoding: rl.prefix(120), as: UTF8.self).debugDescription)")
        }
        let version = String(decoding: parts[2], as: UTF8.self)
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { return .invalid("bad version \(version.debugDescription)") }
        var headers: [(name: String, value: String)] = []
        while true {
            switch line(b, p) {
            case .incomplete: return .incomplete
            case .invalid(let why): return .invalid("header section: \(why)")
            case .line(let l, let next):
                p = next
                if l.isEmpty { break }
                if l.first == 0x20 || l.first == 0x09 { return .invalid("obs-fold") }
                guard let f = fieldLine(l) else {
                    return .invalid("bad field line \(String(decoding: l.prefix(120), as: UTF8.self).debugDescription)")
                }
                headers.append(f)
                continue
            }
            break
        }
        var req = FramedRequest(method: String(decoding: parts[0], as: UTF8.self),
                                target: String(decoding: parts[1], as: UTF8.self),
                                version: version, headers: headers, framing: "none", body: [], trailers: [])
        let cls = req.values("content-length"), tes = req.values("transfer-encoding")
        if !cls.isEmpty && !tes.isEmpty { return .invalid("both Content-Length and Transfer-Encoding") }
        if cls.count > 1 { return .invalid("\(cls.count) Content-Length fields") }
        if tes.count > 1 { return .invalid("\(tes.count) Transfer-Encoding fields") }
        for h in headers {
            let n = h.name.lowercased()
            if n != "content-length" && n.replacingOccurrences(of: "_", with: "-") == "content-length" {
                return .invalid("framing-like field name \(h.name)")
            }
            if n != "transfer-encoding" && n.replacingOccurrences(of: "_", with: "-") == "transfer-encoding" {
                return .invalid("framing-like field name \(h.name)")
            }
        }
        if let te = tes.first {
            guard te.lowercased() == "chunked" else { return .invalid("Transfer-Encoding \(te.debugDescription)") }
            req.framing = "chunked"
            return chunkedBody(b, from: p, req)
        }
        if let cl = cls.first {
            guard !cl.isEmpty, cl.utf8.count <= 18, cl.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(cl) else {
                return .invalid("Content-Length \(cl.debugDescription)")
            }
            req.framing = "length(\(n))"
            guard b.count - p >= n else { return .incomplete }
            req.body = Array(b[p..<(p + n)])
            return .request(req, end: p + n)
        }
        return .request(req, end: p)
    }

    private static func chunkedBody(_ b: [UInt8], from start: Int, _ reqIn: FramedRequest) -> Step {
        var req = reqIn
        var p = start
        while true {
            guard case .line(let l, let next) = line(b, p) else {
                if case .invalid(let why) = line(b, p) { return .invalid("chunk size line: \(why)") }
                return .incomplete
            }
            p = next
            var i = 0
            while i < l.count && isHex(l[i]) { i += 1 }
            guard i > 0, i <= 16 else { return .invalid("chunk size \(String(decoding: l.prefix(40), as: UTF8.self).debugDescription)") }
            guard validExtensions(Array(l[i...])) else {
                return .invalid("chunk extension \(String(decoding: l.prefix(80), as: UTF8.self).debugDescription)")
            }
            guard let size = UInt64(String(decoding: l[0..<i], as: UTF8.self), radix: 16), size <= UInt64(Int32.max) else {
                return .invalid("chunk size too large")
            }
            if size == 0 { break }
            let n = Int(size)
            guard b.count - p >= n + 2 else { return .incomplete }
            req.body += b[p..<(p + n)]
            guard b[p + n] == 0x0D && b[p + n + 1] == 0x0A else { return .invalid("chunk data not followed by CRLF") }
            p += n + 2
        }
        while true {
            switch line(b, p) {
            case .incomplete: return .incomplete
            case .invalid(let why): return .invalid("trailer section: \(why)")
            case .line(let l, let next):
                p = next
                if l.isEmpty { return .request(req, end: p) }
                if l.first == 0x20 || l.first == 0x09 { return .invalid("obs-fold in trailer") }
                guard let f = fieldLine(l) else { return .invalid("bad trailer line") }
                req.trailers.append(f)
            }
        }
    }

    /// `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`
    static func validExtensions(_ e: [UInt8]) -> Bool {
        var i = 0
        func ws() { while i < e.count && (e[i] == 0x20 || e[i] == 0x09) { i += 1 } }
        func token() -> Bool {
            let s = i
            while i < e.count && isTchar(e[i]) { i += 1 }
            return i > s
        }
        while true {
            ws()
            if i == e.count { return true }
            guard e[i] == UInt8(ascii: ";") else { return false }
            i += 1; ws()
            guard token() else { return false }
            ws()
            if i < e.count && e[i] == UInt8(ascii: "=") {
                i += 1; ws()
                if i < e.count && e[i] == 0x22 {
                    i += 1
                    var closed = false
                    while i < e.count {
                        if e[i] == 0x22 { i += 1; closed = true; break }
                        if e[i] == 0x5C { i += 2; continue }
                        guard e[i] == 0x09 || e[i] == 0x20 || (e[i] > 0x20 && e[i] != 0x7F) else { return false }
                        i += 1
                    }
                    guard closed else { return false }
                } else {
                    guard token() else { return false }
                }
            }
        }
    }

    /// Frames a whole capture: complete requests, bytes consumed, and why it stopped.
    static func frameAll(_ b: [UInt8], from start: Int = 0) -> (requests: [FramedRequest], consumed: Int, error: String?) {
        var out: [FramedRequest] = []
        var p = start
        while p < b.count {
            switch frame(b, from: p) {
            case .request(let r, let end):
                out.append(r)
                p = end
            case .incomplete:
                return (out, p, nil)
            case .invalid(let why):
                return (out, p, why)
            }
        }
        return (out, p, nil)
    }
}

// MARK: - Probes

struct SmugglingProbe {
    /// What must happen.
    struct Expect {
        /// Complete requests the upstream must receive, in order, as "METHOD target".
        var upstream: [String]
        /// Statuses the client must receive, in order (the recorder answers 200).
        var statuses: [Int]
        /// Edge must close the client connection at the end.
        var closes: Bool
        /// The request head may already have reached the upstream before the
        /// body turned out bad: allowed only as an incomplete request on an
        /// upstream connection that Edge then closed.
        var partialUpstream = false
        /// The single Host value every forwarded request must carry; nil = the
        /// request may carry no Host (HTTP/1.0 without Host), but never two.
        var host: String? = "a.example"
        /// Other upstream request lists that are equally correct.
        var acceptAlso: [[String]] = []
    }

    var name: String
    /// Sent in order; `pauseMs` between segments.
    var segments: [[UInt8]]
    var pauseMs: Int = 0
    /// Half-close the client socket after sending.
    var halfClose = false
    var expect: Expect

    var isRefusal: Bool { expect.upstream.isEmpty }
}

private func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Builders for the probe table.
private enum P {
    static let host = "Host: a.example\r\n"
    static let next = "GET /next HTTP/1.1\r\nHost: a.example\r\n\r\n"
    static let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a.example\r\n\r\n"

    static func refused(_ name: String, _ raw: String, _ status: Int = 400) -> SmugglingProbe {
        SmugglingProbe(name: name, segments: [b(raw)], expect: .init(upstream: [], statuses: [status], closes: true))
    }
    static func refused(_ name: String, bytes raw: [UInt8], _ status: Int = 400) -> SmugglingProbe {
        SmugglingProbe(name: name, segments: [raw], expect: .init(upstream: [], statuses: [status], closes: true))
    }
    /// Forwarded as exactly these requests; each answered 200 by the recorder.
    static func forwarded(_ name: String, _ raw: String, _ upstream: [String], closes: Bool = false,
                          host: String? = "a.example") -> SmugglingProbe {
        SmugglingProbe(name: name, segments: [b(raw)],
                       expect: .init(upstream: upstream, statuses: upstream.map { _ in 200 }, closes: closes, host: host))
    }
    /// Forwarded as these requests, then the rest is refused with `status` and the connection closed.
    static func forwardedThenRefused(_ name: String, _ raw: String, _ upstream: [String], _ status: Int = 400) -> SmugglingProbe {
        SmugglingProbe(name: name, segments: [b(raw)],
                       expect: .init(upstream: upstream, statuses: upstream.map { _ in 200 } + [status], closes: true))
    }
    static func post(_ headers: String, _ body: String) -> String {
        "POST /p HTTP/1.1\r\n" + host + headers + "\r\n" + body
    }
    static func chunked(_ body: String) -> String {
        post("Transfer-Encoding: chunked\r\n", body)
    }
}

enum SmugglingProbes {
    // Controls: legit traffic must come through exactly as sent.
    static let controls: [SmugglingProbe] = [
        P.forwarded("control: plain GET", "GET /plain HTTP/1.1\r\n" + P.host + "\r\n", ["GET /plain"]),
        P.forwarded("control: Content-Length body", P.post("Content-Length: 5\r\n", "hello"), ["POST /p"]),
        P.forwarded("control: chunked body", P.chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), ["POST /p"]),
        P.forwarded("control: pipelined pair", "GET /1 HTTP/1.1\r\n" + P.host + "\r\nGET /2 HTTP/1.1\r\n" + P.host + "\r\n",
                    ["GET /1", "GET /2"]),
        P.forwarded("control: pipelined CL body then GET", P.post("Content-Length: 5\r\n", "hello") + P.next,
                    ["POST /p", "GET /next"]),
        P.forwarded("control: pipelined chunked body then GET", P.chunked("5\r\nhello\r\n0\r\n\r\n") + P.next,
                    ["POST /p", "GET /next"]),
        P.forwarded("control: Connection: close stops pipelining",
                    "GET /1 HTTP/1.1\r\n" + P.host + "Connection: close\r\n\r\n" + P.smuggled, ["GET /1"], closes: true),
    ]

    static let clte: [SmugglingProbe] = [
        P.refused("CL.TE: CL 6 + chunked, body 0 CRLF CRLF X",
                  P.post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nX")),
        P.refused("CL.TE: CL covers a smuggled GET",
                  P.post("Content-Length: 47\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" + P.smuggled)),
        P.refused("CL.TE: CL 0 + chunked", P.post("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n")),
        P.refused("CL.TE: lower-case names", P.post("content-length: 3\r\ntransfer-encoding: chunked\r\n", "0\r\n\r\n")),
        P.refused("CL.TE: TE identity + CL", P.post("Content-Length: 5\r\nTransfer-Encoding: identity\r\n", "hello")),
        P.refused("TE.CL: chunk hides a request, CL 4",
                  P.post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                         "5c\r\nGPOST / HTTP/1.1\r\nContent-Type: x\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n")),
        P.refused("TE.CL: CL 0 after chunked", P.post("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", "0\r\n\r\n")),
        P.refused("TE.CL: obfuscated TE + CL", P.post("Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n", "5c\r\n")),
        P.refused("TE.CL: HTTP/1.0", "POST /p HTTP/1.0\r\n" + P.host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"),
    ]

    static let tete: [SmugglingProbe] = {
        var out: [SmugglingProbe] = []
        let body = "5\r\nhello\r\n0\r\n\r\n"
        // Values Edge reads as exactly `chunked` (RFC 9110: case-insensitive, OWS
        // trimmed): forwarded, re-written as "Transfer-Encoding: chunked".
        for v in ["chunked ", "\tchunked", " chunked\t", "Chunked", "CHUNKED", "cHuNkEd"] {
            out.append(P.forwarded("TE.TE: \(v.debugDescription) normalised", P.post("Transfer-Encoding: \(v)\r\n", body), ["POST /p"]))
        }
        let refusals: [(String, Int)] = [
            ("chunked, identity", 400), ("chunked,chunked", 400), ("\"chunked\"", 400), ("chunked,", 400), (",chunked", 400),
            ("chunked;", 400), ("chunked x", 400), ("chunked\u{0B}", 400), ("\u{0B}chunked", 400), ("chunked\u{0}", 400),
            ("identity, chunked", 501), ("gzip, chunked", 501), ("x-chunked", 501), ("xchunked", 501), ("chunkedx", 501),
            ("chunk", 501), ("chunked;q=1", 501), ("identity", 501), ("", 400),
        ]
        for (v, status) in refusals {
            out.append(P.refused("TE.TE: \(v.debugDescription)", P.post("Transfer-Encoding: \(v)\r\n", body), status))
        }
        out += [
            P.refused("TE.TE: two fields chunked + identity",
                      P.post("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", body)),
            P.refused("TE.TE: two fields identity + chunked",
                      P.post("Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n", body), 501),
            P.refused("TE.TE: two fields chunked + chunked",
                      P.post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", body)),
            P.refused("TE.TE: obs-fold value", P.post("Transfer-Encoding:\r\n chunked\r\n", body)),
            P.refused("TE.TE: obs-fold continuation", P.post("Transfer-Encoding: chunked\r\n\tidentity\r\n", body)),
            P.refused("TE.TE: Transfer_Encoding + CL (underscore)",
                      P.post("Transfer_Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n")),
            P.refused("TE.TE: transfer_encoding alone", P.post("transfer_encoding: chunked\r\n", body)),
            P.refused("TE.TE: space before colon", P.post("Transfer-Encoding : chunked\r\n", body)),
            P.refused("TE.TE: tab before colon", P.post("Transfer-Encoding\t: chunked\r\n", body)),
            P.refused("TE.TE: leading space on TE line", P.post(" Transfer-Encoding: chunked\r\n", body)),
            P.refused("TE.TE: CR inside name", P.post("Transfer\r-Encoding: chunked\r\n", body)),
            P.refused(bytesName: "TE.TE: obs-text in value", P.postBytes(b("Transfer-Encoding: chunked") + [0xFF] + b("\r\n"), b(body)), 400),
        ]
        return out
    }()

    static let contentLength: [SmugglingProbe] = {
        var out: [SmugglingProbe] = []
        let tail = "hello" + P.smuggled
        let refusals = ["+5", "-1", "-0", "5 5", "5,5", "5, 5", "5, 6", "5,", ",5", "0x5", "0X5", "5.0", "5e0", "1e1", "",
                        "5;", "five", "\u{0B}5", "5\u{0B}", "99999999999999999999", "18446744073709551621",
                        "9223372036854775808", "00000000000000000000000000000000005x"]
        for v in refusals {
            out.append(P.refused("CL: \(v.debugDescription)", P.post("Content-Length: \(v)\r\n", tail)))
        }
        out += [
            P.refused("CL: repeated field, same value", P.post("Content-Length: 5\r\nContent-Length: 5\r\n", tail)),
            P.refused("CL: repeated field, different values", P.post("Content-Length: 5\r\nContent-Length: 6\r\n", tail)),
            P.refused("CL: repeated field, 0 then 5", P.post("Content-Length: 0\r\nContent-Length: 5\r\n", tail)),
            P.refused("CL: Content_Length (underscore)", P.post("Content_Length: 5\r\n", tail)),
            P.refused("CL: CONTENT_LENGTH with real CL", P.post("Content-Length: 5\r\nCONTENT_LENGTH: 47\r\n", tail)),
            P.refused("CL: space before colon", P.post("Content-Length : 5\r\n", tail)),
            // Valid spellings: forwarded with the same length, the rest is a
            // request Edge parsed itself (the client gets both answers).
            P.forwarded("CL: leading zeros 05", P.post("Content-Length: 05\r\n", "hello" + P.next), ["POST /p", "GET /next"]),
            P.forwarded("CL: OWS around value", P.post("Content-Length: \t5 \r\n", "hello" + P.next), ["POST /p", "GET /next"]),
            P.forwarded("CL: 0 then a request", P.post("Content-Length: 0\r\n", P.next), ["POST /p", "GET /next"]),
            P.forwarded("CL: GET with a body that looks like a request",
                        "GET /p HTTP/1.1\r\n" + P.host + "Content-Length: \(P.smuggled.utf8.count)\r\n\r\n" + P.smuggled, ["GET /p"]),
        ]
        return out
    }()

    static let chunks: [SmugglingProbe] = {
        var out: [SmugglingProbe] = []
        for size in ["fffffffffffffffff1", "ffffffffffffffff", "8000000000000000", "00000000000000000005", "0x10", "0X5",
                     "-1", "+5", " 5", "5 ", "5\t", "g", "5_0", ""] {
            out.append(P.refused("chunk size \(size.debugDescription)", P.chunked(size + "\r\nhello\r\n0\r\n\r\n")))
        }
        out += [
            P.forwarded("chunk ext: ;foo=bar", P.chunked("5;foo=bar\r\nhello\r\n0\r\n\r\n"), ["POST /p"]),
            P.forwarded("chunk ext: quoted with escapes", P.chunked("5;a=\"q\\\"x;y\";b\r\nhello\r\n0;z\r\n\r\n"), ["POST /p"]),
            P.forwarded("chunk ext: 4000 bytes", P.chunked("5;a=" + String(repeating: "x", count: 4000) + "\r\nhello\r\n0\r\n\r\n"),
                        ["POST /p"]),
            P.refused("chunk ext: 5000 bytes", P.chunked("5;a=" + String(repeating: "x", count: 5000) + "\r\nhello\r\n0\r\n\r\n")),
            P.refused("chunk ext: bare LF ends size line", P.chunked("5;a=b\nhello\r\n0\r\n\r\n")),
            P.refused("chunk ext: CRLF inside quoted value", P.chunked("5;a=\"x\r\n0\r\n\r\n\"\r\nhello\r\n0\r\n\r\n")),
            P.refused("chunk ext: no name", P.chunked("5;=x\r\nhello\r\n0\r\n\r\n")),
            P.refused("chunk ext: space before CRLF", P.chunked("5;a=b \r\nhello\r\n0\r\n\r\n")),
            P.refused("chunk: size line bare LF", P.chunked("5\nhello\r\n0\r\n\r\n")),
            P.refused("chunk: data ends with bare LF", P.chunked("5\r\nhello\n0\r\n\r\n")),
            P.refused("chunk: last-chunk bare LF", P.chunked("5\r\nhello\r\n0\n\n")),
            P.refused("chunk: final CRLF is bare LF", P.chunked("5\r\nhello\r\n0\r\n\n")),
            P.refused("chunk: data longer than size", P.chunked("3\r\nhello\r\n0\r\n\r\n")),
            P.refused("chunk: data shorter than size", P.chunked("8\r\nhello\r\n0\r\n\r\n" + P.smuggled)),
            P.refused("chunk: trailer obs-fold", P.chunked("0\r\nX-T: a\r\n b\r\n\r\n")),
            P.refused("chunk: trailer bare LF", P.chunked("0\r\nX-T: a\n\r\n")),
            P.refused("chunk: trailer without colon", P.chunked("0\r\nGET /smuggled HTTP/1.1\r\n\r\n")),
            P.forwarded("chunk: trailer fields pass as trailers", P.chunked("5\r\nhello\r\n0\r\nX-T: v\r\n\r\n"), ["POST /p"]),
            P.forwarded("chunk: Content-Length in trailer, then a request",
                        P.chunked("5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n") + P.next, ["POST /p", "GET /next"]),
            P.forwarded("chunk: uppercase hex and leading zeros", P.chunked("0000A\r\n0123456789\r\n0\r\n\r\n"), ["POST /p"]),
            // Head forwarded first, bad chunk size later: the upstream may hold
            // the head, but never a complete request; Edge closes both sides.
            SmugglingProbe(name: "chunk size overflow after the head went upstream",
                           segments: [b(P.chunked("5\r\nhello\r\n")), b("fffffffffffffffff1\r\nhello\r\n0\r\n\r\n" + P.smuggled)],
                           pauseMs: 300,
                           expect: .init(upstream: [], statuses: [400], closes: true, partialUpstream: true)),
            SmugglingProbe(name: "chunk bare LF after the head went upstream",
                           segments: [b(P.chunked("")), b("5\nhello\r\n0\r\n\r\n" + P.smuggled)],
                           pauseMs: 300,
                           expect: .init(upstream: [], statuses: [400], closes: true, partialUpstream: true)),
        ]
        return out
    }()

    static let lineEndings: [SmugglingProbe] = [
        P.refused("LF: every line", "GET /p HTTP/1.1\nHost: a.example\n\n"),
        P.refused("LF: request line only", "GET /p HTTP/1.1\n" + P.host + "\r\n"),
        P.refused("LF: blank line only", "GET /p HTTP/1.1\r\n" + P.host + "\n"),
        P.refused("LF: inside header section hides CL", "GET /p HTTP/1.1\r\n" + P.host + "X: a\nContent-Length: 5\r\n\r\nhello"),
        P.refused("LF: before the request line", "\nGET /p HTTP/1.1\r\n" + P.host + "\r\n"),
        P.refused("CR: bare CR hides CL", "GET /p HTTP/1.1\r\n" + P.host + "X: a\rContent-Length: 5\r\n\r\nhello"),
        P.refused("CR: CR CR LF", "GET /p HTTP/1.1\r\n" + P.host + "X: a\r\r\n\r\n"),
        P.refused("LF: POST body framing lines", "POST /p HTTP/1.1\nHost: a.example\nContent-Length: 5\n\nhello"),
        P.forwardedThenRefused("LF: second pipelined request LF-only",
                               "GET /1 HTTP/1.1\r\n" + P.host + "\r\nGET /smuggled HTTP/1.1\nHost: a.example\n\n", ["GET /1"]),
        P.forwarded("CRLF: empty lines before a pipelined request are skipped",
                    "GET /1 HTTP/1.1\r\n" + P.host + "\r\n\r\n\r\nGET /2 HTTP/1.1\r\n" + P.host + "\r\n", ["GET /1", "GET /2"]),
    ]

    static let headerNames: [SmugglingProbe] = [
        P.refused("name: Host space colon", "GET /p HTTP/1.1\r\nHost : b.example\r\n\r\n"),
        P.refused("name: Host tab colon", "GET /p HTTP/1.1\r\nHost\t: b.example\r\n\r\n"),
        P.refused("name: Content-Length space colon", P.post("Content-Length : 5\r\n", "hello")),
        P.refused("name: space inside", "GET /p HTTP/1.1\r\n" + P.host + "Content Length: 5\r\n\r\nhello"),
        P.refused("name: NUL", "GET /p HTTP/1.1\r\n" + P.host + "X\u{0}Y: 1\r\n\r\n"),
        P.refused("name: @", "GET /p HTTP/1.1\r\n" + P.host + "X@Y: 1\r\n\r\n"),
        P.refused("name: brackets", "GET /p HTTP/1.1\r\n" + P.host + "X[1]: 1\r\n\r\n"),
        P.refused("name: non-ASCII", "GET /p HTTP/1.1\r\n" + P.host + "X\u{e9}: 1\r\n\r\n"),
        P.refused("name: empty", "GET /p HTTP/1.1\r\n" + P.host + ": 1\r\n\r\n"),
        P.refused("name: no colon", "GET /p HTTP/1.1\r\n" + P.host + "Content-Length 5\r\n\r\nhello"),
        P.refused("name: leading space (obs-fold on first field)", "GET /p HTTP/1.1\r\n Host: a.example\r\n\r\n"),
        P.refused("name: Content_Length", P.post("Content_Length: 5\r\n", "hello")),
        P.refused("value: NUL", "GET /p HTTP/1.1\r\n" + P.host + "X: a\u{0}b\r\n\r\n"),
        P.forwarded("value: tab after colon is OWS", "GET /p HTTP/1.1\r\nHost:\ta.example\r\n\r\n", ["GET /p"]),
        P.forwarded("name: other underscores pass", "GET /p HTTP/1.1\r\n" + P.host + "X_Custom_Header: 1\r\n\r\n", ["GET /p"]),
    ]

    static let hosts: [SmugglingProbe] = [
        // Edge routes by the absolute-form authority and sends origin-form with
        // exactly one Host taken from it (b.example routes to a local 403).
        P.forwarded("absolute-form a.example, Host b.example", "GET http://a.example/abs HTTP/1.1\r\nHost: b.example\r\n\r\n",
                    ["GET /abs"]),
        SmugglingProbe(name: "absolute-form b.example, Host a.example (routed by authority)",
                       segments: [b("GET http://b.example/abs HTTP/1.1\r\nHost: a.example\r\n\r\n")],
                       expect: .init(upstream: [], statuses: [403], closes: false)),
        P.forwarded("absolute-form without path", "GET http://a.example HTTP/1.1\r\nHost: b.example\r\n\r\n", ["GET /"]),
        // Known gap (reported): Edge forwards the empty path as "GET ?q=1"
        // instead of "GET /?q=1". Still exactly one well-framed request.
        SmugglingProbe(name: "absolute-form with query only",
                       segments: [b("GET http://a.example?q=1 HTTP/1.1\r\nHost: b.example\r\n\r\n")],
                       expect: .init(upstream: ["GET /?q=1"], statuses: [200], closes: false, acceptAlso: [["GET ?q=1"]])),
        SmugglingProbe(name: "absolute-form https with port",
                       segments: [b("GET https://a.example:8443/x?y HTTP/1.1\r\nHost: b.example\r\n\r\n")],
                       expect: .init(upstream: ["GET /x?y"], statuses: [200], closes: false, host: "a.example:8443")),
        SmugglingProbe(name: "absolute-form upper-case scheme and host",
                       segments: [b("GET HTTP://A.EXAMPLE/abs HTTP/1.1\r\nHost: b.example\r\n\r\n")],
                       expect: .init(upstream: ["GET /abs"], statuses: [200], closes: false, host: "A.EXAMPLE")),
        P.forwarded("absolute-form HTTP/1.0 without Host", "GET http://a.example/abs HTTP/1.0\r\n\r\n", ["GET /abs"], closes: true),
        P.refused("absolute-form with userinfo", "GET http://u@b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"),
        P.refused("absolute-form unknown scheme", "GET ftp://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"),
        P.refused("absolute-form plus two Host fields",
                  "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"),
        P.refused("two Host fields", "GET /p HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"),
        P.refused("two Host fields, same value", "GET /p HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n"),
        P.refused("Host list", "GET /p HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n"),
        P.refused("Host with userinfo", "GET /p HTTP/1.1\r\nHost: b.example@a.example\r\n\r\n"),
        P.refused("Host with path", "GET /p HTTP/1.1\r\nHost: a.example/x\r\n\r\n"),
        P.refused("Host with space", "GET /p HTTP/1.1\r\nHost: a.example b.example\r\n\r\n"),
        P.refused("HTTP/1.1 without Host", "GET /p HTTP/1.1\r\nX: 1\r\n\r\n"),
        P.refused("Connection: Host (would strip Host)", "GET /p HTTP/1.1\r\n" + P.host + "Connection: Host\r\n\r\n"),
    ]

    static let http10: [SmugglingProbe] = [
        P.refused("HTTP/1.0 + chunked", "POST /p HTTP/1.0\r\n" + P.host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        P.refused("HTTP/1.0 + chunked, keep-alive + smuggled",
                  "POST /p HTTP/1.0\r\n" + P.host + "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + P.smuggled),
        P.refused("HTTP/1.0 + TE identity", "POST /p HTTP/1.0\r\n" + P.host + "Transfer-Encoding: identity\r\n\r\nhello"),
        P.refused("HTTP/1.0 + TE + CL", "POST /p HTTP/1.0\r\n" + P.host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"),
        P.forwarded("HTTP/1.0 CL body, no keep-alive: the rest is never read",
                    "POST /p HTTP/1.0\r\n" + P.host + "Content-Length: 5\r\n\r\nhello" + P.smuggled, ["POST /p"], closes: true),
        P.forwarded("HTTP/1.0 keep-alive pipelined pair",
                    "GET /a HTTP/1.0\r\n" + P.host + "Connection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n" + P.host + "\r\n",
                    ["GET /a", "GET /b"], closes: true),
        P.forwarded("HTTP/1.0 without Host (forwarded without Host)", "GET /p HTTP/1.0\r\n\r\n", ["GET /p"], closes: true, host: nil),
    ]

    static let pipelining: [SmugglingProbe] = [
        // The body is shorter than the bytes sent: Edge frames by CL and reads
        // the rest as the next request itself, so both sides agree.
        P.forwarded("CL shorter than body: rest parses as a request",
                    P.post("Content-Length: 3\r\n", "hello" + P.next), ["POST /p", "loGET /next"]),
        P.forwardedThenRefused("CL shorter than body: rest is garbage", P.post("Content-Length: 3\r\n", "hello\r\nX: y\r\n\r\n"),
                               ["POST /p"]),
        P.forwarded("chunked body then smuggled-looking request",
                    P.chunked("0\r\n\r\n") + P.smuggled, ["POST /p", "GET /smuggled"]),
        P.forwardedThenRefused("chunked body then CL.TE request",
                               P.chunked("0\r\n\r\n") + P.post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nX"),
                               ["POST /p"]),
        P.forwarded("three requests in one packet, bodies both ways",
                    P.post("Content-Length: 5\r\n", "hello") + P.chunked("3\r\nabc\r\n0\r\n\r\n") + P.next,
                    ["POST /p", "POST /p", "GET /next"]),
        // The body never completes: the upstream holds an incomplete request on
        // a connection Edge closes, never a second request.
        SmugglingProbe(name: "CL longer than body, client half-closes",
                       segments: [b(P.post("Content-Length: 100\r\n", "hello"))], halfClose: true,
                       expect: .init(upstream: [], statuses: [], closes: true, partialUpstream: true)),
    ]

    static let upgrade: [SmugglingProbe] = [
        // The recorder never answers 101: Edge must stay in HTTP and parse
        // what follows the upgrade request itself.
        P.forwarded("Upgrade h2c to a non-101 upstream, request follows",
                    "GET /p HTTP/1.1\r\n" + P.host + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
                        + P.smuggled, ["GET /p", "GET /smuggled"]),
        P.forwarded("Upgrade websocket to a non-101 upstream, request follows",
                    "GET /p HTTP/1.1\r\n" + P.host + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                        + P.smuggled, ["GET /p", "GET /smuggled"]),
        SmugglingProbe(name: "Upgrade websocket to a non-101 upstream, frame bytes follow",
                       segments: [b("GET /p HTTP/1.1\r\n" + P.host + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                                    + [0x81, 0x85, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69]],
                       expect: .init(upstream: ["GET /p"], statuses: [200, 400], closes: true)),
        P.forwarded("Upgrade on a POST with a body (upgrade dropped)",
                    P.post("Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n", "hello") + P.smuggled,
                    ["POST /p", "GET /smuggled"]),
        P.forwarded("Upgrade on a chunked POST (upgrade dropped)",
                    P.post("Connection: Upgrade\r\nUpgrade: h2c\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), ["POST /p"]),
        P.forwarded("Upgrade header without Connection: upgrade", "GET /p HTTP/1.1\r\n" + P.host + "Upgrade: websocket\r\n\r\n",
                    ["GET /p"]),
        P.refused("Connection: Content-Length (would unframe the body)",
                  P.post("Connection: Content-Length\r\nContent-Length: \(P.smuggled.utf8.count)\r\n", P.smuggled)),
        P.refused("Connection: keep-alive, content-length",
                  P.post("Connection: keep-alive, content-length\r\nContent-Length: 5\r\n", "hello")),
        P.forwarded("Connection: Transfer-Encoding (re-added by Edge)",
                    P.post("Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"), ["POST /p"]),
        P.refused("Connection with junk", "GET /p HTTP/1.1\r\n" + P.host + "Connection: close x\r\n\r\n"),
        P.forwarded("Proxy-Connection / Keep-Alive are dropped",
                    "GET /p HTTP/1.1\r\n" + P.host + "Proxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n", ["GET /p"]),
    ]

    static let expectTricks: [SmugglingProbe] = [
        P.forwarded("Expect 100-continue, body and a request in the same packet",
                    P.post("Expect: 100-continue\r\nContent-Length: 5\r\n", "hello") + P.next, ["POST /p", "GET /next"]),
        SmugglingProbe(name: "Expect 100-continue, body sent later",
                       segments: [b(P.post("Expect: 100-continue\r\nContent-Length: 5\r\n", "")), b("hello")], pauseMs: 300,
                       expect: .init(upstream: ["POST /p"], statuses: [200], closes: false)),
        P.forwarded("Expect on a bodiless GET, request follows",
                    "GET /p HTTP/1.1\r\n" + P.host + "Expect: 100-continue\r\n\r\n" + P.next, ["GET /p", "GET /next"]),
        P.forwarded("Expect with an unknown expectation", P.post("Expect: 100-continuex\r\nContent-Length: 5\r\n", "hello"),
                    ["POST /p"]),
        P.refused("Expect 100-continue with CL.TE",
                  P.post("Expect: 100-continue\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n")),
        P.refused("Expect 100-continue with repeated CL",
                  P.post("Expect: 100-continue\r\nContent-Length: 5\r\nContent-Length: 5\r\n", "hello")),
    ]

    static let requestLine: [SmugglingProbe] = [
        P.refused("request line: trailing space", "GET /p HTTP/1.1 \r\n" + P.host + "\r\n"),
        P.refused("request line: double space", "GET  /p HTTP/1.1\r\n" + P.host + "\r\n"),
        P.refused("request line: space in target", "GET /p HTTP/1.1 HTTP/1.1\r\n" + P.host + "\r\n"),
        P.refused("request line: tab separator", "GET\t/p HTTP/1.1\r\n" + P.host + "\r\n"),
        P.refused("request line: HTTP/1.10", "GET /p HTTP/1.10\r\n" + P.host + "\r\n"),
        P.refused("request line: HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        P.refused("request line: HTTP/0.9 style", "GET /p\r\n" + P.host + "\r\n"),
    ]

    static var all: [SmugglingProbe] {
        controls + clte + tete + contentLength + chunks + lineEndings + headerNames + hosts + http10 + pipelining
            + upgrade + expectTricks + requestLine
    }
}

private extension P {
    static func postBytes(_ header: [UInt8], _ body: [UInt8]) -> [UInt8] {
        b("POST /p HTTP/1.1\r\n" + host) + header + b("\r\n") + body
    }
    static func refused(bytesName name: String, _ raw: [UInt8], _ status: Int) -> SmugglingProbe {
        refused(name, bytes: raw, status)
    }
}

// MARK: - The world: recorder.py + edge

final class SmugglingWorld {
    let dir: URL
    let recDir: URL
    let listenPort: UInt16
    let adminPort: UInt16
    let recorderPort: UInt16
    private(set) var recorder: ManagedProcess?
    private(set) var edge: ManagedProcess?
    let configPath: String
    /// Per recorded connection file: bytes already framed into complete requests.
    private var cursors: [String: Int] = [:]
    /// Connections that ended with an (allowed) incomplete request.
    private var finished: Set<String> = []
    /// Raw YAML lines (4-space indent) added to listener `web`, e.g. `    http2: { cleartext: true }`.
    var listenerExtra = ""

    static var recorderScript: String {
        Paths.repoRoot.appendingPathComponent("Tests/IntegrationTests/recorder.py").path
    }

    init() throws {
        dir = try Paths.makeTempDir("smuggling")
        recDir = dir.appendingPathComponent("rec")
        listenPort = try Ports.free()
        adminPort = try Ports.free()
        recorderPort = try Ports.free()
        configPath = dir.appendingPathComponent("edge.yaml").path
    }

    var config: String {
        """
        # Generated by SmugglingTests.swift
        runtime:
          workers: 1
          drain_timeout: 1s
          log_format: text
        admin:
          address: "127.0.0.1:\(adminPort)"
        listeners:
          - name: web
            address: "127.0.0.1:\(listenPort)"
            protocol: http
            http:
              max_request_line: 8KiB
              max_header_bytes: 32KiB
              max_headers: 100
              header_timeout: 3s
              idle_timeout: 20s
              body_timeout: 3s
        \(listenerExtra)
            routes:
              - match: { host: "b.example" }
                direct_response:
                  status: 403
                  headers: { content-type: "text/plain" }
                  body: "b.example is answered by edge itself\\n"
              - cluster: rec
                timeout: 3s
        clusters:
          - name: rec
            endpoints: [ "127.0.0.1:\(recorderPort)" ]
            connect_timeout: 1s
            max_idle: 8

        """
    }

    func start() throws {
        let bin = try Paths.edgeBinary()
        let py = try Paths.require("python3")
        recorder = try ManagedProcess(name: "recorder", executable: py,
                                      arguments: ["-u", Self.recorderScript, "--port", String(recorderPort), "--dir", recDir.path],
                                      dir: dir)
        let ready = recDir.appendingPathComponent("ready").path
        let deadline = OS.now() + 10
        while !FileManager.default.fileExists(atPath: ready) {
            if OS.now() > deadline || recorder?.isRunning == false {
                throw HarnessError("recorder.py did not start on port \(recorderPort): \(recorder?.stderrText() ?? "")")
            }
            OS.sleepMs(20)
        }
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        edge = try ManagedProcess(name: "edge", executable: bin, arguments: ["run", "--config", configPath], dir: dir)
        let readyBy = OS.now() + 10
        while true {
            if edge?.isRunning != true {
                throw HarnessError("edge exited before becoming ready:\n\(edge?.stderrText() ?? "")\n--- config ---\n\(config)")
            }
            if let r = try? HTTP.get(port: adminPort, "/health/ready", timeout: 1), r.status == 200 { break }
            if OS.now() > readyBy { throw HarnessError("edge not ready after 10s:\n\(edge?.stderrText() ?? "")") }
            OS.sleepMs(50)
        }
    }

    func stop() {
        edge?.stop()
        recorder?.stop()
    }

    func cleanup() { try? FileManager.default.removeItem(at: dir) }

    func diagnostics() -> String {
        """
        --- config [\(configPath)] ---
        \(config)
        --- edge stderr (last 3000) ---
        \(String((edge?.stderrText() ?? "").suffix(3000)))
        --- recorder stderr (last 2000) ---
        \(String((recorder?.stderrText() ?? "").suffix(2000)))
        --- recorded bytes in \(recDir.path) ---
        """
    }

    private func connectionFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: recDir.path)) ?? []
        return names.filter { $0.hasSuffix(".bin") }.sorted()
    }

    private func bytes(_ name: String) -> [UInt8] {
        Array(FileManager.default.contents(atPath: recDir.appendingPathComponent(name).path) ?? Data())
    }

    private func isClosed(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: recDir.appendingPathComponent(
            String(name.dropLast(4)) + ".closed").path)
    }

    struct UpstreamDelta {
        var requests: [FramedRequest] = []
        var newBytes = 0
        var problems: [String] = []
        var excerpts: [String] = []
    }

    /// Frames everything the recorder received since the previous call.
    /// Incomplete requests are waited for (they may still be in flight), then
    /// accepted only if `partialOK` and the connection was closed.
    func collectUpstream(partialOK: Bool) -> UpstreamDelta {
        let deadline = OS.now() + (partialOK ? 4 : 1.5)
        while true {
            var d = UpstreamDelta()
            var newCursors: [String: Int] = [:]
            var newFinished: [(String, Int)] = []
            var pending: [String] = []
            for f in connectionFiles() {
                let data = bytes(f)
                let start = cursors[f] ?? 0
                if finished.contains(f) {
                    if data.count > start {
                        d.problems.append("\(f): \(data.count - start) more bytes on a connection that already ended badly")
                        newFinished.append((f, data.count))
                    }
                    continue
                }
                guard data.count > start else { continue }
                d.newBytes += data.count - start
                let excerpt = String(decoding: data[start...].prefix(1500), as: UTF8.self)
                d.excerpts.append("\(f) (+\(data.count - start) bytes): \(excerpt.debugDescription)")
                let r = StrictHTTP1.frameAll(data, from: start)
                d.requests += r.requests
                newCursors[f] = r.consumed
                if let err = r.error {
                    d.problems.append("\(f): upstream received bytes a strict HTTP/1.1 parser rejects (\(err)) at offset \(r.consumed)")
                    newFinished.append((f, data.count))  // desynchronised: report once, then only new bytes
                } else if r.consumed < data.count {
                    let rest = String(decoding: data[r.consumed...].prefix(300), as: UTF8.self)
                    if isClosed(f) && partialOK {
                        newFinished.append((f, data.count))
                    } else if isClosed(f) {
                        d.problems.append("\(f): connection closed with an incomplete request left over: \(rest.debugDescription)")
                    } else {
                        pending.append("\(f): \(data.count - r.consumed) leftover bytes could start another request: \(rest.debugDescription)")
                    }
                }
            }
            if pending.isEmpty || OS.now() > deadline {
                d.problems += pending
                for (f, c) in newCursors { cursors[f] = c }
                for (f, end) in newFinished { finished.insert(f); cursors[f] = end }
                return d
            }
            OS.sleepMs(50)
        }
    }
}

// MARK: - Client side

struct ClientOutcome {
    var statuses: [Int] = []
    var recorderTags: [String] = []
    var closed = false
    var raw: [UInt8] = []
    var note = ""
}

/// Splits the bytes Edge sent back into responses (Edge and the recorder always
/// send Content-Length). Returns the responses parsed so far.
func parseClientResponses(_ buf: [UInt8]) -> (statuses: [Int], tags: [String], consumed: Int) {
    var statuses: [Int] = [], tags: [String] = []
    var p = 0
    while true {
        guard p < buf.count else { break }
        var end: Int? = nil
        var i = p
        while i + 3 < buf.count {
            if buf[i] == 13 && buf[i + 1] == 10 && buf[i + 2] == 13 && buf[i + 3] == 10 { end = i; break }
            i += 1
        }
        guard let e = end else { break }
        let head = String(decoding: buf[p..<e], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { break }
        var cl = 0, tag = ""
        for l in lines.dropFirst() {
            guard let c = l.firstIndex(of: ":") else { continue }
            let n = l[..<c].lowercased(), v = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
            if n == "content-length" { cl = Int(v) ?? 0 }
            if n == "x-recorder" { tag = v }
        }
        let bodyEnd = e + 4 + cl
        guard buf.count >= bodyEnd else { break }
        if status >= 200 {
            statuses.append(status)
            if !tag.isEmpty { tags.append(tag) }
        }
        p = bodyEnd
    }
    return (statuses, tags, p)
}

func runClient(_ probe: SmugglingProbe, port: UInt16) throws -> ClientOutcome {
    let c = try RawClient(port: port, timeout: 5)
    defer { c.close() }
    for (k, seg) in probe.segments.enumerated() {
        if k > 0 && probe.pauseMs > 0 { OS.sleepMs(probe.pauseMs) }
        do { try c.send(seg) } catch {
            // Edge may already have answered and closed (e.g. refused the head).
            break
        }
    }
    if probe.halfClose { c.shutdownWrite() }
    var out = ClientOutcome()
    let wanted = probe.expect.statuses.count
    let deadline = OS.now() + 8
    while OS.now() < deadline {
        let parsed = parseClientResponses(c.buffer)
        out.statuses = parsed.statuses
        out.recorderTags = parsed.tags
        let haveAll = parsed.statuses.count >= wanted
        // Enough answers and no close expected: a short quiet window catches extras.
        c.setTimeout(haveAll && !probe.expect.closes ? 0.3 : 4)
        do {
            if try !c.fill() { out.closed = true; break }
        } catch {
            if !haveAll { out.note = "timed out waiting for more responses" }
            break
        }
    }
    let parsed = parseClientResponses(c.buffer)
    out.statuses = parsed.statuses
    out.recorderTags = parsed.tags
    out.raw = c.buffer
    return out
}

// MARK: - Tests

final class SmugglingTests: XCTestCase {
    private var world: SmugglingWorld?

    override func tearDown() {
        if let w = world {
            w.stop()
            if (testRun?.totalFailureCount ?? 0) > 0 {
                print("=== \(name) failed; diagnostics ===\n\(w.diagnostics())")
            } else {
                w.cleanup()
            }
        }
        world = nil
        super.tearDown()
    }

    private func startWorld() throws -> SmugglingWorld {
        let w = try SmugglingWorld()
        world = w
        try w.start()
        return w
    }

    /// Normalisation checks on one forwarded request.
    private func problems(_ r: FramedRequest, _ probe: SmugglingProbe) -> [String] {
        var p: [String] = []
        if r.version != "HTTP/1.1" { p.append("forwarded as \(r.version)") }
        // "?q" only comes from an absolute-form target with an empty path (see the
        // "absolute-form with query only" probe); anything else must be origin-form.
        if !(r.target.hasPrefix("/") || r.target.hasPrefix("?")) { p.append("target not origin-form: \(r.target)") }
        let hosts = r.values("host")
        if hosts.count > 1 { p.append("\(hosts.count) Host fields: \(hosts)") }
        if let want = probe.expect.host, hosts != [want] { p.append("Host \(hosts), want [\(want)]") }
        if let te = r.values("transfer-encoding").first, te != "chunked" { p.append("Transfer-Encoding not normalised: \(te.debugDescription)") }
        if let cl = r.values("content-length").first, !cl.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            p.append("Content-Length not plain digits: \(cl.debugDescription)")
        }
        for v in r.values("connection") {
            let tokens = v.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if tokens.contains("content-length") || tokens.contains("host") || tokens.contains("transfer-encoding") {
                p.append("Connection lists an end-to-end field: \(v)")
            }
        }
        let hasBody = r.framing == "chunked" || (r.framing.hasPrefix("length(") && r.framing != "length(0)")
        if hasBody && !r.values("upgrade").isEmpty { p.append("Upgrade forwarded on a request with a body") }
        return p
    }

    /// Runs probes on one edge + recorder; every probe is checked on both sides.
    private func run(_ probes: [SmugglingProbe], file: StaticString = #filePath, line: UInt = #line) throws {
        let w = try startWorld()
        var summary: [String] = []
        for probe in probes {
            let client: ClientOutcome
            do {
                client = try runClient(probe, port: w.listenPort)
            } catch {
                XCTFail("[\(probe.name)] client error: \(error)", file: file, line: line)
                continue
            }
            OS.sleepMs(probe.isRefusal ? 120 : 60)  // let anything wrongly forwarded arrive
            let up = w.collectUpstream(partialOK: probe.expect.partialUpstream)
            var fails: [String] = up.problems
            let got = up.requests.map(\.line)
            if got != probe.expect.upstream && !probe.expect.acceptAlso.contains(got) {
                fails.append("upstream requests \(got), want \(probe.expect.upstream)")
            }
            if probe.isRefusal && !probe.expect.partialUpstream && up.newBytes > 0 {
                fails.append("refused probe, yet \(up.newBytes) bytes reached the upstream")
            }
            for r in up.requests { fails += problems(r, probe).map { "\(r.line): \($0)" } }
            if client.statuses != probe.expect.statuses {
                fails.append("client statuses \(client.statuses), want \(probe.expect.statuses) \(client.note)")
            }
            if client.recorderTags.count != up.requests.count {
                fails.append("client saw \(client.recorderTags.count) upstream answers for \(up.requests.count) upstream requests (desync)")
            }
            if probe.expect.closes && !client.closed { fails.append("edge did not close the connection") }
            if !probe.expect.closes && client.closed { fails.append("edge closed the connection unexpectedly") }
            if !fails.isEmpty {
                XCTFail("""
                    [\(probe.name)] \(fails.joined(separator: "; "))
                      sent: \(probe.segments.map { String(decoding: $0.prefix(400), as: UTF8.self) }.joined(separator: " | ").debugDescription)
                      client got: \(String(decoding: client.raw.prefix(600), as: UTF8.self).debugDescription)
                      upstream: \(up.excerpts.joined(separator: "\n    "))
                    """, file: file, line: line)
            }
            let outcome = probe.isRefusal
                ? (client.statuses.isEmpty ? "cut without a response" : "refused \(client.statuses.map(String.init).joined(separator: ","))")
                    + (probe.expect.partialUpstream ? " (upstream: incomplete request, connection closed)" : "")
                : "forwarded \(got.count): \(got.joined(separator: " + "))"
                    + (client.statuses.count > got.count ? ", then \(client.statuses.last!)" : "")
            summary.append("  \(probe.name): \(outcome)\(client.closed ? ", closed" : "")")
        }
        print("probes (\(probes.count)):\n" + summary.joined(separator: "\n"))
        // Edge still serves normally afterwards.
        let ok = try HTTP.get(port: w.listenPort, "/after", host: "a.example")
        XCTAssertEqual(ok.status, 200, "edge stopped serving: \(ok.summary)", file: file, line: line)
        XCTAssertNotNil(ok.header("x-recorder"), file: file, line: line)
    }

    // MARK: the test's own instruments

    /// The strict framer must find smuggled requests and refuse ambiguity,
    /// or the upstream checks above would prove nothing.
    func testStrictFramerDetectsSmuggling() {
        func frame(_ s: String) -> (requests: [FramedRequest], consumed: Int, error: String?) {
            StrictHTTP1.frameAll(Array(s.utf8))
        }
        let two = frame("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
        XCTAssertEqual(two.requests.map(\.line), ["POST /p", "GET /smuggled"])
        XCTAssertNil(two.error)
        let ch = frame("POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=\"y\"\r\nhello\r\n0\r\nT: v\r\n\r\n")
        XCTAssertEqual(ch.requests.count, 1)
        XCTAssertEqual(ch.requests.first?.body, Array("hello".utf8))
        XCTAssertEqual(ch.requests.first?.trailers.first?.name, "T")
        let partial = frame("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\nhello")
        XCTAssertEqual(partial.requests.count, 0)
        XCTAssertNil(partial.error)
        XCTAssertEqual(partial.consumed, 0, "an incomplete request is left over, not consumed")
        let ambiguous = [
            "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
            "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\r\nhello\r\n0\r\n\r\n",
            "GET /p HTTP/1.1\nHost: a\n\n",
            "GET /p HTTP/1.1\r\nHost : a\r\n\r\n",
            "GET /p HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n",
            "GET /p HTTP/1.1 \r\nHost: a\r\n\r\n",
        ]
        for s in ambiguous {
            let r = frame(s)
            XCTAssertNotNil(r.error, "framer accepted \(s.debugDescription)")
            XCTAssertEqual(r.requests.count, 0, s.debugDescription)
        }
    }

    /// recorder.py itself: records every byte, answers what it can frame, and
    /// stops answering (but keeps recording) at the first unframeable byte.
    func testRecorderRecordsAndAnswersStrictly() throws {
        let w = try startWorld()
        let c = try RawClient(port: w.recorderPort, timeout: 5)
        let sent = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
            + "POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabcGET /4 HTTP/1.1\r\nHost: a\r\n\r\n"
        try c.send(sent)
        let r1 = try c.readResponse()
        let r2 = try c.readResponse()
        let tag = r1.header("x-recorder") ?? ""
        XCTAssertTrue(tag.hasPrefix("conn=") && tag.hasSuffix(" req=1"), tag)
        let conn = Int(tag.dropFirst(5).split(separator: " ").first ?? "") ?? -1
        XCTAssertEqual(r2.header("x-recorder"), "conn=\(conn) req=2")
        c.setTimeout(0.5)
        XCTAssertThrowsError(try c.readResponse(), "recorder must not answer a request with Content-Length: 3, 3")
        c.close()
        let deadline = OS.now() + 3
        let base = w.recDir.appendingPathComponent(String(format: "conn-%05d", conn))
        while !FileManager.default.fileExists(atPath: base.path + ".closed") && OS.now() < deadline { OS.sleepMs(20) }
        let recorded = FileManager.default.contents(atPath: base.path + ".bin") ?? Data()
        XCTAssertEqual(Array(recorded), Array(sent.utf8), "recorder must keep every byte, in order")
    }

    // MARK: probe categories

    func testPositiveControls() throws { try run(SmugglingProbes.controls) }
    func testCLTEAndTECL() throws { try run(SmugglingProbes.clte) }
    func testObfuscatedTransferEncoding() throws { try run(SmugglingProbes.tete) }
    func testContentLengthVariants() throws { try run(SmugglingProbes.contentLength) }
    func testChunkSizesAndExtensions() throws { try run(SmugglingProbes.chunks) }
    func testLineEndings() throws { try run(SmugglingProbes.lineEndings) }
    func testHeaderNamesAndWhitespace() throws { try run(SmugglingProbes.headerNames) }
    func testAbsoluteFormAndHost() throws { try run(SmugglingProbes.hosts) }
    func testHTTP10() throws { try run(SmugglingProbes.http10) }
    func testPipelinedAfterBody() throws { try run(SmugglingProbes.pipelining) }
    func testUpgradeAndConnectionTricks() throws { try run(SmugglingProbes.upgrade) }
    func testExpectTricks() throws { try run(SmugglingProbes.expectTricks) }
    func testRequestLine() throws { try run(SmugglingProbes.requestLine) }

    /// Every category above has several variants, and the list is what the README documents.
    func testProbeTableShape() {
        let all = SmugglingProbes.all
        XCTAssertGreaterThanOrEqual(all.count, 150)
        XCTAssertEqual(Set(all.map(\.name)).count, all.count, "probe names must be unique")
        for p in all {
            XCTAssertFalse(p.segments.isEmpty, p.name)
            if p.expect.upstream.isEmpty && !p.expect.statuses.isEmpty {
                XCTAssertTrue(p.expect.statuses.allSatisfy { $0 >= 400 } || p.expect.statuses == [403], p.name)
            }
        }
    }
}
