import Protocols

/// Per-exchange compression state (`Exchange.compress`).
struct CompressionExchangeState {
    /// Negotiated from the request (Accept-Encoding vs the route); `.none` = never compress.
    var offer: CompressionAlgorithm = .none
    /// The response is being compressed with encoder `encoder` of the worker's pool.
    var active = false
    var encoder: Int32 = -1
    /// The upstream body has ended (all of it handed to the encoder or pending).
    var inputDone = false
    /// The encoder ended the stream (its last bytes are in `outBuf`)...
    var encoderDone = false
    /// ...and the last chunk is queued.
    var finished = false
    /// Upstream payload taken off the socket but not yet consumed by the encoder
    /// (the recv buffer stays retained until it is).
    var pendingBuf: Int32 = -1
    var pendingPtr: UnsafeRawPointer? = nil
    var pendingLen = 0
    /// Head buffer being filled with compressed bytes (one chunk), -1 if none.
    var outBuf: Int32 = -1
    var sawVary = false
}

/// HTTP/1.1 response compression: the decision at the response head, the
/// head rewrite (Content-Encoding, Vary, weak ETag, chunked), and the body
/// pump that feeds upstream payload through the worker's encoder into
/// chunked output. Output is bounded: one head buffer per chunk, at most the
/// client's segment ring; when it is full the upstream's input stays queued
/// (and its recv pauses), so a body is never buffered whole.
extension Reactor {
    /// Bytes reserved before a chunk's payload ("ffffffff\r\n") and after it ("\r\n0\r\n\r\n").
    static let chunkHeadRoom = 10
    static let chunkTailRoom = 7

    /// Request side: remembers which coding the client accepts for this route.
    /// HEAD, Range requests and HTTP/1.0 clients are never compressed. (h2
    /// streams come here too: their head is parsed into the same table.)
    func compressionNoteRequest(_ xi: Int, _ route: CompiledRoute, _ head: borrowing RequestHead, _ buf: UnsafeRawBufferPointer) {
        guard route.compression.enabled, exchanges[xi].method != .head,
              exchanges[xi].versionMinor >= 1 else { return }
        var w = AcceptEncoding.Weights()
        for k in 0..<head.headerCount {
            let f = headerTable[k]
            if Self.fieldNamed(buf, f.name, "accept-encoding") {
                AcceptEncoding.parse(Self.slice(buf, f.value), into: &w)
            } else if Self.fieldNamed(buf, f.name, "range") {
                return
            }
        }
        exchanges[xi].compress.offer = AcceptEncoding.choose(w, route.compression)
    }

    /// Response side: whether this final response gets compressed; takes an
    /// encoder if so. Already-encoded, `no-transform`, 204/206/304, other
    /// content types, bodies under `min_size` and close-delimited bodies pass as they are.
    func compressionStart(_ xi: Int, _ head: borrowing ResponseHead, _ buf: UnsafeRawBufferPointer) -> Bool {
        let offer = exchanges[xi].compress.offer
        guard offer != .none, head.status >= 200, head.status < 300, head.status != 204, head.status != 206 else { return false }
        let v = exchanges[xi].view, r = exchanges[xi].route
        guard v >= 0, r >= 0, Int(r) < views[Int(v)].routes.count else { return false }
        let settings = views[Int(v)].routes[Int(r)].compression
        switch head.framing {
        case .contentLength(let n): if n == 0 || n < settings.minSize { return false }
        case .chunked: break
        case .none, .untilClose: return false
        }
        var typed = false
        for k in 0..<head.headerCount {
            let f = headerTable[k]
            if Self.fieldNamed(buf, f.name, "content-encoding") || Self.fieldNamed(buf, f.name, "content-range") { return false }
            if Self.fieldNamed(buf, f.name, "cache-control") && Self.contains(Self.slice(buf, f.value), "no-transform") { return false }
            if Self.fieldNamed(buf, f.name, "content-type") {
                if !settings.matchesType(Self.slice(buf, f.value)) { return false }
                typed = true
            }
        }
        guard typed else { return false }
        let e = compression.acquire(offer, level: settings.level(offer))
        guard e >= 0 else { return false }
        exchanges[xi].compress.active = true
        exchanges[xi].compress.encoder = e
        return true
    }

    /// Head rewrite of one upstream field while compressing: Vary gains
    /// Accept-Encoding, a strong ETag turns weak. True when written here.
    func compressionRewriteField(_ w: inout HeadWriter, _ f: HeaderField, _ buf: UnsafeRawBufferPointer, _ xi: Int) -> Bool {
        if Self.fieldNamed(buf, f.name, "vary") {
            exchanges[xi].compress.sawVary = true
            let value = Self.slice(buf, f.value)
            w.append(buf, range: f.name); w.append(": "); w.append(buf, range: f.value)
            if !Self.contains(value, "accept-encoding") && !(value.count == 1 && value[0] == UInt8(ascii: "*")) {
                w.append(value.isEmpty ? "Accept-Encoding" : ", Accept-Encoding")
            }
            w.append("\r\n")
            return true
        }
        if Self.fieldNamed(buf, f.name, "etag") {
            let value = Self.slice(buf, f.value)
            w.append(buf, range: f.name); w.append(": ")
            if !(value.count >= 2 && value[0] == UInt8(ascii: "W") && value[1] == UInt8(ascii: "/")) { w.append("W/") }
            w.append(buf, range: f.value); w.append("\r\n")
            return true
        }
        return false
    }

