import FuzzSupport
import Protocols

// libFuzzer target: ChunkedDecoder.step, fed incrementally.
// Input: byte 0 picks maxTrailerBytes, byte 1 the number of split points (0-15),
// then one byte per split point (position = byte * count / 256); the rest is
// the body stream. The stream is decoded three ways — whole, split at the
// chosen points (each piece an exact-size allocation), and one byte at a time —
// checking the event contract of every step; all three must agree on payload
// bytes, where the body ends, and the error.

enum Outcome: Equatable {
    case incomplete
    case done(at: Int)
    case failed(HTTP1Error)
}

struct Run {
    var payload: [UInt8] = []
    var outcome = Outcome.incomplete
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChunked(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let trailerChoices = [0, 1, 2, 16, 64, 16384]
    let maxTrailer = trailerChoices[Int(input.byte()) % trailerChoices.count]
    let splitCount = Int(input.byte() & 15)
    var cuts: [Int] = []
    for _ in 0..<splitCount { cuts.append(Int(input.byte())) }
    let stream = input.rest
    let n = stream.count
    let points = (cuts.map { $0 * n / 256 } + [0, n]).sorted()

    var pieces: [ExactBytes] = []
    for k in 0..<(points.count - 1) {
        pieces.append(ExactBytes(UnsafeRawBufferPointer(rebasing: stream[points[k]..<points[k + 1]])))
    }
    let whole = decode([ExactBytes(stream)], maxTrailer: maxTrailer)
    let split = decode(pieces, maxTrailer: maxTrailer)
    require(whole.outcome == split.outcome, "split \(points) changes the outcome: \(whole.outcome) vs \(split.outcome)")
    require(whole.payload == split.payload, "split \(points) changes the payload")
    if n <= 512 {
        let bytes = (0..<n).map { ExactBytes(UnsafeRawBufferPointer(rebasing: stream[$0..<($0 + 1)])) }
        let single = decode(bytes, maxTrailer: maxTrailer)
        require(whole.outcome == single.outcome, "byte-at-a-time changes the outcome: \(whole.outcome) vs \(single.outcome)")
        require(whole.payload == single.payload, "byte-at-a-time changes the payload")
    }
    if case .done(let at) = whole.outcome {
        require(at >= 5 && at <= n && stream[at - 2] == 0x0D && stream[at - 1] == 0x0A, "body ends at \(at) not after CRLF")
        require(whole.payload.count <= at - 5, "payload \(whole.payload.count) bytes in a \(at)-byte body")
    }
    return 0
}

/// Feeds `pieces` in order, checking every event against the documented contract.
func decode(_ pieces: [ExactBytes], maxTrailer: Int) -> Run {
    var d = ChunkedDecoder(maxTrailerBytes: maxTrailer)
    var run = Run()
    var base = 0
    for piece in pieces {
        let buf = piece.buffer
        let count = buf.count
        var index = 0
        var steps = 0
        feeding: while true {
            steps += 1
            require(steps <= count + 2, "decoder made no progress at \(base + index)")
            let event = d.step(buf, at: index)
            switch event {
            case .data(let start, let end):
                require(start == index && end > start && end <= count, "data \(start)..<\(end) at \(index) of \(count)")
                run.payload.append(contentsOf: buf[start..<end])
                index = end
            case .framing(let end):
                require(end > index && end <= count, "framing to \(end) at \(index) of \(count)")
                index = end
            case .needMore:
                require(index == count, "needMore at \(index) of \(count)")
                break feeding
            case .done(let end):
                require(end >= index && end <= count && d.isDone, "done at \(end) from \(index) of \(count)")
                require(d.step(buf, at: end) == .done(end: end), "a finished decoder does not stay done")
                run.outcome = .done(at: base + end)
                return run
            case .error(let e):
                require(e.status == 400 && !d.isDone, "chunked error status \(e.status)")
                require(d.step(buf, at: 0) == .error(e), "a failed decoder does not stay failed")
                run.outcome = .failed(e)
                return run
            }
        }
        base += count
    }
    require(!d.isDone, "decoder done without reporting .done")
    return run
}
