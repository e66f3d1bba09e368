import XCTest
@testable import Protocols

/// ClientHelloPeek on real ClientHellos, re-split into records and reads,
/// truncated and mutated: it must find the same SNI/ALPN however the bytes
/// arrive, say needMore for every proper prefix, and never trap.
final class ClientHelloPeekTests: XCTestCase {
    typealias F = ClientHelloFixtures

    /// Parse result with the ranges turned into strings.
    enum Seen: Equatable {
        case needMore(Int), sni(String, [String]), noSNI([String]), notTLS, malformed
    }

    func peek(_ input: [UInt8], scratchSize: Int = 16384) -> Seen {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchSize, alignment: 1)
        defer { scratch.deallocate() }
        let r = input.withUnsafeBytes { ClientHelloPeek.parse($0, scratch: scratch) }
        func text(_ b: ByteRange) -> String { String(decoding: scratch[Int(b.offset)..<b.end], as: UTF8.self) }
        func names(_ b: ByteRange) -> [String] {
            var out: [String] = []
            var i = Int(b.offset)
            while i < b.end { let n = Int(scratch[i]); out.append(String(decoding: scratch[(i + 1)..<(i + 1 + n)], as: UTF8.self)); i += 1 + n }
            return out
        }
        switch r {
        case .needMore(let n): return .needMore(n)
        case .sni(let name, let alpn):
            XCTAssert(name.offset >= 0 && name.end <= scratchSize && alpn.end <= scratchSize)
            return .sni(text(name), names(alpn))
        case .noSNI(let alpn): return .noSNI(names(alpn))
        case .notTLS: return .notTLS
        case .malformed: return .malformed
        }
    }

    /// Splits the handshake payload of a single-record hello into records of `size` bytes.
    func resplit(_ hello: [UInt8], recordSize size: Int) -> [UInt8] {
        let payload = Array(hello[5...])
        var out: [UInt8] = []
        var i = 0
        while i < payload.count {
            let n = min(size, payload.count - i)
            out += [0x16, 0x03, 0x01, UInt8(n >> 8), UInt8(n & 0xFF)] + payload[i..<(i + n)]
            i += n
        }
        return out
    }

    static let table: [(String, [UInt8], Seen)] = [
        ("openssl -servername -alpn", F.opensslSNIALPN, .sni("db.example.com", ["h2", "http/1.1"])),
        ("openssl -noservername", F.opensslNoSNI, .noSNI([])),
        ("openssl -tls1_2", F.openssl12, .sni("a.b.example.com", [])),
        ("python ssl", F.pythonSNI, .sni("api.example.com", ["http/1.1"])),
    ]

    func testRealClientHellos() {
        for (what, hello, want) in Self.table {
            XCTAssertEqual(peek(hello), want, what)
            // Bytes after the hello (a pipelined record) change nothing.
            XCTAssertEqual(peek(hello + [0x17, 0x03, 0x03, 0x00, 0x01, 0x00]), want, what)
        }
    }

    func testSplitAcrossRecords() {
        for (what, hello, want) in Self.table {
            for size in [1, 2, 3, 4, 7, 100, 511] {
                XCTAssertEqual(peek(resplit(hello, recordSize: size)), want, "\(what) in \(size)-byte records")
            }
        }
    }

    /// Every proper prefix (a trickled hello, one byte per read) is needMore,
    /// with a lower bound that is never past the length where the answer appears.
    func testEveryPrefixNeedsMore() {
        for (what, hello, want) in Self.table {
            for input in [hello, resplit(hello, recordSize: 37)] {
                var lastBound = 0
                for k in 0..<input.count {
                    guard case .needMore(let atLeast) = peek(Array(input[0..<k])) else {
                        XCTFail("\(what): prefix \(k) of \(input.count) is not needMore"); break
                    }
                    XCTAssertGreaterThan(atLeast, k, what)
                    XCTAssertLessThanOrEqual(atLeast, input.count, "\(what): bound past the end at prefix \(k)")
                    XCTAssertGreaterThanOrEqual(atLeast, lastBound, what)
                    lastBound = atLeast
                }
                XCTAssertEqual(peek(input), want, what)
            }
        }
    }

    func testNotTLS() {
        XCTAssertEqual(peek(Array("GET / HTTP/1.1\r\n\r\n".utf8)), .notTLS)
        XCTAssertEqual(peek([0x47]), .notTLS)
        XCTAssertEqual(peek([0x16, 0x02]), .notTLS, "major version 2")
        // SSLv2-compatible ClientHello.
        XCTAssertEqual(peek([0x80, 0x2E, 0x01, 0x03, 0x01]), .notTLS)
        XCTAssertEqual(peek([]), .needMore(1))
        XCTAssertEqual(peek([0x16]), .needMore(2))
    }

    func testMalformed() {
        let hello = F.opensslSNIALPN
        func with(_ i: Int, _ b: UInt8, _ h: [UInt8] = F.opensslSNIALPN) -> [UInt8] { var x = h; x[i] = b; return x }
        // Zero-length and oversize records.
        XCTAssertEqual(peek([0x16, 0x03, 0x01, 0x00, 0x00]), .malformed)
        XCTAssertEqual(peek([0x16, 0x03, 0x01, 0x40, 0x01]), .malformed)
        // Not a ClientHello (ServerHello type 2).
        XCTAssertEqual(peek(with(5, 2)), .malformed)
        // Handshake length larger than the scratch.
        XCTAssertEqual(peek(hello, scratchSize: 200), .malformed)
        // A second record that is not a handshake record.
        var split = resplit(hello, recordSize: 100)
        split[105] = 0x17
        XCTAssertEqual(peek(split), .malformed)
        // Handshake length one short of the record: the extensions overrun the message.
        var short = hello
        short[8] &-= 1
        XCTAssertEqual(peek(short), .malformed)
        // SNI with a control byte, duplicate server_name, empty host name.
        XCTAssertEqual(peek(sniHello(Array("db\u{1}x".utf8))), .malformed)
        XCTAssertEqual(peek(sniHello(Array("a.example".utf8), twice: true)), .malformed)
        XCTAssertEqual(peek(sniHello([])), .malformed)
        XCTAssertEqual(peek(sniHello(Array(repeating: 0x61, count: 256))), .malformed)
        XCTAssertEqual(peek(sniHello(Array(repeating: 0x61, count: 255))), .sni(String(repeating: "a", count: 255), []))
    }

    func testALPNOffers() {
        let list: [UInt8] = [2, 0x68, 0x32, 8] + Array("http/1.1".utf8)
        list.withUnsafeBytes {
            XCTAssertTrue(ClientHelloPeek.offers($0, "h2"))
            XCTAssertTrue(ClientHelloPeek.offers($0, "http/1.1"))
            XCTAssertFalse(ClientHelloPeek.offers($0, "h3"))
        }
        [5, 0x68].withUnsafeBytes { XCTAssertFalse(ClientHelloPeek.offers($0, "h")) }
    }

    /// A minimal TLS 1.2 ClientHello with one server_name extension.
    func sniHello(_ name: [UInt8], twice: Bool = false) -> [UInt8] {
        let entry: [UInt8] = [0, UInt8(name.count >> 8), UInt8(name.count & 0xFF)] + name
        let list: [UInt8] = [UInt8(entry.count >> 8), UInt8(entry.count & 0xFF)] + entry
        let ext: [UInt8] = [0, 0, UInt8(list.count >> 8), UInt8(list.count & 0xFF)] + list
        let exts = twice ? ext + ext : ext
        var body: [UInt8] = [3, 3] + Array(repeating: 7, count: 32) + [0] + [0, 2, 0x13, 0x01] + [1, 0]
        body += [UInt8(exts.count >> 8), UInt8(exts.count & 0xFF)] + exts
        let hs: [UInt8] = [1, 0, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        return [0x16, 0x03, 0x01, UInt8(hs.count >> 8), UInt8(hs.count & 0xFF)] + hs
    }

    /// Deterministic mutations of the real hellos: never a trap, ranges inside the scratch.
    func testMutationsNeverTrap() {
        var rng = FuzzTests.LCG(state: 0xC11E)
        var found = 0
        for iter in 0..<(4000 * FuzzTests.scale) {
            var input = Self.table[iter % Self.table.count].1
            if iter % 3 == 0 { input = resplit(input, recordSize: 1 + rng.below(300)) }
            input = FuzzTests.mutate(input, &rng)
            if case .sni = peek(input) { found += 1 }
        }
        XCTAssertGreaterThan(found, 100, "some mutations keep a valid SNI")
    }

    /// The fuzz seeds (Fuzz/corpus/clienthello) replayed: the real hellos (one
    /// record and 50-byte records) route, the plain-text seed is notTLS.
    func testFuzzCorpusReplay() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fuzz/corpus/clienthello").standardizedFileURL
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertGreaterThanOrEqual(files.count, 9, "\(files)")
        for f in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(f))
            let seen = peek(Array(data))
            switch seen {
            case .sni, .noSNI: XCTAssertFalse(f.hasPrefix("plain"), f)
            case .notTLS: XCTAssertTrue(f.hasPrefix("plain"), f)
            default: XCTFail("\(f): \(seen)")
            }
        }
    }
}
