import Protocols

/// Moves message body bytes from one socket's input queue to another's output
/// without copying: output segments reference the received buffers. Framing
/// (Content-Length, chunked, until-close) decides where the body ends, so bytes
/// of a following pipelined message stay in the input queue.
extension Reactor {
    /// Returns nil on success (possibly partial: stops when `dst` has no segment
    /// room), or the framing error. `dst < 0` discards the body.
    func pumpBody(from src: Int32, to dst: Int32, state: inout BodyState) -> HTTP1Error? {
        let si = Int(src)
        while !state.done {
            let h = socks[si].inHead
            if h < 0 { break }
            if dst >= 0 && segmentRoom(dst) < 2 { break }
            let buf = buffers.bytes(h)
            guard let base = buf.baseAddress, buf.count > 0 else { popInput(src); continue }
            switch state.mode {
            case .none:
                state.done = true
            case .length:
                let take = Int(min(UInt64(buf.count), state.remaining))
                if dst >= 0 { enqueue(dst, base, take, id: h) }
                state.remaining -= UInt64(take)
                state.payloadBytes &+= UInt64(take)
                consumeInput(src, take)
                if state.remaining == 0 { state.done = true }
            case .untilClose:
                if dst >= 0 { enqueue(dst, base, buf.count, id: h) }
                state.payloadBytes &+= UInt64(buf.count)
                consumeInput(src, buf.count)
            case .chunked:
                var index = 0
                var stop = false
                while !stop {
                    if state.dechunk && dst >= 0 && segmentRoom(dst) < 2 { break }
                    switch state.decoder.step(buf, at: index) {
                    case .data(let s, let e):
                        state.payloadBytes &+= UInt64(e - s)
                        if state.dechunk && dst >= 0 { enqueue(dst, base + s, e - s, id: h) }
                        index = e
                    case .framing(let e):
                        index = e
                    case .needMore:
                        index = buf.count
                        stop = true
                    case .done(let e):
                        index = e
                        state.done = true
                        stop = true
                    case .error(let err):
                        return err
                    }
                }
                if !state.dechunk && dst >= 0 { enqueue(dst, base, index, id: h) }
                consumeInput(src, index)
            }
        }
        return nil
    }
}
