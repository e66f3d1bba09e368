import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import Protocols

// MARK: helpers

private func ppParse(_ b: [UInt8]) -> ProxyHeaderResult { b.withUnsafeBytes { ProxyProtocolParser.parse($0) } }
private func ppParse(_ b: ArraySlice<UInt8>) -> ProxyHeaderResult { b.withUnsafeBytes { ProxyProtocolParser.parse($0) } }
private func ppBytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func ppIsInvalid(_ r: ProxyHeaderResult) -> Bool { if case .invalid = r { return true } else { return false } }

private func ppReason(_ r: ProxyHeaderResult) -> String? {
    if case .invalid(let s) = r { return s.description } else { return nil }
}

private func ppText(_ a: ProxyAddress, source: Bool = true) -> String {
    var out = [UInt8](repeating: 0, count: 64)
    let n = out.withUnsafeMutableBytes {
        source ? ProxyProtocolWriter.sourceText(a, into: $0) : ProxyProtocolWriter.destinationText(a, into: $0)
    }
    return String(decoding: out[0..<n], as: UTF8.self)
}

private func ppWrite(_ v: ProxyProtocolVersion, _ a: ProxyAddress, capacity: Int = 128) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: capacity)
    let n = out.withUnsafeMutableBytes { ProxyProtocolWriter.write(v, a, into: $0) }
    return Array(out[0..<n])
}

private let ppSig: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

/// A v2 header: signature, version/command byte, family byte, `len` (defaults to block.count), block.
private func ppV2(_ verCmd: UInt8, _ fam: UInt8, _ block: [UInt8], len: Int? = nil) -> [UInt8] {
    let l = len ?? block.count
    return ppSig + [verCmd, fam, UInt8(truncatingIfNeeded: l >> 8), UInt8(truncatingIfNeeded: l)] + block
}

private func ppBE16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
private func ppTLV(_ type: UInt8, _ value: [UInt8]) -> [UInt8] { [type] + ppBE16(UInt16(value.count)) + value }

private func ppV4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> (UInt64, UInt64) {
    (0, UInt64(a) << 24 | UInt64(b) << 16 | UInt64(c) << 8 | UInt64(d))
}

private struct PPRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33 ^ state << 31
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
}

final class ProxyProtocolTests: XCTestCase {

    // MARK: valid headers

    struct Valid {
        var name: String
        var header: [UInt8]
        var version: ProxyProtocolVersion
        var family: UInt8
        var src: String = ""
        var sport: UInt16 = 0
        var dst: String = ""
        var dport: UInt16 = 0
    }

    static let maxUnknown = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"