    /// The fields compression adds to the head.
    func appendCompressionHeaders(_ w: inout HeadWriter, _ xi: Int) {
        w.append("Content-Encoding: ")
        w.append(exchanges[xi].compress.offer.token)
        w.append("\r\n")
        if !exchanges[xi].compress.sawVary { w.append("Vary: Accept-Encoding\r\n") }
    }

    /// Moves upstream payload through the encoder into chunked output for the
    /// client. Sets `response.done` once the last chunk is queued. Stops when
    /// the client's segment ring is full or the upstream has nothing more now.
    func pumpCompressed(from u: Int32, _ xi: Int) -> HTTP1Error? {
        let c = exchanges[xi].client
        while !exchanges[xi].compress.finished {
            if exchanges[xi].compress.pendingLen == 0 && !exchanges[xi].compress.inputDone {
                if let err = nextCompressInput(u, xi) { return err }
            }
            let pending = exchanges[xi].compress.pendingLen > 0
            let finishing = exchanges[xi].compress.inputDone && !pending
            if !pending && !finishing { break }
            if exchanges[xi].compress.outBuf < 0 {
                guard segmentRoom(c) >= 1 else { break }
                let id = buffers.takeHead()
                if id < 0 {
                    if socks[Int(c)].segCount == 0 { return HTTP1Error(status: 502, reason: "no buffer for compressed output") }
                    break
                }
                buffers.end[Int(id)] = Int32(Self.chunkHeadRoom)
                exchanges[xi].compress.outBuf = id
            }
            if exchanges[xi].compress.encoderDone {
                // The last chunk waited for room in the client's send ring.
                if emitChunk(xi, final: true) { exchanges[xi].compress.finished = true }
                break
            }
            let ob = exchanges[xi].compress.outBuf
            let limit = Int(buffers.capacity(ob)) - Self.chunkTailRoom
            let used = Int(buffers.end[Int(ob)])
            let step = compression.encode(exchanges[xi].compress.encoder, exchanges[xi].compress.pendingPtr,
                                          exchanges[xi].compress.pendingLen, buffers.pointer(ob) + used, limit - used, finish: finishing)
            if step.failed { return HTTP1Error(status: 502, reason: "response compression failed") }
            consumePending(xi, step.consumed)
            buffers.end[Int(ob)] += Int32(step.produced)
            if step.finished {
                exchanges[xi].compress.encoderDone = true
                if emitChunk(xi, final: true) { exchanges[xi].compress.finished = true }
                break
            }
            if Int(buffers.end[Int(ob)]) >= limit {
                if !emitChunk(xi, final: false) { break }
            } else if step.consumed == 0 && step.produced == 0 {
                break  // no progress possible now (cannot happen with room left; guards the loop)
            }
        }
        // Nothing more from the upstream for now: send what the encoder has produced.
        if !exchanges[xi].compress.encoderDone && exchanges[xi].compress.pendingLen == 0 && exchanges[xi].compress.outBuf >= 0
            && Int(buffers.end[Int(exchanges[xi].compress.outBuf)]) > Self.chunkHeadRoom {
            _ = emitChunk(xi, final: false)
        }
        if exchanges[xi].compress.finished { exchanges[xi].response.done = true }
        return nil
    }

    /// Takes the next payload slice of the upstream body (by its framing) as pending input.
    func nextCompressInput(_ u: Int32, _ xi: Int) -> HTTP1Error? {
        let h = socks[Int(u)].inHead
        if h < 0 { return nil }
        let buf = buffers.bytes(h)
        guard let base = buf.baseAddress, buf.count > 0 else { popInput(u); return nil }
        switch exchanges[xi].response.mode {
        case .none:
            exchanges[xi].compress.inputDone = true
        case .length:
            let take = Int(min(UInt64(buf.count), exchanges[xi].response.remaining))
            setPendingInput(xi, h, base, take)
            exchanges[xi].response.remaining -= UInt64(take)
            exchanges[xi].response.payloadBytes &+= UInt64(take)
            consumeInput(u, take)
            if exchanges[xi].response.remaining == 0 { exchanges[xi].compress.inputDone = true }
        case .untilClose:
            setPendingInput(xi, h, base, buf.count)
            consumeInput(u, buf.count)
        case .chunked:
            var index = 0
            while true {
                switch exchanges[xi].response.decoder.step(buf, at: index) {
                case .data(let s, let e):
                    exchanges[xi].response.payloadBytes &+= UInt64(e - s)
                    setPendingInput(xi, h, base + s, e - s)
                    consumeInput(u, e)
                    return nil
                case .framing(let e):
                    index = e
                case .needMore:
                    consumeInput(u, buf.count)
                    return nil
                case .done(let e):
                    consumeInput(u, e)
                    exchanges[xi].compress.inputDone = true
                    return nil
                case .error(let err):
                    return err
                }
            }
        }
        return nil
    }

