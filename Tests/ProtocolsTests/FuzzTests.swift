import XCTest
@testable import Protocols

/// Deterministic mutation fuzzing: the parsers must never trap, must terminate,
/// and every range they return must lie inside the parsed buffer.
/// Set PROTOCOLS_FUZZ_SCALE=N to run N times more iterations (with other seeds).
final class FuzzTests: XCTestCase {
    static let scale: Int = max(1, Int(ProcessInfo.processInfo.environment["PROTOCOLS_FUZZ_SCALE"] ?? "") ?? 1)

    struct LCG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    }

    static let interesting: [UInt8] = [0x0D, 0x0A, 0x20, 0x09, 0x3A, 0x2C, 0x3B, 0x3D, 0x22, 0x5C, 0x30, 0x39,
                                       0x61, 0x46, 0x00, 0x7F, 0x80, 0xFF, 0x2F, 0x2A, 0x40, 0x3F]

    static func mutate(_ input: [UInt8], _ rng: inout LCG) -> [UInt8] {
        var b = input
        for _ in 0...rng.below(4) {
            switch rng.below(6) {
            case 0 where !b.isEmpty: b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next())
            case 1 where !b.isEmpty: b[rng.below(b.count)] = Self.interesting[rng.below(Self.interesting.count)]
            case 2: b.insert(Self.interesting[rng.below(Self.interesting.count)], at: rng.below(b.count + 1))
            case 3 where !b.isEmpty: b.remove(at: rng.below(b.count))
            case 4 where !b.isEmpty: b.removeLast(rng.below(min(b.count, 8)))
            default:
                // Duplicate a slice (repeats headers, CRLFs, digits).
                if b.count > 2 {
                    let s = rng.below(b.count - 1), e = min(b.count, s + 1 + rng.below(12))
                    b.insert(contentsOf: b[s..<e], at: rng.below(b.count + 1))
                }
            }
        }
        return b
    }

    func inside(_ r: ByteRange, _ limit: Int) -> Bool { r.offset >= 0 && r.length >= 0 && r.end <= limit }

    static let requests: [String] = RequestParserTests.validRequests + [
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nConnection: close, x-a\r\nExpect: 100-continue\r\n\r\n",
        "GET http://[::1]:8080/a?b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    ]

    func testRequestParserMutations() {
        var rng = LCG(state: 0x5EED &+ UInt64(Self.scale))
        let seeds = Self.requests.map(bytes)
        let limitsSet = [HTTP1Limits(), HTTP1Limits(maxRequestLine: 24, maxHeaderBytes: 60, maxHeaderCount: 3)]
        var completes = 0
        defer { XCTAssertGreaterThan(completes, 100 * Self.scale, "mutations should still yield some valid heads") }
        for iter in 0..<(6000 * Self.scale) {
            let input = Self.mutate(seeds[iter % seeds.count], &rng)
            let limits = limitsSet[iter % 2]
            let r = parseRequest(input, limits: limits, capacity: 1 + rng.below(8))
            guard r.outcome == .complete else { continue }
            completes += 1
            let h = r.head
            let n = input.count
            XCTAssert(h.headLength > 0 && h.headLength <= n)
            for range in [h.method, h.target, h.absoluteAuthority, h.absolutePath] {
                XCTAssert(inside(range, h.headLength), "iter \(iter)")
            }
            XCTAssert(h.hostIndex >= -1 && h.hostIndex < max(h.headerCount, 1))
            for f in r.headers {
                XCTAssert(inside(f.name, h.headLength) && f.name.length > 0, "iter \(iter)")
                XCTAssert(inside(f.value, h.headLength), "iter \(iter)")
            }
        }
    }

    func testResponseParserMutations() {
        var rng = LCG(state: 0xBEEF &+ UInt64(Self.scale))
        let seeds = ResponseParserTests.framingTable.map { bytes($0.1) }
        for iter in 0..<(4000 * Self.scale) {
            let input = Self.mutate(seeds[iter % seeds.count], &rng)
            let methods: [HTTPMethod] = [.get, .head, .connect]
            let r = parseResponse(input, method: methods[iter % 3], capacity: 1 + rng.below(8))
            if case .error(let e) = r.status { XCTAssertEqual(e.status, 502) }
            guard r.outcome == .complete else { continue }
            XCTAssert(r.head.headLength <= input.count)
            XCTAssert(inside(r.head.reason, r.head.headLength))
            XCTAssert(r.head.status >= 100 && r.head.status <= 999)
            for f in r.headers { XCTAssert(inside(f.name, r.head.headLength) && inside(f.value, r.head.headLength)) }
        }
    }

    func testChunkedMutations() {
        var rng = LCG(state: 0xC0FFEE &+ UInt64(Self.scale))
        let seeds = [bytes(ChunkedDecoderTests.body + ChunkedDecoderTests.next), bytes("1\r\na\r\n0\r\n\r\n"),
                     bytes("10;a=\"\\\"\"\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n")]
        for iter in 0..<(4000 * Self.scale) {
            let input = Self.mutate(seeds[iter % seeds.count], &rng)
            // Random split into up to 4 pieces; runChunked asserts the event contract.
            var pieces: [[UInt8]] = []
            var rest = input[...]
            for _ in 0..<rng.below(4) {
                let cut = rng.below(rest.count + 1)
                pieces.append(Array(rest.prefix(cut)))
                rest = rest.dropFirst(cut)
            }
            pieces.append(Array(rest))
            let run = runChunked(pieces, maxTrailerBytes: 64)
            if let d = run.doneAt { XCTAssert(d <= input.count) }
            XCTAssert(run.payload.count <= input.count)
        }
    }

    func testCharacterClasses() {
        let tcharSet = Set(Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8))
        let authSet = Set(Array("-._~!$&'()*+,;=:[]%0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8))
        for v in 0...255 {
            let b = UInt8(v)
            XCTAssertEqual(isTchar(b), tcharSet.contains(b), "tchar \(v)")
            XCTAssertEqual(isAuthorityChar(b), authSet.contains(b), "authority \(v)")
            XCTAssertEqual(isFieldVchar(b), (v >= 0x21 && v <= 0x7E) || v >= 0x80, "vchar \(v)")
            let hex: UInt64? = (0x30...0x39).contains(v) ? UInt64(v - 0x30)
                : (0x41...0x46).contains(v) ? UInt64(v - 0x41 + 10)
                : (0x61...0x66).contains(v) ? UInt64(v - 0x61 + 10) : nil
            XCTAssertEqual(hexValue(b), hex, "hex \(v)")
            if tcharSet.contains(b) {
                XCTAssertEqual(lowerASCII(b), Array(String(UnicodeScalar(b)).lowercased().utf8)[0])
            }
        }
    }
}
