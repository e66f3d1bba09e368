import XCTest
@testable import Edge

/// The JWT parser on fixed inputs (the fuzz target's invariants, plus what it must read).
final class JWTParserTests: XCTestCase {
    private func b64(_ s: String) -> String {
        var t = [UInt8](s.utf8), out = ""
        let a = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        while t.count % 3 != 0 { t.append(0) }
        for i in stride(from: 0, to: t.count, by: 3) {
            let n = Int(t[i]) << 16 | Int(t[i + 1]) << 8 | Int(t[i + 2])
            out += String([a[n >> 18 & 63], a[n >> 12 & 63], a[n >> 6 & 63], a[n & 63]])
        }
        return String(out.prefix((s.utf8.count * 4 + 2) / 3))
    }

    private func read(_ header: String, _ payload: String) -> (Bool, Bool, JWTClaims) {
        let token = Array("\(b64(header)).\(b64(payload)).c2ln".utf8)
        return token.withUnsafeBytes { raw in
            XCTAssertNil(JWTParserCheck.check(raw))
            guard let parts = JWTParts.split(raw) else { return (false, false, JWTClaims()) }
            var h = [UInt8](repeating: 0, count: 512), p = [UInt8](repeating: 0, count: 512)
            var c = JWTClaims()
            let hn = h.withUnsafeMutableBytes { Base64URL.decode(parts.header, into: $0) } ?? 0
            let pn = p.withUnsafeMutableBytes { Base64URL.decode(parts.payload, into: $0) } ?? 0
            let okH = h.withUnsafeBytes { c.readHeader(UnsafeRawBufferPointer(rebasing: $0[0..<hn])) }
            var found: (UnsafeRawBufferPointer?, UnsafeRawBufferPointer?, UnsafeRawBufferPointer?, UnsafeRawBufferPointer?) = (nil, nil, nil, nil)
            let okP = p.withUnsafeBytes { c.readPayload(UnsafeRawBufferPointer(rebasing: $0[0..<pn]), wanted: UnsafeBufferPointer(start: nil, count: 0), found: &found) }
            return (okH, okP, c)
        }
    }

    func testReadsAlgorithmAndTimes() {
        let (h, p, c) = read(#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#, #"{"exp": 1700000000, "nbf":1600000000.5, "iss":"x", "aud":["a","b"], "n":{"d":[1,2]}}"#)
        XCTAssertTrue(h); XCTAssertTrue(p)
        XCTAssertEqual(c.algorithm, .es256)
        XCTAssertEqual(c.exp, 1_700_000_000); XCTAssertEqual(c.nbf, 1_600_000_000)
        XCTAssertEqual(c.kid.count, 2)
    }

    func testRefusesNoneCritDuplicatesAndBadJSON() {
        XCTAssertFalse(read(#"{"alg":"none"}"#, "{}").0, "alg none")
        XCTAssertFalse(read(#"{"alg":"HS256","alg":"RS256"}"#, "{}").0, "duplicate alg")
        XCTAssertFalse(read(#"{"alg":"RS256","crit":["b64"]}"#, "{}").0, "crit")
        XCTAssertFalse(read(#"{"alg":"RS256""#, "{}").0, "truncated")
        XCTAssertFalse(read(#"{"alg":"RS256"}"#, #"{"exp":1,"exp":2}"#).1, "duplicate exp")
        XCTAssertFalse(read(#"{"alg":"RS256"}"#, #"{"exp":1e9}"#).1, "exponent time")
        XCTAssertFalse(read(#"{"alg":"RS256"}"#, String(repeating: "[", count: 40)).1, "not an object")
        let deep = "{\"a\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}"
        XCTAssertFalse(read(#"{"alg":"RS256"}"#, deep).1, "nesting deeper than 16")
    }

    func testSplitNeedsExactlyThreeParts() {
        for t in ["a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "....", ""] {
            Array(t.utf8).withUnsafeBytes { XCTAssertNil(JWTParts.split($0), t); XCTAssertNil(JWTParserCheck.check($0)) }
        }
    }
}

/// The HMAC Authorization header and Date parsers.
final class HMACParserTests: XCTestCase {
    private func parse(_ s: String) -> (String, String)? {
        Array(s.utf8).withUnsafeBytes { raw in
            XCTAssertNil(HMACParserCheck.check(raw))
            return HMACCredentials.parse(raw).map {
                (String(decoding: $0.keyID, as: UTF8.self), String(decoding: $0.signature, as: UTF8.self))
            }
        }
    }

    func testHeaderForms() {
        XCTAssertEqual(parse(#"HMAC key_id="a", signature="c2ln""#)?.0, "a")
        XCTAssertEqual(parse("hmac key_id=a,signature=c2ln,algorithm=hmac-sha256")?.1, "c2ln")
        XCTAssertNil(parse(#"HMAC key_id="a""#), "no signature")
        XCTAssertNil(parse(#"HMAC key_id="a", key_id="b", signature="x""#), "duplicate key_id")
        XCTAssertNil(parse(#"HMAC key_id="a", signature="x", algorithm="hmac-md5""#), "other algorithm")
        XCTAssertNil(parse(#"HMAC key_id="a, signature=x"#), "unterminated quote")
        XCTAssertNil(parse("Basic YTpi"))
    }

    func testIMFDate() {
        func date(_ s: String) -> Int64? { Array(s.utf8).withUnsafeBytes { HMACCredentials.imfDate($0) } }
        XCTAssertEqual(date("Sun, 06 Nov 1994 08:49:37 GMT"), 784_111_777)
        XCTAssertEqual(date("Thu, 01 Jan 1970 00:00:00 GMT"), 0)
        XCTAssertEqual(date("Tue, 29 Feb 2028 12:00:00 GMT"), 1_835_438_400)
        XCTAssertNil(date("Sun, 06 Nov 1994 08:49:37 UTC"))
        XCTAssertNil(date("Sun, 06 Foo 1994 08:49:37 GMT"))
        XCTAssertNil(date("Sunday, 06-Nov-94 08:49:37 GMT"))
    }
}