    static let valid: [Valid] = {
        var t: [Valid] = []
        func v1(_ s: String, _ fam: UInt8, _ src: String = "", _ sp: UInt16 = 0, _ dst: String = "", _ dp: UInt16 = 0) {
            t.append(Valid(name: s, header: ppBytes(s), version: .v1, family: fam, src: src, sport: sp, dst: dst, dport: dp))
        }
        v1("PROXY TCP4 192.0.2.1 198.51.100.22 51234 443\r\n", 4, "192.0.2.1", 51234, "198.51.100.22", 443)
        v1("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", 4, "0.0.0.0", 0, "255.255.255.255", 65535)
        v1("PROXY TCP4 10.0.100.9 1.20.3.40 1 10\r\n", 4, "10.0.100.9", 1, "1.20.3.40", 10)
        v1("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n", 6, "2001:db8::1", 1, "2001:db8::2", 2)
        v1("PROXY TCP6 ::1 :: 65535 80\r\n", 6, "::1", 65535, "::", 80)
        v1("PROXY TCP6 ::FFFF:192.0.2.1 1:2:3:4:5:6:7:8 10 20\r\n", 6, "::ffff:192.0.2.1", 10, "1:2:3:4:5:6:7:8", 20)
        v1("PROXY TCP6 2001:0DB8:0000:0000:0000:0000:0000:0001 fe80:: 1 2\r\n", 6, "2001:db8::1", 1, "fe80::", 2)
        v1("PROXY TCP6 1:2:3:4:5:6:7:: ::2:3:4:5:6:7:8 1 2\r\n", 6, "1:2:3:4:5:6:7:0", 1, "0:2:3:4:5:6:7:8", 2)
        v1("PROXY TCP6 1::1.2.3.4 64:ff9b::192.0.2.33 1 2\r\n", 6, "1::102:304", 1, "64:ff9b::c000:221", 2)
        v1("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 1:0:0:1:0:0:0:1 65535 65535\r\n", 6,
           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, "1:0:0:1::1", 65535)
        v1("PROXY UNKNOWN\r\n", 0)
        v1("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", 0)
        v1(maxUnknown, 0)

        func v2(_ name: String, _ h: [UInt8], _ fam: UInt8, _ src: String = "", _ sp: UInt16 = 0, _ dst: String = "", _ dp: UInt16 = 0) {
            t.append(Valid(name: name, header: h, version: .v2, family: fam, src: src, sport: sp, dst: dst, dport: dp))
        }
        let a4: [UInt8] = [192, 0, 2, 1, 198, 51, 100, 22] + ppBE16(51234) + ppBE16(443)
        let a6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
            + [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2] + ppBE16(8080) + ppBE16(80)
        v2("v2 PROXY TCP4", ppV2(0x21, 0x11, a4), 4, "192.0.2.1", 51234, "198.51.100.22", 443)
        v2("v2 PROXY UDP4", ppV2(0x21, 0x12, a4), 4, "192.0.2.1", 51234, "198.51.100.22", 443)
        v2("v2 PROXY TCP6", ppV2(0x21, 0x21, a6), 6, "2001:db8::1", 8080, "2001:db8::2", 80)
        v2("v2 PROXY UDP6", ppV2(0x21, 0x22, a6), 6, "2001:db8::1", 8080, "2001:db8::2", 80)
        v2("v2 LOCAL", ppV2(0x20, 0x00, []), 0)
        v2("v2 LOCAL with an INET block", ppV2(0x20, 0x11, a4), 0)
        v2("v2 LOCAL UNIX", ppV2(0x20, 0x31, [UInt8](repeating: 0x41, count: 216)), 0)
        v2("v2 LOCAL short block for its family", ppV2(0x20, 0x21, [1, 2, 3]), 0)
        v2("v2 PROXY UNSPEC", ppV2(0x21, 0x00, []), 0)
        v2("v2 PROXY UNSPEC opaque block", ppV2(0x21, 0x00, [9, 9, 9, 9, 9]), 0)
        let tlvs = ppTLV(0x01, Array("h2".utf8)) + ppTLV(0x02, Array("example.com".utf8)) + ppTLV(0x04, [])
            + ppTLV(0x03, [1, 2, 3, 4]) + ppTLV(0x20, [0x01, 0, 0, 0, 0] + ppTLV(0x21, Array("TLSv1.3".utf8)))
        v2("v2 TCP4 with TLVs", ppV2(0x21, 0x11, a4 + tlvs), 4, "192.0.2.1", 51234, "198.51.100.22", 443)
        v2("v2 TCP6 with a 1000-byte TLV", ppV2(0x21, 0x21, a6 + ppTLV(0xE0, [UInt8](repeating: 7, count: 1000))),
           6, "2001:db8::1", 8080, "2001:db8::2", 80)
        v2("v2 LOCAL at the 16 KiB cap", ppV2(0x20, 0x00, [UInt8](repeating: 0, count: 16384 - 16)), 0)
        v2("v2 TCP4 TLVs up to the 16 KiB cap",
           ppV2(0x21, 0x11, a4 + ppTLV(0x04, [UInt8](repeating: 0, count: 16384 - 16 - 12 - 3))), 4,
           "192.0.2.1", 51234, "198.51.100.22", 443)
        return t
    }()

    func testValidHeaders() {
        let payload = ppBytes("GET / HTTP/1.1\r\n\r\n")
        for c in Self.valid {
            for tail in [[], payload] {
                let r = ppParse(c.header + tail)
                guard case .complete(let len, let ver, let a) = r else {
                    XCTFail("\(c.name): \(r)"); continue
                }
                XCTAssertEqual(len, c.header.count, c.name)
                XCTAssertEqual(ver, c.version, c.name)
                XCTAssertEqual(a.family, c.family, c.name)
                if c.family == 0 {
                    XCTAssertEqual(a, .unspecified, c.name)
                } else {
                    XCTAssertEqual(ppText(a), c.src, c.name)
                    XCTAssertEqual(ppText(a, source: false), c.dst, c.name)
                    XCTAssertEqual(a.sourcePort, c.sport, c.name)
                    XCTAssertEqual(a.destinationPort, c.dport, c.name)
                }
            }
        }
        XCTAssertEqual(Self.maxUnknown.utf8.count, 107)
    }

