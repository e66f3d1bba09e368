import XCTest
@testable import Edge

/// The allocation-free line formatting the access log uses.
final class AccessLogFormatTests: XCTestCase {
    func render(_ body: (inout LineWriter) -> Void) -> String {
        let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        defer { buf.deallocate() }
        var w = LineWriter(buf, capacity: 256)
        body(&w)
        return String(decoding: UnsafeBufferPointer(start: buf, count: w.count), as: UTF8.self)
    }

    func testTimesAndNumbers() {
        XCTAssertEqual(render { $0.rfc3339(seconds: 0, millis: 7) }, "1970-01-01T00:00:00.007Z")
        XCTAssertEqual(render { $0.rfc3339(seconds: 1_796_646_919, millis: 123) }, "2026-12-07T12:35:19.123Z")
        XCTAssertEqual(render { $0.rfc3339(seconds: 951_782_400, millis: 999) }, "2000-02-29T00:00:00.999Z")
        XCTAssertEqual(render { $0.decimal(0) }, "0")
        XCTAssertEqual(render { $0.decimal(UInt64.max) }, "18446744073709551615")
        XCTAssertEqual(render { $0.decimal(42, minDigits: 4) }, "0042")
        XCTAssertEqual(render { $0.millis(us: 12_345) }, "12.345")
        XCTAssertEqual(render { $0.millis(us: 7) }, "0.007")
        XCTAssertEqual(render { $0.millis(us: -5) }, "0.000")
    }

    func testEscaping() {
        let raw: [UInt8] = Array("a\"b\\c".utf8) + [0x0A, 0xFF, 0x41]
        XCTAssertEqual(render { w in raw.withUnsafeBytes { w.jsonEscaped($0.baseAddress, $0.count) } }, "a\\\"b\\\\c\\u000a\\u00ffA")
        XCTAssertEqual(render { w in raw.withUnsafeBytes { w.plain($0.baseAddress, $0.count) } }, "a\"b\\c__A")
        XCTAssertEqual(render { $0.plain(nil, 0) }, "-")
    }

    func testOverflowIsReportedNotTrapped() {
        let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: 4)
        defer { buf.deallocate() }
        var w = LineWriter(buf, capacity: 4)
        w.text("12345678")
        XCTAssertTrue(w.overflowed)
        w.decimal(123456)
        XCTAssertLessThanOrEqual(w.count, 4)
    }

    func testByteRingDropsWhatDoesNotFit() {
        let ring = ByteRing(bytes: 4096)
        let line = [UInt8](repeating: 65, count: 3000)
        line.withUnsafeBufferPointer { ring.push($0.baseAddress!, $0.count) }
        line.withUnsafeBufferPointer { ring.push($0.baseAddress!, $0.count) }
        XCTAssertEqual(ring.written.load(ordering: .relaxed), 1)
        XCTAssertEqual(ring.dropped.load(ordering: .relaxed), 1)
        var got = 0
        ring.drain { _, n in got += n }
        XCTAssertEqual(got, 3000)
        line.withUnsafeBufferPointer { ring.push($0.baseAddress!, $0.count) }  // wraps around the end
        var pieces: [Int] = []
        ring.drain { _, n in pieces.append(n) }
        XCTAssertEqual(pieces.reduce(0, +), 3000)
        XCTAssertEqual(pieces.count, 2)
    }
}