    @inline(__always) private func setPendingInput(_ xi: Int, _ h: Int32, _ p: UnsafeRawPointer, _ n: Int) {
        if n <= 0 { return }
        buffers.retain(h)
        exchanges[xi].compress.pendingBuf = h
        exchanges[xi].compress.pendingPtr = p
        exchanges[xi].compress.pendingLen = n
    }

    /// The encoder took `n` bytes of the pending input.
    @inline(__always) func consumePending(_ xi: Int, _ n: Int) {
        if n <= 0 { return }
        exchanges[xi].compress.pendingPtr = exchanges[xi].compress.pendingPtr.map { $0 + n }
        exchanges[xi].compress.pendingLen -= n
        if exchanges[xi].compress.pendingLen <= 0 { dropPendingInput(xi) }
    }

    @inline(__always) private func dropPendingInput(_ xi: Int) {
        if exchanges[xi].compress.pendingBuf >= 0 { buffers.release(exchanges[xi].compress.pendingBuf) }
        exchanges[xi].compress.pendingBuf = -1
        exchanges[xi].compress.pendingPtr = nil
        exchanges[xi].compress.pendingLen = 0
    }

    /// Frames the output buffer as one chunk (plus the last-chunk marker when
    /// `final`) and queues it to the client. False if the segment ring is full.
    private func emitChunk(_ xi: Int, final: Bool) -> Bool {
        let ob = exchanges[xi].compress.outBuf
        guard ob >= 0 else { return true }
        let c = exchanges[xi].client
        guard segmentRoom(c) >= 1 else { return false }
        let p = buffers.pointer(ob)
        var end = Int(buffers.end[Int(ob)])
        let payload = end - Self.chunkHeadRoom
        var start = Self.chunkHeadRoom
        if payload > 0 {
            var digits = 1
            while payload >> (4 * digits) > 0 { digits += 1 }
            start = Self.chunkHeadRoom - digits - 2
            for k in 0..<digits {
                let nibble = (payload >> (4 * (digits - 1 - k))) & 0xF
                p.storeBytes(of: UInt8(nibble < 10 ? 0x30 + nibble : 0x57 + nibble), toByteOffset: start + k, as: UInt8.self)
            }
            p.storeBytes(of: 0x0D, toByteOffset: Self.chunkHeadRoom - 2, as: UInt8.self)
            p.storeBytes(of: 0x0A, toByteOffset: Self.chunkHeadRoom - 1, as: UInt8.self)
            p.storeBytes(of: 0x0D, toByteOffset: end, as: UInt8.self)
            p.storeBytes(of: 0x0A, toByteOffset: end + 1, as: UInt8.self)
            end += 2
        }
        if final {
            p.storeBytes(of: 0x30, toByteOffset: end, as: UInt8.self)
            p.storeBytes(of: 0x0A0D_0A0D as UInt32, toByteOffset: end + 1, as: UInt32.self)  // "\r\n\r\n" little-endian
            end += 5
        }
        buffers.end[Int(ob)] = Int32(end)
        if end > start { enqueue(c, p + start, end - start, id: ob) }
        buffers.release(ob)
        exchanges[xi].compress.outBuf = -1
        return true
    }

    /// Gives back the encoder and any held buffers (end of the exchange, or its abort).
    func compressionRelease(_ xi: Int) {
        if !exchanges[xi].compress.active { return }
        dropPendingInput(xi)
        if exchanges[xi].compress.outBuf >= 0 { buffers.release(exchanges[xi].compress.outBuf) }
        compression.release(exchanges[xi].compress.encoder)
        exchanges[xi].compress = CompressionExchangeState()
    }

    // MARK: Byte helpers (case-insensitive, no allocation)

    @inline(__always) static func slice(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) -> UnsafeRawBufferPointer {
        guard r.offset >= 0, r.end <= buf.count, let b = buf.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: b + Int(r.offset), count: Int(r.length))
    }

    /// The field name equals `lower` (a lower-case literal), ignoring case.
    @inline(__always) static func fieldNamed(_ buf: UnsafeRawBufferPointer, _ name: ByteRange, _ lower: StaticString) -> Bool {
        guard Int(name.length) == lower.utf8CodeUnitCount, name.offset >= 0, name.end <= buf.count else { return false }
        let p = lower.utf8Start
        for k in 0..<Int(name.length) where AcceptEncoding.lower(buf[Int(name.offset) + k]) != p[k] { return false }
        return true
    }

    /// `value` contains `lower` (a lower-case literal), ignoring case.
    static func contains(_ value: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        let n = lower.utf8CodeUnitCount
        guard n > 0, value.count >= n else { return false }
        let p = lower.utf8Start
        for s in 0...(value.count - n) {
            var same = true
            for k in 0..<n where AcceptEncoding.lower(value[s + k]) != p[k] { same = false; break }
            if same { return true }
        }
        return false
    }
}