    func testAddressLayout() {
        let h4 = ppBytes("PROXY TCP4 192.0.2.1 10.0.0.255 1 2\r\n")
        XCTAssertEqual(ppParse(h4), .complete(length: h4.count, version: .v1, address: ProxyAddress(
            family: 4, source: (0, 0xC000_0201), destination: (0, 0x0A00_00FF), sourcePort: 1, destinationPort: 2)))
        let h6 = ppBytes("PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 1 2\r\n")
        XCTAssertEqual(ppParse(h6), .complete(length: h6.count, version: .v1, address: ProxyAddress(
            family: 6, source: (0x2001_0db8_0000_0000, 1), destination: (0, 0xFFFF_0102_0304),
            sourcePort: 1, destinationPort: 2)))
    }

    /// Every strict prefix of a valid header (including the empty buffer) is .incomplete.
    func testEveryPrefixIsIncomplete() {
        for c in Self.valid {
            var firstBad: Int? = nil
            c.header.withUnsafeBytes { all in
                for k in 0..<all.count {
                    let r = ProxyProtocolParser.parse(UnsafeRawBufferPointer(rebasing: all[0..<k]))
                    if r != .incomplete { firstBad = k; break }
                }
            }
            XCTAssertNil(firstBad, "\(c.name): prefix \(firstBad ?? -1) is not incomplete")
        }
    }

    // MARK: invalid headers

    /// Marker "^" stands before the byte that makes the header invalid: the prefix
    /// without that byte must be .incomplete, the prefix with it (and every longer
    /// one) .invalid.
    static let invalidV1: [String] = [
        // bad IPv4
        "PROXY TCP4 25^6.1.1.1 1.2.3.4 1 2\r\n",
        "PROXY TCP4 0^1.2.3.4 1.2.3.4 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.06^.7.8 1 2\r\n".replacingOccurrences(of: "06^", with: "0^6"),
        "PROXY TCP4 1.2.3^ 1.2.3.4 1 2\r\n",
        "PROXY TCP4 1.2.3.4^.5 1.2.3.4 1 2\r\n",
        "PROXY TCP4 1..^2.3.4 1.2.3.4 1 2\r\n".replacingOccurrences(of: "..^", with: ".^."),
        "PROXY TCP4 ^::1 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3.4^x 5.6.7.8 1 2\r\n",
        // bad ports
        "PROXY TCP4 1.2.3.4 5.6.7.8 6553^6 80\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 0^80 80\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 80 0^80\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 80 9999^9\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 ^-1 80\r\n",
        // spacing and line ends
        "PROXY ^ TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ^ 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 ^ 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 ^ 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2^ \r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2^\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r^X",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r^\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2^ 3\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1^\r\n",
        "PROXY TCP4 1.2.3.4^\r\n",
        "PROXY TCP4^\r\n",
        "PROXY TCP4^\t1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UNKNOWN^\n",
        "PROXY UNKNOWN^X\r\n",
        "PROXY UNKNOWN ^\u{01}\r\n",
        "PROXY UNKNOWN \r^X",
        "PROXY UNKNOWN " + String(repeating: "a", count: 91) + "^a\r\n",
        // signature and protocol
        "^proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROX^Z TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY^\r\n",
        "PROXY ^tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP^5 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY U^DP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UNKNOW^X\r\n",
        // bad IPv6
        "PROXY TCP6 1^.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1::^:2 ::1 1 2\r\n",
        "PROXY TCP6 1::2:^:3 ::1 1 2\r\n",
        "PROXY TCP6 1234^5:: ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7:8^:9 ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7:8^:: ::1 1 2\r\n",
        "PROXY TCP6 1::2:3:4:5:6:7^:8 ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7^ ::1 1 2\r\n",
        "PROXY TCP6 :^1:: ::1 1 2\r\n",
        "PROXY TCP6 1:^ ::1 1 2\r\n",
        "PROXY TCP6 ::ffff:1.2.3^ ::1 1 2\r\n",
        "PROXY TCP6 ::1.2.3.0^4 ::1 1 2\r\n",
        "PROXY TCP6 ::1.2.3.25^6 ::1 1 2\r\n",
        "PROXY TCP6 ::1.2.3.4^.5 ::1 1 2\r\n",
        "PROXY TCP6 ::1.2.3.4^:5 ::1 1 2\r\n",
        "PROXY TCP6 ::a^.2.3.4 ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7:1^.2.3.4 ::1 1 2\r\n",
        "PROXY TCP6 ::^g ::1 1 2\r\n",
        "PROXY TCP6 fe80::1^%eth0 ::1 1 2\r\n",
        "PROXY TCP6 [^::1] ::1 1 2\r\n".replacingOccurrences(of: "[^", with: "^["),
        "PROXY TCP6 ::1 ::1^ 1\r\n".replacingOccurrences(of: "^ 1\r\n", with: " 1^\r\n"),
    ]

