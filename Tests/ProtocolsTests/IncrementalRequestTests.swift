import XCTest
@testable import Protocols

/// The incremental request-head path (`parseRequest(_:limits:state:head:headers:)`)
/// against the one-shot parse: fed any split of any request, after every piece
/// it must return exactly what the one-shot parse of the bytes received so far
/// returns (same status and reason, same head and header table on completion).
/// Equality at every prefix means an error is reported at the same byte as
/// today: in the line that contains it, never later.
final class IncrementalRequestTests: XCTestCase {
    typealias LCG = FuzzTests.LCG

    /// Everything observable about a completed head (RequestHead is not Equatable).
    static func describe(_ h: RequestHead) -> String {
        "\(h.method) \(h.methodKind) \(h.target) v\(h.versionMinor) n\(h.headerCount) len\(h.headLength) "
            + "\(h.framing) ka\(h.keepAlive) ex\(h.expectContinue) host\(h.hostIndex) up\(h.wantsUpgrade) "
            + "other\(h.connectionListsOther) abs\(h.isAbsoluteForm) \(h.absoluteAuthority) \(h.absolutePath)"
    }

    /// One-shot parse of `raw[0..<n]`, as the proxy did it before: status and, if complete, head and fields.
    static func oneShot(_ buf: UnsafeRawBufferPointer, _ n: Int, _ limits: HTTP1Limits,
                        _ table: UnsafeMutableBufferPointer<HeaderField>) -> (ParseStatus, String, [HeaderField]) {
        var head = RequestHead()
        let s = HTTP1Parser.parseRequest(UnsafeRawBufferPointer(rebasing: buf[0..<n]), limits: limits, head: &head, headers: table)
        guard case .complete = s else { return (s, "", []) }
        return (s, describe(head), Array(table[0..<head.headerCount]))
    }

    /// Feeds `raw` cut at `cuts` (increasing, the last is raw.count) through one
    /// incremental state, comparing with the one-shot parse after every piece.
    /// The header table is scribbled over between pieces (it is scratch shared by
    /// connections in the proxy). Returns the first non-incomplete status and the
    /// prefix length at which it came, or (.incomplete, raw.count).
    @discardableResult
    static func check(_ raw: [UInt8], cuts: [Int], limits: HTTP1Limits = HTTP1Limits(), capacity: Int = 100,
                      _ label: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line)
        -> (ParseStatus, Int) {
        var state = HeadScanState()
        var table = [HeaderField](repeating: .empty, count: capacity)
        var reference = [HeaderField](repeating: .empty, count: capacity)
        let garbage = HeaderField(name: ByteRange(offset: 7, length: 3), value: ByteRange(offset: 1, length: 9), kind: .host)
        return raw.withUnsafeBytes { buf in
            table.withUnsafeMutableBufferPointer { tp in
                reference.withUnsafeMutableBufferPointer { rp in
                    var lastExamined = 0
                    for n in cuts {
                        for k in 0..<tp.count { tp[k] = garbage }
                        var head = RequestHead()
                        let s = HTTP1Parser.parseRequest(UnsafeRawBufferPointer(rebasing: buf[0..<n]), limits: limits,
                                                         state: &state, head: &head, headers: tp)
                        let (want, wantHead, wantFields) = oneShot(buf, n, limits, rp)
                        guard s == want else {
                            XCTFail("\(label()): prefix \(n): incremental \(s) vs one-shot \(want)", file: file, line: line)
                            return (s, n)
                        }
                        guard case .incomplete = s else {
                            XCTAssertEqual(state, HeadScanState(), "\(label()): state not reset", file: file, line: line)
                            if case .complete = s {
                                XCTAssertEqual(describe(head), wantHead, "\(label()): head at \(n)", file: file, line: line)
                                XCTAssertEqual(Array(tp[0..<head.headerCount]), wantFields, "\(label()): fields at \(n)",
                                               file: file, line: line)
                            }
                            return (s, n)
                        }
                        // Progress only moves forward and never past the bytes received.
                        XCTAssert(state.examined >= lastExamined && state.examined <= n, "\(label()): examined",
                                  file: file, line: line)
                        lastExamined = state.examined
                    }
                    return (.incomplete, raw.count)
                }
            }
        }
    }

