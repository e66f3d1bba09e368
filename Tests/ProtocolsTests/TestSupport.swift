import XCTest
@testable import Protocols

/// Expected outcome of a parse in table-driven tests.
enum Outcome: Equatable, CustomStringConvertible {
    case complete
    case incomplete
    case error(UInt16)

    init(_ s: ParseStatus) {
        switch s {
        case .complete: self = .complete
        case .incomplete: self = .incomplete
        case .error(let e): self = .error(e.status)
        }
    }

    var description: String {
        switch self {
        case .complete: return "complete"
        case .incomplete: return "incomplete"
        case .error(let s): return "error(\(s))"
        }
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A parsed head copied out of the unsafe buffers, for assertions.
struct Parsed<Head> {
    var status: ParseStatus
    var head: Head
    var headers: [HeaderField]
    var raw: [UInt8]

    var outcome: Outcome { Outcome(status) }
    var reason: String? { if case .error(let e) = status { return e.reasonText } else { return nil } }

    func str(_ r: ByteRange) -> String {
        String(decoding: raw[Int(r.offset)..<r.end], as: UTF8.self)
    }
    /// Value of the first header named `name` (case-insensitive).
    func header(_ name: String) -> String? {
        for h in headers where str(h.name).lowercased() == name.lowercased() { return str(h.value) }
        return nil
    }
}

func parseRequest(_ raw: [UInt8], limits: HTTP1Limits = HTTP1Limits(), capacity: Int = 100) -> Parsed<RequestHead> {
    var head = RequestHead()
    var table = [HeaderField](repeating: .empty, count: capacity)
    let status = raw.withUnsafeBytes { buf in
        table.withUnsafeMutableBufferPointer { hp in
            HTTP1Parser.parseRequest(buf, limits: limits, head: &head, headers: hp)
        }
    }
    let n = status == .complete ? head.headerCount : 0
    return Parsed(status: status, head: head, headers: Array(table[0..<n]), raw: raw)
}

func parseRequest(_ s: String, limits: HTTP1Limits = HTTP1Limits(), capacity: Int = 100) -> Parsed<RequestHead> {
    parseRequest(bytes(s), limits: limits, capacity: capacity)
}

func parseResponse(_ raw: [UInt8], method: HTTPMethod = .get, limits: HTTP1Limits = HTTP1Limits(),
                   capacity: Int = 100) -> Parsed<ResponseHead> {
    var head = ResponseHead()
    var table = [HeaderField](repeating: .empty, count: capacity)
    let status = raw.withUnsafeBytes { buf in
        table.withUnsafeMutableBufferPointer { hp in
            HTTP1Parser.parseResponse(buf, limits: limits, requestMethod: method, head: &head, headers: hp)
        }
    }
    let n = status == .complete ? head.headerCount : 0
    return Parsed(status: status, head: head, headers: Array(table[0..<n]), raw: raw)
}

func parseResponse(_ s: String, method: HTTPMethod = .get, limits: HTTP1Limits = HTTP1Limits()) -> Parsed<ResponseHead> {
    parseResponse(bytes(s), method: method, limits: limits)
}

/// Result of feeding a chunked body to a fresh decoder in pieces.
struct ChunkedRun {
    var payload: [UInt8] = []
    /// Offset of `.done(end)` counted from the start of the first piece.
    var doneAt: Int? = nil
    var error: HTTP1Error? = nil
}

/// Feeds `pieces` in order, checking the decoder's contract on every event:
/// progress on data/framing, ranges inside the piece, and termination.
func runChunked(_ pieces: [[UInt8]], maxTrailerBytes: Int = 16384,
                file: StaticString = #filePath, line: UInt = #line) -> ChunkedRun {
    var dec = ChunkedDecoder(maxTrailerBytes: maxTrailerBytes)
    var run = ChunkedRun()
    var base = 0
    for piece in pieces {
        var i = 0
        var steps = 0
        let stop: Bool = piece.withUnsafeBytes { buf in
            while true {
                steps += 1
                if steps > 100_000 { XCTFail("decoder loop did not terminate", file: file, line: line); return true }
                switch dec.step(buf, at: i) {
                case .data(let s, let e):
                    XCTAssert(s == i && e > s && e <= buf.count, "bad data range \(s)..<\(e) at \(i)", file: file, line: line)
                    if !(s == i && e > s && e <= buf.count) { return true }
                    run.payload.append(contentsOf: buf[s..<e])
                    i = e
                case .framing(let e):
                    XCTAssert(e > i && e <= buf.count, "bad framing end \(e) at \(i)", file: file, line: line)
                    if !(e > i && e <= buf.count) { return true }
                    i = e
                case .needMore:
                    XCTAssertEqual(i, buf.count, "needMore before end", file: file, line: line)
                    return false
                case .done(let e):
                    XCTAssert(e >= i && e <= buf.count, file: file, line: line)
                    XCTAssert(dec.isDone, file: file, line: line)
                    run.doneAt = base + e
                    return true
                case .error(let err):
                    XCTAssertEqual(err.status, 400, file: file, line: line)
                    run.error = err
                    return true
                }
            }
        }
        if stop { return run }
        base += piece.count
    }
    return run
}