    /// Asserts: prefix `at` is .incomplete, prefixes `at+1`... (up to the full input) are .invalid.
    private func checkDecisive(_ input: [UInt8], at: Int, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ppParse(input[0..<at]), .incomplete, "\(name): prefix \(at)", file: file, line: line)
        for k in (at + 1)...input.count {
            let r = ppParse(input[0..<k])
            XCTAssert(ppIsInvalid(r), "\(name): prefix \(k) gave \(r)", file: file, line: line)
        }
    }

    func testInvalidV1() {
        for s in Self.invalidV1 {
            let marked = ppBytes(s)
            guard let at = marked.firstIndex(of: UInt8(ascii: "^")) else { XCTFail("no marker: \(s)"); continue }
            var input = marked
            input.remove(at: at)
            checkDecisive(input, at: at, s.debugDescription)
        }
    }

    func testOversizedV1() {
        // No CRLF within 107 bytes: invalid as soon as the CR can no longer fit.
        let long = ppBytes("PROXY UNKNOWN " + String(repeating: "x", count: 200))
        XCTAssertEqual(ppParse(long[0..<105]), .incomplete)
        XCTAssert(ppIsInvalid(ppParse(long[0..<106])))
        XCTAssert(ppIsInvalid(ppParse(long)))
        // 108-byte UNKNOWN line.
        let over = ppBytes("PROXY UNKNOWN " + String(repeating: "x", count: 92) + "\r\n")
        XCTAssertEqual(over.count, 108)
        XCTAssert(ppIsInvalid(ppParse(over)))
        // Over-long digit runs in TCP4 are refused long before 107 bytes.
        let digits = ppBytes("PROXY TCP4 " + String(repeating: "1", count: 200))
        XCTAssert(ppIsInvalid(ppParse(digits[0..<15])))
    }

    func testInvalidV2() {
        let a4: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]
        // (name, bytes, decisive prefix length)
        var cases: [(String, [UInt8], Int)] = [
            ("version 1", ppV2(0x11, 0x11, a4), 12),
            ("version 3", ppV2(0x31, 0x11, a4), 12),
            ("command 2", ppV2(0x22, 0x11, a4), 12),
            ("command 15", ppV2(0x2F, 0x00, []), 12),
            ("PROXY over AF_UNIX", ppV2(0x21, 0x31, [UInt8](repeating: 0, count: 216)), 13),
            ("transport 3", ppV2(0x21, 0x13, a4), 13),
            ("INET without transport", ppV2(0x21, 0x10, a4), 13),
            ("family 4", ppV2(0x21, 0x41, a4), 13),
            ("LOCAL with an unknown family byte", ppV2(0x20, 0x44, []), 13),
            ("truncated IPv4 block", ppV2(0x21, 0x11, Array(a4[0..<8])), 15),
            ("empty IPv4 block", ppV2(0x21, 0x11, []), 15),
            ("truncated IPv6 block", ppV2(0x21, 0x21, [UInt8](repeating: 1, count: 35)), 15),
            ("IPv6 family with an IPv4 block", ppV2(0x21, 0x21, a4), 15),
            ("length over 16 KiB", ppV2(0x21, 0x11, a4, len: 16384 - 16 + 1), 15),
            ("LOCAL length over 16 KiB", ppV2(0x20, 0x00, [], len: 0xFFFF), 15),
            ("TLV past the end", ppV2(0x21, 0x11, a4 + [0x01, 0x00, 0x05, 0x61, 0x62, 0x63]), 16 + 12 + 2),
            ("TLV header cut by the length", ppV2(0x21, 0x11, a4 + [0x04, 0x00]), 15),
            ("second TLV past the end", ppV2(0x21, 0x11, a4 + ppTLV(4, [0]) + [0x01, 0x01, 0x00]), 16 + 12 + 4 + 2),
        ]
        // Every signature byte, altered.
        for k in 0..<12 {
            var b = ppV2(0x21, 0x11, a4)
            b[k] ^= 0x40
            cases.append(("signature byte \(k)", b, k))
        }
        for (name, b, at) in cases { checkDecisive(b, at: at, name) }
    }

    func testGarbageIsRefusedImmediately() {
        let http = ppBytes("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        XCTAssert(ppIsInvalid(ppParse(http[0..<1])))
        XCTAssert(ppIsInvalid(ppParse(http)))
        let tls: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]
        XCTAssert(ppIsInvalid(ppParse(tls[0..<1])))
        XCTAssert(ppIsInvalid(ppParse(ppBytes("PUT / HTTP/1.1\r\n")[0..<2])))
        XCTAssert(ppIsInvalid(ppParse(ppBytes("\r\nGET / HTTP/1.1\r\n")[0..<3])))
        XCTAssertEqual(ppParse([]), .incomplete)

        // Random bytes: invalid no later than the first byte that differs from both signatures.
        let v1sig = ppBytes("PROXY ")
        var rng = PPRandom(state: 0xB0B)
        for iter in 0..<3000 {
            var b = (0..<(1 + rng.below(40))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Bias some inputs to start like a signature.
            if iter % 3 == 1 { b = Array(v1sig[0..<rng.below(7)]) + b }
            if iter % 3 == 2 { b = Array(ppSig[0..<rng.below(13)]) + b }
            let sig = b.first == 0x0D ? ppSig : v1sig
            var d = 0
            while d < b.count && d < sig.count && b[d] == sig[d] { d += 1 }
            guard d < b.count && d < sig.count else { continue }  // matched a whole signature
            XCTAssert(ppIsInvalid(ppParse(b[0...d])), "iter \(iter): \(b)")
            XCTAssertEqual(ppParse(b[0..<d]), .incomplete, "iter \(iter)")
        }
    }

    // MARK: writer

    func testWriterGolden() {
        let a4 = ProxyAddress(family: 4, source: ppV4(192, 0, 2, 1), destination: ppV4(198, 51, 100, 22),
                              sourcePort: 51234, destinationPort: 443)
        XCTAssertEqual(String(decoding: ppWrite(.v1, a4), as: UTF8.self), "PROXY TCP4 192.0.2.1 198.51.100.22 51234 443\r\n")
        XCTAssertEqual(ppWrite(.v2, a4), ppSig + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 1, 198, 51, 100, 22, 0xC8, 0x22, 0x01, 0xBB])

        let a6 = ProxyAddress(family: 6, source: (0x2001_0db8_0000_0000, 1), destination: (0, 0xFFFF_C000_0201),
                              sourcePort: 1, destinationPort: 65535)
        XCTAssertEqual(String(decoding: ppWrite(.v1, a6), as: UTF8.self), "PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 1 65535\r\n")
        XCTAssertEqual(ppWrite(.v2, a6), ppSig + [0x21, 0x21, 0x00, 0x24,
                                                    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                                                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 1,
                                                    0x00, 0x01, 0xFF, 0xFF])

        XCTAssertEqual(String(decoding: ppWrite(.v1, .unspecified), as: UTF8.self), "PROXY UNKNOWN\r\n")
        XCTAssertEqual(ppWrite(.v2, .unspecified), ppSig + [0x20, 0x00, 0x00, 0x00])

        var bad = a4
        bad.family = 5
        XCTAssertEqual(ppWrite(.v1, bad), [])
        XCTAssertEqual(ppWrite(.v2, bad), [])
    }

    func testWriterTooSmall() {
        let addrs = [
            ProxyAddress(family: 4, source: ppV4(255, 255, 255, 255), destination: ppV4(255, 255, 255, 255),
                         sourcePort: 65535, destinationPort: 65535),
            ProxyAddress(family: 6, source: (0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF),
                         destination: (0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF), sourcePort: 65535, destinationPort: 65535),
            .unspecified,
        ]
        for a in addrs {
            for v in [ProxyProtocolVersion.v1, .v2] {
                let full = ppWrite(v, a)
                XCTAssertGreaterThan(full.count, 0)
                XCTAssertLessThanOrEqual(full.count, ProxyProtocolWriter.maxHeaderLength)
                for cap in 0..<full.count { XCTAssertEqual(ppWrite(v, a, capacity: cap), [], "cap \(cap)") }
                XCTAssertEqual(ppWrite(v, a, capacity: full.count), full)
            }
        }
        // A nil-based buffer.
        XCTAssertEqual(ProxyProtocolWriter.write(.v2, .unspecified, into: UnsafeMutableRawBufferPointer(start: nil, count: 0)), 0)
    }

    func testRoundTrip() {
        var rng = PPRandom(state: 42)
        for iter in 0..<500 {
            var a = ProxyAddress.unspecified
            switch iter % 3 {
            case 0:
                a = ProxyAddress(family: 4, source: (0, rng.next() & 0xFFFF_FFFF), destination: (0, rng.next() & 0xFFFF_FFFF),
                                 sourcePort: UInt16(truncatingIfNeeded: rng.next()), destinationPort: UInt16(truncatingIfNeeded: rng.next()))
            case 1:
                // Zero out random groups so "::" compression gets exercised.
                func v6() -> (UInt64, UInt64) {
                    var g = PPGroups()
                    for k in 0..<8 { g[k] = rng.below(2) == 0 ? 0 : UInt16(truncatingIfNeeded: rng.next()) }
                    return g.halves
                }
                a = ProxyAddress(family: 6, source: v6(), destination: v6(),
                                 sourcePort: UInt16(truncatingIfNeeded: rng.next()), destinationPort: UInt16(truncatingIfNeeded: rng.next()))
            default:
                break
            }
            for v in [ProxyProtocolVersion.v1, .v2] {
                let h = ppWrite(v, a)
                XCTAssertEqual(ppParse(h + [0x47, 0x45]), .complete(length: h.count, version: v, address: a), "iter \(iter) \(v)")
            }
        }
    }

    func testAddressFromRawBytes() {
        let s4: [UInt8] = [203, 0, 113, 7], d4: [UInt8] = [10, 1, 2, 3]
        let s6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        func make(_ s: [UInt8], _ d: [UInt8]) -> ProxyAddress? {
            s.withUnsafeBytes { sb in d.withUnsafeBytes { db in
                ProxyProtocolWriter.address(source: sb, sourcePort: 1234, destination: db, destinationPort: 443)
            } }
        }
        XCTAssertEqual(make(s4, d4), ProxyAddress(family: 4, source: ppV4(203, 0, 113, 7), destination: ppV4(10, 1, 2, 3),
                                                  sourcePort: 1234, destinationPort: 443))
        let six = make(s6, s6)
        XCTAssertEqual(six?.family, 6)
        XCTAssertEqual(six.map { ppText($0) }, "2001:db8::1")
        let mixed = make(s6, d4)
        XCTAssertEqual(mixed?.family, 6)
        XCTAssertEqual(mixed.map { ppText($0, source: false) }, "::ffff:10.1.2.3")
        XCTAssertNil(make([1, 2, 3], d4))
        XCTAssertNil(make(s4, []))
        XCTAssertEqual(make(s4, d4).map { ppText($0) }, "203.0.113.7")
    }

    // MARK: address text

    static let textCases: [(UInt8, (UInt64, UInt64), String)] = [
        (4, (0, 0xCB00_7107), "203.0.113.7"),
        (4, (0, 0), "0.0.0.0"),
        (4, (0, 0xFFFF_FFFF), "255.255.255.255"),
        (6, (0x2001_0db8_0000_0000, 1), "2001:db8::1"),
        (6, (0, 0), "::"),
        (6, (0, 1), "::1"),
        (6, (0x0001_0000_0000_0000, 0), "1::"),
        (6, (0x2001_0db8_0000_0001, 0x0001_0001_0001_0001), "2001:db8:0:1:1:1:1:1"),   // one zero group stays
        (6, (0x2001_0000_0000_0001, 0x0000_0000_0000_0001), "2001:0:0:1::1"),          // longest run wins
        (6, (0x2001_0db8_0000_0000, 0x0001_0000_0000_0001), "2001:db8::1:0:0:1"),      // tie: first run
        (6, (0x2001_0DB8_AAAA_BBBB, 0xCCCC_DDDD_EEEE_FFFF), "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"),
        (6, (0xFE80_0000_0000_0000, 0x0200_5EFF_FE00_5213), "fe80::200:5eff:fe00:5213"),
        (6, (0, 0xFFFF_C000_0201), "::ffff:192.0.2.1"),
        (6, (0, 0xC000_0201), "::c000:201"),
        (6, (0x0000_0000_0000_0001, 0), "0:0:0:1::"),
    ]

    func testSourceText() {
        for (fam, a, want) in Self.textCases {
            let addr = ProxyAddress(family: fam, source: a, destination: a, sourcePort: 0, destinationPort: 0)
            XCTAssertEqual(ppText(addr), want)
            XCTAssertEqual(ppText(addr, source: false), want)
            // Exactly-sized buffer works; one byte less gives 0.
            var out = [UInt8](repeating: 0, count: want.utf8.count)
            XCTAssertEqual(out.withUnsafeMutableBytes { ProxyProtocolWriter.sourceText(addr, into: $0) }, want.utf8.count)
            out.removeLast()
            XCTAssertEqual(out.withUnsafeMutableBytes { ProxyProtocolWriter.sourceText(addr, into: $0) }, 0)
        }
        XCTAssertEqual(ppText(.unspecified), "")
    }

    #if canImport(Glibc)
    /// The IPv6/IPv4 text parsers agree with glibc's inet_pton on random token soup,
    /// and the RFC 5952 formatter with inet_ntop (outside ::/96, where glibc prints
    /// the deprecated "::a.b.c.d" form).
    func testTextAgreesWithLibc() {
        let tokens = ["0", "1", "f", "ff", "ABCD", "12345", "00", "01", "255", "256", ":", ":", ":", "::", ".", ".", "1.2.3.4", "ffff", "g", "1:2:3:4:5:6:7", "::ffff:"]
        var rng = PPRandom(state: 7)
        var accepted = 0
        for iter in 0..<10000 {
            var s = ""
            for _ in 0..<(1 + rng.below(12)) { s += tokens[rng.below(tokens.count)] }
            let b = ppBytes(s + " ")
            var mine: (UInt64, UInt64) = (0, 0)
            let r = b.withUnsafeBytes { PPText.ipv6($0, 0, &mine) }
            var mineOK = false
            if case .done(let end) = r { mineOK = end == b.count - 1 }
            var raw = [UInt8](repeating: 0, count: 16)
            let libcOK = raw.withUnsafeMutableBytes { inet_pton(AF_INET6, s, $0.baseAddress) } == 1
            XCTAssertEqual(mineOK, libcOK, "iter \(iter): \(s)")
            if mineOK && libcOK {
                accepted += 1
                let want = raw.withUnsafeBytes { ProxyProtocolWriter.raw($0)?.value ?? (1, 1) }
                XCTAssert(mine == want, "iter \(iter): \(s)")
            }
            var v4: UInt32 = 0
            let r4 = b.withUnsafeBytes { PPText.ipv4($0, 0, &v4) }
            var mine4 = false
            if case .done(let end) = r4 { mine4 = end == b.count - 1 }
            let libc4 = raw.withUnsafeMutableBytes { inet_pton(AF_INET, s, $0.baseAddress) } == 1
            XCTAssertEqual(mine4, libc4, "iter \(iter) v4: \(s)")
        }
        XCTAssertGreaterThan(accepted, 100)

        for _ in 0..<3000 {
            var g = PPGroups()
            for k in 0..<8 { g[k] = rng.below(2) == 0 ? 0 : UInt16(truncatingIfNeeded: rng.next() >> UInt64(rng.below(3) * 8)) }
            let a = g.halves
            if a.0 == 0 && a.1 >> 32 == 0 && a.1 >> 16 != 0 { continue }
            var raw = [UInt8](repeating: 0, count: 16)
            for k in 0..<16 { raw[k] = UInt8(truncatingIfNeeded: (k < 8 ? a.0 : a.1) >> UInt64(56 - 8 * (k % 8))) }
            var buf = [CChar](repeating: 0, count: 64)
            _ = raw.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &buf, 64) }
            let want = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            XCTAssertEqual(ppText(ProxyAddress(family: 6, source: a, destination: a, sourcePort: 0, destinationPort: 0)), want)
        }
    }
    #endif

    // MARK: fuzz

    static let interesting: [UInt8] = [0x0D, 0x0A, 0x20, 0x3A, 0x2E, 0x30, 0x31, 0x39, 0x35, 0x36, 0x61, 0x46,
                                       0x00, 0xFF, 0x11, 0x21, 0x20, 0x10, 0x0C, 0x24, 0x50, 0x55]

    private func mutate(_ input: [UInt8], _ rng: inout PPRandom) -> [UInt8] {
        var b = input
        for _ in 0...rng.below(3) {
            switch rng.below(7) {
            case 0 where !b.isEmpty: b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next())
            case 1 where !b.isEmpty: b[rng.below(b.count)] = Self.interesting[rng.below(Self.interesting.count)]
            case 2: b.insert(Self.interesting[rng.below(Self.interesting.count)], at: rng.below(b.count + 1))
            case 3 where !b.isEmpty: b.remove(at: rng.below(b.count))
            case 4 where !b.isEmpty: b.removeLast(rng.below(min(b.count, 12)))
            case 5 where b.count > 16:
                // v2 length field (bytes 14-15) or a TLV length.
                let at = rng.below(2) == 0 ? 14 + rng.below(2) : rng.below(b.count)
                b[at] = UInt8(truncatingIfNeeded: rng.next() >> UInt64(rng.below(8)))
            default:
                if b.count > 2 {
                    let s = rng.below(b.count - 1), e = min(b.count, s + 1 + rng.below(12))
                    b.insert(contentsOf: b[s..<e], at: rng.below(b.count + 1))
                }
            }
        }
        return b
    }

    func testMutationFuzz() {
        var rng = PPRandom(state: 0x5EED_9909)
        let seeds = Self.valid.map(\.header).filter { $0.count < 2000 }
        var counts = (complete: 0, incomplete: 0, invalid: 0)
        for iter in 0..<5000 {
            let input = mutate(seeds[iter % seeds.count], &rng)
            let r = ppParse(input)
            switch r {
            case .incomplete:
                counts.incomplete += 1
                if input.first == 0x50 { XCTAssertLessThan(input.count, ProxyProtocolParser.maxV1Length, "iter \(iter)") }
                XCTAssertLessThan(input.count, ProxyProtocolParser.maxV2Length, "iter \(iter)")
            case .invalid:
                counts.invalid += 1
            case .complete(let len, let ver, let a):
                counts.complete += 1
                XCTAssert(len > 0 && len <= input.count, "iter \(iter): length \(len) of \(input.count)")
                guard len > 0 && len <= input.count else { continue }
                XCTAssertLessThanOrEqual(len, ver == .v1 ? ProxyProtocolParser.maxV1Length : ProxyProtocolParser.maxV2Length)
                XCTAssert(a.family == 0 || a.family == 4 || a.family == 6)
                // The header alone parses the same; its prefixes are incomplete.
                XCTAssertEqual(ppParse(input[0..<len]), r, "iter \(iter)")
                if iter % 8 == 0 {
                    for k in 0..<len where ppParse(input[0..<k]) != .incomplete {
                        XCTFail("iter \(iter): prefix \(k) of a valid header is not incomplete"); break
                    }
                }
                // What we parsed we can write back and parse again.
                for v in [ProxyProtocolVersion.v1, .v2] {
                    let h = ppWrite(v, a)
                    XCTAssertEqual(ppParse(h), .complete(length: h.count, version: v, address: a), "iter \(iter)")
                }
            }
        }
        XCTAssertGreaterThan(counts.complete, 200)
        XCTAssertGreaterThan(counts.invalid, 1000)
        XCTAssertGreaterThan(counts.incomplete, 50)
    }
}
