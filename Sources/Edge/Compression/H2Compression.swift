import CNGHTTP2
import Protocols

/// Response compression on HTTP/2 streams: the same decision and encoders as
/// HTTP/1.1, but no chunk framing — nghttp2's data provider pulls compressed
/// bytes straight into its DATA frame buffer, so output is bounded by the
/// stream's flow-control window and the upstream's input waits meanwhile.
extension Reactor {
    /// The HEADERS value for a Vary or ETag field of a compressed response,
    /// in the h2 scratch area: nil if `field` is neither, a negative length
    /// if the scratch area is full.
    func h2CompressionValue(_ used: inout Int, _ field: HeaderField, _ buf: UnsafeRawBufferPointer, _ xi: Int) -> (UnsafeRawPointer?, Int)? {
        let isVary = Self.fieldNamed(buf, field.name, "vary")
        guard isVary || Self.fieldNamed(buf, field.name, "etag") else { return nil }
        let value = Self.slice(buf, field.value)
        var prefix: StaticString = ""
        var suffix: StaticString = ""
        if isVary {
            exchanges[xi].compress.sawVary = true
            if !Self.contains(value, "accept-encoding") && !(value.count == 1 && value[0] == UInt8(ascii: "*")) {
                suffix = value.isEmpty ? "accept-encoding" : ", accept-encoding"
            }
        } else if !(value.count >= 2 && value[0] == UInt8(ascii: "W") && value[1] == UInt8(ascii: "/")) {
            prefix = "W/"
        }
        let total = prefix.utf8CodeUnitCount + value.count + suffix.utf8CodeUnitCount
        guard used + total <= HTTP2Tables.scratchBytes else { return (nil, -1) }
        let p = UnsafeMutableRawPointer(http2.scratch + used)
        var k = 0
        if prefix.utf8CodeUnitCount > 0 { p.copyMemory(from: prefix.utf8Start, byteCount: prefix.utf8CodeUnitCount); k += prefix.utf8CodeUnitCount }
        if let b = value.baseAddress, value.count > 0 { (p + k).copyMemory(from: b, byteCount: value.count); k += value.count }
        if suffix.utf8CodeUnitCount > 0 { (p + k).copyMemory(from: suffix.utf8Start, byteCount: suffix.utf8CodeUnitCount); k += suffix.utf8CodeUnitCount }
        used += total
        return (UnsafeRawPointer(p), total)
    }

    /// Compressed body bytes of stream `x` into nghttp2's frame buffer
    /// (the compressing branch of `h2ReadBody`).
    func h2ReadCompressed(_ x: Int32, _ dst: UnsafeMutableRawPointer, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        let xi = Int(x)
        let u = exchanges[xi].upstream
        guard u >= 0 else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        let ui = Int(u)
        var n = 0
        while n < length && !exchanges[xi].compress.finished {
            if exchanges[xi].compress.pendingLen == 0 && !exchanges[xi].compress.inputDone {
                if nextCompressInput(u, xi) != nil {
                    stats.bump(stats.upstreamErrors)
                    return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
                }
            }
            let pending = exchanges[xi].compress.pendingLen > 0
            let finishing = exchanges[xi].compress.inputDone && !pending
            if !pending && !finishing { break }
            let step = compression.encode(exchanges[xi].compress.encoder, exchanges[xi].compress.pendingPtr,
                                          exchanges[xi].compress.pendingLen, dst + n, length - n, finish: finishing)
            if step.failed { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
            consumePending(xi, step.consumed)
            n += step.produced
            if step.finished { exchanges[xi].compress.encoderDone = true; exchanges[xi].compress.finished = true; break }
            if step.consumed == 0 && step.produced == 0 { break }
        }
        exchanges[xi].responseBytes &+= UInt64(n)
        if exchanges[xi].compress.finished {
            exchanges[xi].response.done = true
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            http2.streams[xi].responseSent = true
            h2FinishUpstream(x)
            return n
        }
        if !exchanges[xi].compress.inputDone && exchanges[xi].compress.pendingLen == 0 && socks[ui].eof && socks[ui].inHead < 0 {
            // The upstream died mid-body: the stream is reset, the rest goes on.
            stats.bump(stats.upstreamErrors)
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        if !socks[ui].closing {
            updateRecv(u)
            scheduleTimer(u, .upstreamBody, afterMs: Int64(listenerSettings(exchanges[xi].client).bodyTimeoutMs))
        }
        if n == 0 {
            http2.streams[xi].deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return n
    }
}
