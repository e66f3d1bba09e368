import XCTest
@testable import Protocols

final class HeadWriterTests: XCTestCase {
    func write(capacity: Int, _ body: (inout HeadWriter) -> Void) -> (String, Bool, Int) {
        let real = max(capacity, 0)
        var storage = [UInt8](repeating: 0xEE, count: real + 8)
        return storage.withUnsafeMutableBytes { raw in
            var w = HeadWriter(raw.baseAddress!, capacity: capacity)
            body(&w)
            let out = String(decoding: raw[0..<w.count], as: UTF8.self)
            // Nothing written past capacity.
            for k in real..<(real + 8) { XCTAssertEqual(raw[k], 0xEE) }
            return (out, w.overflowed, w.count)
        }
    }

    func testHead() {
        let src = bytes("xxHost: a.com\r\n")
        let (s, over, _) = write(capacity: 256) { w in
            w.appendStatusLine(404)
            w.append("content-length: ")
            w.appendDecimal(0)
            w.append("\r\n")
            src.withUnsafeBytes { b in
                w.append(b, range: ByteRange(offset: 2, length: 4))
                w.appendByte(0x3A)
                w.append(UnsafeRawBufferPointer(rebasing: b[7...]))
            }
            w.appendDecimal(18_446_744_073_709_551_615)
            w.appendByte(0x20)
            w.appendHex(0x1e, minDigits: 1)
            w.appendByte(0x20)
            w.appendHex(0, minDigits: 0)
            w.appendByte(0x20)
            w.appendHex(0xabc, minDigits: 6)
            w.appendByte(0x20)
            w.appendHex(.max, minDigits: 40)
        }
        XCTAssertFalse(over)
        XCTAssertEqual(s, "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nHost: a.com\r\n18446744073709551615 1e 0 000abc ffffffffffffffff")
    }

    func testStatusLines() {
        XCTAssertEqual(write(capacity: 64) { $0.appendStatusLine(200) }.0, "HTTP/1.1 200 OK\r\n")
        XCTAssertEqual(write(capacity: 64) { $0.appendStatusLine(502) }.0, "HTTP/1.1 502 Bad Gateway\r\n")
        XCTAssertEqual(write(capacity: 64) { $0.appendStatusLine(299) }.0, "HTTP/1.1 299 Unknown\r\n")
        XCTAssertEqual(reasonPhrase(431).description, "Request Header Fields Too Large")
        XCTAssertEqual(reasonPhrase(1).description, "Unknown")
    }

    func testOverflow() {
        let (s, over, n) = write(capacity: 10) { w in
            w.append("HTTP/1.1 ")   // 9 bytes fit
            w.append("200")         // does not fit → overflow, ignored
            w.appendByte(0x41)      // ignored even though it would fit
        }
        XCTAssertTrue(over)
        XCTAssertEqual(n, 9)
        XCTAssertEqual(s, "HTTP/1.1 ")
        XCTAssertTrue(write(capacity: 3) { $0.appendDecimal(1234) }.1)
        XCTAssertTrue(write(capacity: 3) { $0.appendHex(0x1234, minDigits: 1) }.1)
        XCTAssertTrue(write(capacity: 0) { $0.appendByte(1) }.1)
        XCTAssertFalse(write(capacity: 4) { $0.appendDecimal(1234) }.1)
        // A source range outside the source buffer is refused, not trapped on.
        let src = bytes("abc")
        XCTAssertTrue(write(capacity: 64) { w in src.withUnsafeBytes { w.append($0, range: ByteRange(offset: 2, length: 5)) } }.1)
        XCTAssertTrue(write(capacity: 64) { w in src.withUnsafeBytes { w.append($0, range: ByteRange(offset: -1, length: 1)) } }.1)
        XCTAssertTrue(write(capacity: -5) { $0.append("x") }.1)
    }
}
