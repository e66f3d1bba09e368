import XCTest
@testable import Protocols

final class ChunkedDecoderTests: XCTestCase {
    static let payloadA = "hello"
    static let payloadB = String(repeating: "0123456789", count: 3)  // 30 bytes = 0x1e
    /// A valid body with extensions and trailers, followed by a pipelined request.
    static let body = "5;ext=1;q=\"a \\\"b\\\" c\"\r\nhello\r\n1E ; name\t;x = y\r\n\(payloadB)\r\n000\r\nX-Trailer: t v\r\nEmpty:\r\n\r\n"
    static let next = "GET /next HTTP/1.1\r\n"

    func testWholeBuffer() {
        let raw = bytes(Self.body + Self.next)
        let run = runChunked([raw])
        XCTAssertNil(run.error)
        XCTAssertEqual(String(decoding: run.payload, as: UTF8.self), Self.payloadA + Self.payloadB)
        XCTAssertEqual(run.doneAt, Self.body.utf8.count)
    }

    func testEverySplitPoint() {
        let raw = bytes(Self.body + Self.next)
        let expected = Array((Self.payloadA + Self.payloadB).utf8)
        for cut in 0...raw.count {
            let run = runChunked([Array(raw[0..<cut]), Array(raw[cut...])])
            XCTAssertNil(run.error, "cut \(cut)")
            XCTAssertEqual(run.payload, expected, "cut \(cut)")
            XCTAssertEqual(run.doneAt, Self.body.utf8.count, "cut \(cut)")
        }
    }

    func testEveryPairOfSplitPoints() {
        let raw = bytes(Self.body)
        let expected = Array((Self.payloadA + Self.payloadB).utf8)
        for a in 0...raw.count {
            for b in a...raw.count {
                let run = runChunked([Array(raw[0..<a]), Array(raw[a..<b]), Array(raw[b...])])
                XCTAssertEqual(run.payload, expected, "cuts \(a) \(b)")
                XCTAssertEqual(run.doneAt, raw.count, "cuts \(a) \(b)")
            }
        }
    }

    func testByteByByte() {
        let raw = bytes(Self.body + Self.next)
        let run = runChunked(raw.map { [$0] })
        XCTAssertNil(run.error)
        XCTAssertEqual(String(decoding: run.payload, as: UTF8.self), Self.payloadA + Self.payloadB)
        XCTAssertEqual(run.doneAt, Self.body.utf8.count)
    }

    func testMinimalBodies() {
        XCTAssertEqual(runChunked([bytes("0\r\n\r\n")]).doneAt, 5)
        let big = runChunked([bytes("7fffffffffffffff\r\nabc")])
        XCTAssertNil(big.error)
        XCTAssertEqual(big.payload, bytes("abc"))
        XCTAssertEqual(runChunked([bytes("A\r\n0123456789\r\n0\r\n\r\n")]).payload, bytes("0123456789"))
        XCTAssertEqual(runChunked([bytes("0000000000000001\r\nx\r\n0\r\n\r\n")]).payload, bytes("x"))
    }

    func testAfterDoneAndAfterError() {
        var dec = ChunkedDecoder()
        bytes("0\r\n\r\nXYZ").withUnsafeBytes { buf in
            XCTAssertEqual(dec.step(buf, at: 0), .done(end: 5))
            XCTAssertTrue(dec.isDone)
            XCTAssertEqual(dec.step(buf, at: 5), .done(end: 5))
        }
        var bad = ChunkedDecoder()
        bytes("zz").withUnsafeBytes { buf in
            guard case .error = bad.step(buf, at: 0) else { return XCTFail("expected error") }
            guard case .error = bad.step(buf, at: 1) else { return XCTFail("decoder must stay failed") }
            XCTAssertFalse(bad.isDone)
        }
        var idx = ChunkedDecoder()
        bytes("5\r\n").withUnsafeBytes { buf in
            XCTAssertEqual(idx.step(buf, at: 3), .needMore)
            guard case .error = idx.step(buf, at: 7) else { return XCTFail("out-of-range index must be an error") }
        }
    }

    static let invalid: [(String, String)] = [
        ("empty size line", "\r\n"),
        ("bare LF after size", "5\nhello\r\n0\r\n\r\n"),
        ("bare CR after size", "5\rhello\r\n0\r\n\r\n"),
        ("bad hex", "g\r\n"),
        ("hex then junk", "5x\r\n"),
        ("sign", "+5\r\n"),
        ("leading space", " 5\r\n"),
        ("17 digits", "00000000000000001\r\n"),
        ("overflow 2^63", "8000000000000000\r\n"),
        ("overflow 2^64-1", "ffffffffffffffff\r\n"),
        ("missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n"),
        ("bare LF after data", "5\r\nhello\n0\r\n\r\n"),
        ("CR junk after data", "5\r\nhello\rX"),
        ("data longer than size", "3\r\nhello\r\n0\r\n\r\n"),
        ("trailing space before CRLF", "5 \r\nhello\r\n0\r\n\r\n"),
        ("ext with space in name", "5;a b\r\n"),
        ("ext empty name", "5;\r\n"),
        ("ext empty name then =", "5;=x\r\n"),
        ("ext missing value", "5;a=\r\n"),
        ("ext bad value char", "5;a=b@c\r\n"),
        ("ext unterminated quote", "5;a=\"x\r\n"),
        ("ext junk after quote", "5;a=\"x\"y\r\n"),
        ("ext CTL in quote", "5;a=\"x\u{1}\"\r\n"),
        ("ext bare LF", "5;a=b\n"),
        ("ext trailing space", "5;a=b \r\n"),
        ("ext too long", "5;a=" + String(repeating: "b", count: 5000) + "\r\n"),
        ("last-chunk bare LF", "0\n\r\n"),
        ("final bare LF", "0\r\n\n"),
        ("final bare CR", "0\r\n\rX"),
        ("trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n"),
        ("trailer no colon", "0\r\nAb\r\n\r\n"),
        ("trailer space before colon", "0\r\nA : b\r\n\r\n"),
        ("trailer bad name", "0\r\n(A): b\r\n\r\n"),
        ("trailer NUL", "0\r\nA: \u{0}\r\n\r\n"),
        ("trailer bare LF", "0\r\nA: b\n\r\n"),
        ("trailer bare CR", "0\r\nA: b\rc\r\n\r\n"),
        ("huge trailers", "0\r\n" + String(repeating: "X-T: " + String(repeating: "v", count: 100) + "\r\n", count: 200) + "\r\n"),
    ]

    func testInvalid() {
        for (name, raw) in Self.invalid {
            let whole = runChunked([bytes(raw)])
            XCTAssertNotNil(whole.error, name)
            XCTAssertNil(whole.doneAt, name)
            let split = runChunked(bytes(raw).map { [$0] })
            XCTAssertNotNil(split.error, "\(name) byte-by-byte")
        }
        XCTAssertEqual(runChunked([bytes("8000000000000000\r\n")]).error?.reasonText, "chunk size too large")
        XCTAssertEqual(runChunked([bytes("00000000000000001\r\n")]).error?.reasonText, "chunk size too large")
    }

    func testTrailerLimit() {
        let trailer = "0\r\nA: " + String(repeating: "v", count: 50) + "\r\n\r\n"
        XCTAssertNotNil(runChunked([bytes(trailer)], maxTrailerBytes: 20).error)
        XCTAssertEqual(runChunked([bytes(trailer)], maxTrailerBytes: 100).doneAt, trailer.utf8.count)
    }
}