    static func byteByByte(_ n: Int) -> [Int] { n == 0 ? [0] : Array(1...n) }

    static func randomCuts(_ n: Int, _ rng: inout LCG) -> [Int] {
        var cuts: [Int] = []
        var at = 0
        let maxStep = 1 + rng.below(24)
        while at < n {
            at = min(n, at + 1 + rng.below(maxStep))
            cuts.append(at)
        }
        return cuts.isEmpty ? [0] : cuts
    }

    static let limitsSet: [HTTP1Limits] = [
        HTTP1Limits(),
        HTTP1Limits(maxRequestLine: 24, maxHeaderBytes: 60, maxHeaderCount: 3),
        HTTP1Limits(maxRequestLine: 16, maxHeaderBytes: 200, maxHeaderCount: 100),
        HTTP1Limits(maxRequestLine: 40, maxHeaderBytes: 45, maxHeaderCount: 1),
        HTTP1Limits(maxRequestLine: 0, maxHeaderBytes: 0, maxHeaderCount: 0),
    ]

    /// Requests built here: long heads, long lines, many fields, pipelined bytes after the head.
    static var generated: [String] {
        var out: [String] = []
        let fields = (0..<40).map { "X-Field-\($0): value \($0) \(String(repeating: "v", count: $0 * 7))\r\n" }.joined()
        out.append("GET /many HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n")
        out.append("GET /\(String(repeating: "p", count: 300))?q=\(String(repeating: "1", count: 90)) HTTP/1.1\r\nHost: a\r\n\r\n")
        out.append("GET / HTTP/1.1\r\nHost: a\r\nX-Long: \(String(repeating: "a b\t", count: 200))  \t\r\n\r\n")
        out.append("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        out.append("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX:  \r\nY:\t\r\n\r\n")
        out.append("GET / HTTP/1.1\r\nHost: a\r\n" + fields + "X-Bad: a\u{1}b\r\n\r\n")
        out.append("GET / HTTP/1.1\r\nHost: a\r\n" + fields + "Bad Name: x\r\n\r\n")
        out.append("GET / HTTP/1.1\r\nHost: a\r\n" + fields + "Host: b\r\n\r\n")
        out.append("GET /\(String(repeating: "t", count: 9000)) HTTP/1.1\r\nHost: a\r\n\r\n")
        out.append("GET / HTTP/1.1\r\nHost: a\r\n" + (0..<101).map { "H\($0): x\r\n" }.joined() + "\r\n")
        out.append("GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "b", count: 33000))\r\n\r\n")
        out.append("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r")
        return out
    }

    static var corpus: [String] {
        RequestParserTests.rejectTable.map { $0.1 } + RequestParserTests.validRequests + FuzzTests.requests + generated
    }

    func testEveryVectorByteByByte() {
        for raw in Self.corpus.map(bytes) {
            for (li, limits) in Self.limitsSet.enumerated() {
                // The 33 KB vectors byte by byte under every limit set would be slow in debug; one set is enough.
                if raw.count > 2000 && li > 0 { continue }
                Self.check(raw, cuts: Self.byteByByte(raw.count), limits: limits, "limits \(li) \(String(decoding: raw.prefix(60), as: UTF8.self).debugDescription)")
            }
        }
    }

    func testEveryVectorRandomChunkings() {
        var rng = LCG(state: 0x1C0DE)
        for raw in Self.corpus.map(bytes) {
            for li in 0..<Self.limitsSet.count {
                for _ in 0..<6 {
                    Self.check(raw, cuts: Self.randomCuts(raw.count, &rng), limits: Self.limitsSet[li],
                               capacity: 1 + rng.below(120), "limits \(li) \(String(decoding: raw.prefix(60), as: UTF8.self).debugDescription)")
                }
            }
            // The whole head in one piece, and two pieces at every cut.
            Self.check(raw, cuts: [raw.count], "one piece \(String(decoding: raw.prefix(60), as: UTF8.self).debugDescription)")
            if raw.count < 400 {
                for c in 0...raw.count { Self.check(raw, cuts: [c, raw.count], "cut \(c) \(String(decoding: raw.prefix(60), as: UTF8.self).debugDescription)") }
            }
        }
    }

    /// Errors come at the byte that makes them certain, before the head ends.
    func testErrorsFoundInTheirLine() {
        let limits = HTTP1Limits(maxRequestLine: 32, maxHeaderBytes: 256, maxHeaderCount: 4)
        let cuts = Self.byteByByte
        // 414 once the request line reaches max_request_line, before its CRLF.
        let long = bytes("GET /" + String(repeating: "a", count: 60) + " HTTP/1.1\r\nHost: a\r\n\r\n")
        var (s, at) = Self.check(long, cuts: cuts(long.count), limits: limits, "414")
        XCTAssertEqual(Outcome(s), .error(414)); XCTAssertEqual(at, 32)
        // A bad byte in a header value: 400 at that byte.
        let ctl = bytes("GET / HTTP/1.1\r\nHost: a\r\nX: ab\u{1}cdef\r\nY: z\r\n\r\n")
        (s, at) = Self.check(ctl, cuts: cuts(ctl.count), limits: limits, "ctl")
        XCTAssertEqual(Outcome(s), .error(400)); XCTAssertEqual(at, ctl.firstIndex(of: 1)! + 1)
        // A bad header name: 400 at the space.
        let name = bytes("GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n")
        (s, at) = Self.check(name, cuts: cuts(name.count), limits: limits, "name")
        XCTAssertEqual(Outcome(s), .error(400)); XCTAssertEqual(at, 29)
        // 431 at the first byte of the field past max_headers.
        let many = bytes("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n")
        (s, at) = Self.check(many, cuts: cuts(many.count), limits: limits, "count")
        XCTAssertEqual(Outcome(s), .error(431)); XCTAssertEqual(at, bytes("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n").count + 1)
        // 431 once the head reaches max_header_bytes without its end.
        let big = bytes("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 400) + "\r\n\r\n")
        (s, at) = Self.check(big, cuts: cuts(big.count), limits: limits, "size")
        XCTAssertEqual(Outcome(s), .error(431)); XCTAssertEqual(at, 256)
        // 505 at the CRLF of the request line; a bad target at the SP after it.
        let v2 = bytes("GET / HTTP/2.0\r\nHost: a\r\n\r\n")
        (s, at) = Self.check(v2, cuts: cuts(v2.count), limits: limits, "505")
        XCTAssertEqual(Outcome(s), .error(505)); XCTAssertEqual(at, 16)
        // Cross-field rules at the blank line.
        let cl = bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        (s, at) = Self.check(cl, cuts: cuts(cl.count), limits: limits, "cl")
        XCTAssertEqual(Outcome(s), .error(400)); XCTAssertEqual(at, cl.count)
    }

    /// The field-line cursor alone: a line lexed in pieces yields exactly the field
    /// (name, trimmed value, kind, next) of one call over the whole line.
    func testFieldLineCursorResumesExactly() {
        func same(_ a: FieldLine, _ b: FieldLine) -> Bool {
            switch (a, b) {
            case (.field(let f, let n), .field(let g, let m)): return f == g && n == m
            case (.end(let n), .end(let m)): return n == m
            case (.exhausted, .exhausted): return true
            case (.invalid(let r), .invalid(let q)): return HTTP1Error(status: 400, reason: r) == HTTP1Error(status: 400, reason: q)
            default: return false
            }
        }
        var lines = ["Host: a\r\n", "X-Spaces:  a b  \r\n", "X:\r\n", "X: \t \r\n", "Transfer-Encoding: chunked\r\n",
                     "X: a\u{1}b\r\n", "Bad Name: x\r\n", "X: a\rb\r\n", "\r\n", "\r\r", " X: y\r\n", ": y\r\n",
                     "X-A: \t hello  world \t\r\n", "X: v\n", "Content-Length: 5 \r\n"]
        var rng = LCG(state: 0xF1E1D)
        for _ in 0..<300 {
            let m = FuzzTests.mutate(bytes(lines[rng.below(lines.count)]), &rng)
            lines.append(String(decoding: m, as: UTF8.self))
        }
        for line in lines {
            // A prefix before the line (p > 0) and bytes after it.
            let raw = bytes("GET / HTTP/1.1\r\n" + line + "Next: z\r\n\r\n")
            let p = 16
            raw.withUnsafeBytes { buf in
                let want = lexFieldLine(buf, from: p, end: raw.count)
                for step in [1, 2, 3, 7] {
                    var cursor = FieldCursor()
                    var end = p
                    var got = FieldLine.exhausted
                    while end < raw.count {
                        end = min(raw.count, end + step)
                        got = lexFieldLine(buf, from: p, end: end, cursor: &cursor)
                        // Before its end, a line is exhausted or already the one-shot error.
                        if case .exhausted = got { continue }
                        break
                    }
                    XCTAssert(same(got, want), "\(line.debugDescription) step \(step): \(got) vs \(want)")
                    if case .exhausted = got {} else { XCTAssertEqual(cursor, FieldCursor(), line.debugDescription) }
                }
            }
        }
    }

    /// Kept per connection in the proxy's slab: small plain data.
    func testStateIsSmallPOD() {
        XCTAssertLessThanOrEqual(MemoryLayout<HeadScanState>.size, 40)
        XCTAssertTrue(_isPOD(HeadScanState.self))
    }

    /// Keep-alive reuse: a fresh state per head; the state left after `.complete` is fresh.
    func testStateResetsBetweenHeads() {
        let first = bytes("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"), second = bytes("GET /b HTTP/1.1\r\nHost: b\r\nX: y\r\n\r\n")
        Self.check(first, cuts: Self.byteByByte(first.count), "first")
        Self.check(second, cuts: Self.byteByByte(second.count), "second")
        var state = HeadScanState()
        var head = RequestHead()
        var table = [HeaderField](repeating: .empty, count: 8)
        let all = first + second
        all.withUnsafeBytes { buf in
            table.withUnsafeMutableBufferPointer { tp in
                for n in 1...first.count {
                    _ = HTTP1Parser.parseRequest(UnsafeRawBufferPointer(rebasing: buf[0..<n]), limits: HTTP1Limits(),
                                                 state: &state, head: &head, headers: tp)
                }
                XCTAssertEqual(state, HeadScanState())
                XCTAssertEqual(head.headLength, first.count)
                // A state that examined more than a (new, shorter) buffer holds is discarded, not trusted.
                var stale = HeadScanState()
                _ = HTTP1Parser.parseRequest(UnsafeRawBufferPointer(rebasing: buf[0..<20]), limits: HTTP1Limits(),
                                             state: &stale, head: &head, headers: tp)
                XCTAssertGreaterThan(stale.examined, 16)
                XCTAssertEqual(HTTP1Parser.parseRequest(UnsafeRawBufferPointer(rebasing: buf[0..<3]), limits: HTTP1Limits(),
                                                        state: &stale, head: &head, headers: tp), .incomplete)
            }
        }
    }

    /// Seeded mutation fuzz: incremental vs one-shot on mutated heads, random splits, limits and table sizes.
    func testIncrementalMatchesOneShotUnderMutation() {
        var rng = LCG(state: 0x1AC7 &+ UInt64(FuzzTests.scale))
        // Mostly heads that parse (so mutations reach the end), some rejected ones.
        let valid = RequestParserTests.validRequests + FuzzTests.requests + Array(Self.generated.prefix(5))
        let seeds = (valid + valid + valid + RequestParserTests.rejectTable.map { $0.1 }).map(bytes)
        var completes = 0, errors = 0
        for iter in 0..<(10000 * FuzzTests.scale) {
            let input = FuzzTests.mutate(seeds[iter % seeds.count], &rng)
            let limits = Self.limitsSet[max(0, rng.below(5) - 2)]
            let cuts = rng.below(4) == 0 ? Self.byteByByte(input.count) : Self.randomCuts(input.count, &rng)
            let (s, _) = Self.check(input, cuts: cuts, limits: limits, capacity: 1 + rng.below(12), "iter \(iter)")
            switch s {
            case .complete: completes += 1
            case .error: errors += 1
            case .incomplete: break
            }
        }
        XCTAssertGreaterThan(completes, 200 * FuzzTests.scale, "errors: \(errors)")
        XCTAssertGreaterThan(errors, 2000 * FuzzTests.scale, "completes: \(completes)")
    }
}
