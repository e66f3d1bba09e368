import CNGHTTP2
import Glibc
import Protocols

/// Responses on HTTP/2 streams: upstream heads become HEADERS, bodies DATA
/// through a data provider that defers while the upstream has nothing and
/// resumes when it has; local answers (direct responses, errors) the same way.
extension Reactor {
    /// The data provider nghttp2 pulls response bytes through (stream user data
    /// names the exchange; the source is unused).
    static let h2BodyReader: nghttp2_data_source_read_callback = { session, sid, buf, length, flags, _, ud in
        guard let session, let buf, let flags, let (r, _) = H2Session.context(ud) else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
        let x = r.h2Exchange(session, sid)
        guard x >= 0 else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        return r.h2ReadBody(x, UnsafeMutableRawPointer(buf), length, flags)
    }

    /// A name/value pair for nghttp2 (which copies both on submit).
    @inline(__always) func h2Pair(_ k: inout Int, _ name: UnsafeRawPointer, _ nameLength: Int, _ value: UnsafeRawPointer?, _ valueLength: Int) {
        guard k < HTTP2Tables.maxFields else { return }
        let empty = StaticString("")
        http2.nv[k] = nghttp2_nv(name: UnsafeMutablePointer(mutating: name.assumingMemoryBound(to: UInt8.self)),
                                 value: UnsafeMutablePointer(mutating: (value ?? UnsafeRawPointer(empty.utf8Start)).assumingMemoryBound(to: UInt8.self)),
                                 namelen: nameLength, valuelen: valueLength, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
        k += 1
    }

    @inline(__always) func h2Pair(_ k: inout Int, _ name: StaticString, _ value: UnsafeRawPointer?, _ valueLength: Int) {
        h2Pair(&k, UnsafeRawPointer(name.utf8Start), name.utf8CodeUnitCount, value, valueLength)
    }

    /// Copies `bytes` lower-cased into the scratch area; nil when it is full.
    @inline(__always) func h2Lower(_ used: inout Int, _ bytes: UnsafeRawBufferPointer) -> UnsafeRawPointer? {
        guard used + bytes.count <= HTTP2Tables.scratchBytes else { return nil }
        let p = http2.scratch + used
        for k in 0..<bytes.count {
            var ch = bytes[k]
            if ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
            p[k] = ch
        }
        used += bytes.count
        return UnsafeRawPointer(p)
    }

    /// Decimal digits of `n` in the scratch area.
    @inline(__always) func h2Digits(_ used: inout Int, _ n: UInt64) -> (UnsafeRawPointer, Int)? {
        guard used + 20 <= HTTP2Tables.scratchBytes else { return nil }
        var w = HeadWriter(UnsafeMutableRawPointer(http2.scratch + used), capacity: 20)
        w.appendDecimal(n)
        let p = UnsafeRawPointer(http2.scratch + used)
        used += w.count
        return (p, w.count)
    }

    @inline(__always) func h2IsHopByHop(_ kind: HeaderKind) -> Bool {
        switch kind {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .upgrade, .transferEncoding: return true
        default: return false
        }
    }

    /// The upstream's HTTP/1.1 response head as HEADERS: hop-by-hop fields
    /// dropped, names lower-cased, the route's response edits applied.
    func h2SubmitUpstreamHead(_ x: Int32, _ head: inout ResponseHead, _ buf: UnsafeRawBufferPointer, hasBody: Bool) -> Bool {
        let xi = Int(x)
        let c = exchanges[xi].client
        guard let s = http2.conns[Int(c)].session, let bb = buf.baseAddress else { return false }
        var k = 0
        var used = 0
        guard let status = h2Digits(&used, UInt64(head.status)) else { return false }
        h2Pair(&k, ":status", status.0, status.1)
        let headers = UnsafeBufferPointer(headerTable)
        let v = exchanges[xi].view
        var route: CompiledRoute? = nil
        if v >= 0 && exchanges[xi].route >= 0 { route = views[Int(v)].routes[Int(exchanges[xi].route)] }
        let edits = route?.responseEditCount ?? 0
        let compressing = compressionStart(xi, head, buf)  // Compression/H2Compression.swift
        for f in 0..<head.headerCount {
            let field = headerTable[f]
            if h2IsHopByHop(field.kind) { continue }
            if (head.framing == .chunked || compressing) && field.kind == .contentLength { continue }
            if head.connectionListsOther && HTTP1Parser.isListedInConnection(buf, headers: headers, count: head.headerCount, name: field.name) { continue }
            if edits > 0, let r = route, editReplaces(Int(v), r.firstResponseEdit, edits, buf, field.name) { continue }
            let name = UnsafeRawBufferPointer(rebasing: buf[Int(field.name.offset)..<field.name.end])
            guard let lower = h2Lower(&used, name) else { return false }
            if compressing, let rewritten = h2CompressionValue(&used, field, buf, xi) {
                guard rewritten.1 >= 0 else { return false }
                h2Pair(&k, lower, name.count, rewritten.0, rewritten.1)
                continue
            }
            h2Pair(&k, lower, name.count, bb + Int(field.value.offset), Int(field.value.length))
        }
        if compressing {
            let token = exchanges[xi].compress.offer.token
            h2Pair(&k, "content-encoding", UnsafeRawPointer(token.utf8Start), token.utf8CodeUnitCount)
            if !exchanges[xi].compress.sawVary { h2Pair(&k, "vary", UnsafeRawPointer(StaticString("accept-encoding").utf8Start), 15) }
        }
        if edits > 0, let r = route {
            let list = views[Int(v)].headerEdits
            for e in Int(r.firstResponseEdit)..<Int(r.firstResponseEdit + edits) where list[e].op != .remove {
                guard let lower = h2Lower(&used, list[e].name.buffer) else { return false }
                h2Pair(&k, lower, list[e].name.count, list[e].value.base, list[e].value.count)
            }
        }
        h2Pair(&k, "via", UnsafeRawPointer(StaticString("1.1 edge").utf8Start), 8)
        return h2Submit(s, x, k, hasBody: hasBody)
    }

    func h2Submit(_ s: OpaquePointer, _ x: Int32, _ count: Int, hasBody: Bool) -> Bool {
        let xi = Int(x)
        http2.streams[xi].responseSubmitted = true
        exchanges[xi].responseStarted = true
        var rv: Int32
        if hasBody {
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Reactor.h2BodyReader)
            rv = nghttp2_submit_response(s, http2.streams[xi].id, http2.nv, count, &provider)
        } else {
            http2.streams[xi].responseSent = true
            rv = nghttp2_submit_response(s, http2.streams[xi].id, http2.nv, count, nil)
        }
        return rv == 0
    }

    /// The next response bytes of stream `x` into nghttp2's frame buffer.
    func h2ReadBody(_ x: Int32, _ dst: UnsafeMutableRawPointer, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        let xi = Int(x)
        let t = http2
        if t.streams[xi].up.viaH2 && t.streams[xi].localBody == nil { return h2upReadBody(x, dst, length, flags) }
        if let local = t.streams[xi].localBody {
            let n = min(length, t.streams[xi].localLength - t.streams[xi].localOffset)
            if n > 0 { dst.copyMemory(from: local + t.streams[xi].localOffset, byteCount: n) }
            t.streams[xi].localOffset += n
            if t.streams[xi].localOffset >= t.streams[xi].localLength {
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                t.streams[xi].responseSent = true
            }
            return n
        }
        if exchanges[xi].response.done {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            t.streams[xi].responseSent = true
            return 0
        }
        if exchanges[xi].compress.active { return h2ReadCompressed(x, dst, length, flags) }
        let u = exchanges[xi].upstream
        guard u >= 0 else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        let ui = Int(u)
        var n = 0
        var state = exchanges[xi].response
        var failed = false
        while n < length && !state.done {
            let h = socks[ui].inHead
            if h < 0 { break }
            let buf = buffers.bytes(h)
            guard let base = buf.baseAddress, buf.count > 0 else { popInput(u); continue }
            switch state.mode {
            case .none:
                state.done = true
            case .length:
                let take = Int(min(UInt64(min(buf.count, length - n)), state.remaining))
                (dst + n).copyMemory(from: base, byteCount: take)
                n += take
                state.remaining -= UInt64(take)
                consumeInput(u, take)
                if state.remaining == 0 { state.done = true }
            case .untilClose:
                let take = min(buf.count, length - n)
                (dst + n).copyMemory(from: base, byteCount: take)
                n += take
                consumeInput(u, take)
            case .chunked:
                // The decoder sees no more than fits, so a payload slice never overruns `dst`.
                var index = 0
                var stop = false
                while !stop && n < length {
                    let window = UnsafeRawBufferPointer(rebasing: buf[0..<min(buf.count, index + (length - n))])
                    switch state.decoder.step(window, at: index) {
                    case .data(let a, let b):
                        (dst + n).copyMemory(from: base + a, byteCount: b - a)
                        n += b - a
                        index = b
                    case .framing(let e): index = e
                    case .needMore: stop = true
                    case .done(let e): index = e; state.done = true; stop = true
                    case .error: failed = true; stop = true
                    }
                }
                consumeInput(u, index)
            }
            if failed { break }
        }
        exchanges[xi].response = state
        exchanges[xi].responseBytes &+= UInt64(n)
        if failed {
            stats.bump(stats.upstreamErrors)
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        if !state.done && socks[ui].eof && socks[ui].inHead < 0 {
            if state.mode == .untilClose { exchanges[xi].response.done = true }
            else {
                // The upstream died mid-body: the stream is reset, the rest goes on.
                stats.bump(stats.upstreamErrors)
                return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
            }
        }
        if exchanges[xi].response.done {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            t.streams[xi].responseSent = true
            h2FinishUpstream(x)
            return n
        }
        if !socks[ui].closing {
            updateRecv(u)
            scheduleTimer(u, .upstreamBody, afterMs: Int64(listenerSettings(exchanges[xi].client).bodyTimeoutMs))
        }
        if n == 0 {
            t.streams[xi].deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return n
    }

    /// The whole response came from the upstream: it goes back to the pool (or closes).
    func h2FinishUpstream(_ x: Int32) {
        let xi = Int(x)
        exchanges[xi].responseDone = true
        let u = exchanges[xi].upstream
        guard u >= 0 else { return }
        exchanges[xi].upstream = -1
        socks[Int(u)].exchange = -1
        socks[Int(u)].peer = -1
        let ui = Int(u)
        let reusable = exchanges[xi].upstreamReusable && exchanges[xi].request.done && http2.streams[xi].requestEnded
            && socks[ui].inHead < 0 && !socks[ui].eof && socks[ui].segCount == 0 && !socks[ui].sendInFlight
        if reusable { poolRelease(u) } else { closeSock(u) }
    }

    // MARK: Local answers

    func h2RespondDirect(_ x: Int32, _ route: CompiledRoute) {
        let xi = Int(x)
        let c = exchanges[xi].client
        guard let s = http2.conns[Int(c)].session else { return }
        // The compiled direct head is HTTP/1.1 text; its fields are read back with the response parser.
        let d = buffers.takeHead()
        if d < 0 { h2Reset(x, NGHTTP2_INTERNAL_ERROR.rawValue); return }
        defer { buffers.release(d) }
        var w = HeadWriter(buffers.pointer(d), capacity: Int(buffers.capacity(d)))
        w.append(route.directHead.buffer)
        w.append("\r\n")
        let text = UnsafeRawBufferPointer(start: buffers.pointer(d), count: w.count)
        var head = ResponseHead()
        guard !w.overflowed, case .complete = HTTP1Parser.parseResponse(text, limits: HTTP1Limits(maxHeaderBytes: max(w.count, 256)), requestMethod: exchanges[xi].method,
                                                     head: &head, headers: headerTable), let tb = text.baseAddress else {
            h2Reset(x, NGHTTP2_INTERNAL_ERROR.rawValue)
            return
        }
        var k = 0
        var used = 0
        guard let status = h2Digits(&used, UInt64(head.status)) else { return }
        h2Pair(&k, ":status", status.0, status.1)
        for f in 0..<head.headerCount {
            let field = headerTable[f]
            if h2IsHopByHop(field.kind) { continue }
            guard let lower = h2Lower(&used, UnsafeRawBufferPointer(rebasing: text[Int(field.name.offset)..<field.name.end])) else { return }
            h2Pair(&k, lower, Int(field.name.length), tb + Int(field.value.offset), Int(field.value.length))
        }
        let hasBody = exchanges[xi].method != .head && route.directBody.count > 0
        if hasBody {
            http2.streams[xi].localBody = route.directBody.base
            http2.streams[xi].localLength = route.directBody.count
        }
        exchanges[xi].phase = .local
        exchanges[xi].responseDone = true
        if !h2Submit(s, x, k, hasBody: hasBody) { h2Reset(x, NGHTTP2_INTERNAL_ERROR.rawValue) }
    }

    /// An error Edge answers itself: `<status>` with `x-edge-error: <cause>` and
    /// a one-line text body; a gRPC request gets HTTP 200 with `grpc-status` instead.
    func h2RespondError(_ x: Int32, _ status: UInt16, _ reason: StaticString, cause: StaticString?) {
        let xi = Int(x)
        let c = exchanges[xi].client
        guard let s = http2.conns[Int(c)].session else { return }
        if http2.streams[xi].responseSubmitted { h2Reset(x, NGHTTP2_INTERNAL_ERROR.rawValue); return }
        exchanges[xi].phase = .local
        exchanges[xi].responseDone = true
        var k = 0
        var used = 0
        if http2.streams[xi].grpc {
            // Trailers-only gRPC response (HTTP 200, status in the headers).
            h2Pair(&k, ":status", UnsafeRawPointer(StaticString("200").utf8Start), 3)
            h2Pair(&k, "content-type", UnsafeRawPointer(StaticString("application/grpc").utf8Start), 16)
            guard let code = h2Digits(&used, UInt64(Reactor.grpcStatus(status))) else { return }
            h2Pair(&k, "grpc-status", code.0, code.1)
            h2Pair(&k, "grpc-message", UnsafeRawPointer(reason.utf8Start), reason.utf8CodeUnitCount)
            if let cause { h2Pair(&k, "x-edge-error", UnsafeRawPointer(cause.utf8Start), cause.utf8CodeUnitCount) }
            if !h2Submit(s, x, k, hasBody: false) { h2Reset(x, NGHTTP2_INTERNAL_ERROR.rawValue) }
            return
        }
        let phrase = reasonPhrase(status)
        let bodyLength = phrase.utf8CodeUnitCount + 2 + reason.utf8CodeUnitCount + 1
        guard let st = h2Digits(&used, UInt64(status)), let len = h2Digits(&used, UInt64(bodyLength)) else { return }
        h2Pair(&k, ":status", st.0, st.1)
        h2Pair(&k, "content-type", UnsafeRawPointer(StaticString("text/plain").utf8Start), 10)
        h2Pair(&k, "content-length", len.0, len.1)
        if let cause { h2Pair(&k, "x-edge-error", UnsafeRawPointer(cause.utf8Start), cause.utf8CodeUnitCount) }
        var hasBody = false
        if exchanges[xi].method != .head {
            let d = buffers.takeHead()
            if d >= 0 {
                var w = HeadWriter(buffers.pointer(d), capacity: Int(buffers.capacity(d)))
                w.append(phrase); w.append(": "); w.append(reason); w.append("\n")
                if http2.streams[xi].localBuf >= 0 { buffers.release(http2.streams[xi].localBuf) }
                http2.streams[xi].localBuf = d
                http2.streams[xi].localBody = UnsafeRawPointer(buffers.pointer(d))
                http2.streams[xi].localLength = w.count
                http2.streams[xi].localOffset = 0
                hasBody = true
            }
        }
        if !h2Submit(s, x, k, hasBody: hasBody) { h2Reset(x, NGHTTP2_INTERNAL_ERROR.rawValue) }
    }

    /// HTTP status of an Edge error → gRPC status code (grpc/doc/http-grpc-status-mapping.md).
    static func grpcStatus(_ status: UInt16) -> Int {
        switch status {
        case 400: return 13       // INTERNAL
        case 401: return 16       // UNAUTHENTICATED
        case 403: return 7        // PERMISSION_DENIED
        case 404: return 12       // UNIMPLEMENTED
        case 408, 504: return 4   // DEADLINE_EXCEEDED
        case 413, 429, 431: return 8  // RESOURCE_EXHAUSTED
        case 502, 503: return 14  // UNAVAILABLE
        default: return 2         // UNKNOWN
        }
    }

    /// The stream failed: its upstream closes; an error answer if nothing was
    /// sent yet, else RST_STREAM (the connection and its other streams go on).
    func h2FailStream(_ x: Int32, _ status: UInt16, _ reason: StaticString, cause: StaticString?) {
        let xi = Int(x)
        h2ReleaseWindow(x)
        h2upDetach(x, cancel: true)
        let u = exchanges[xi].upstream
        if u >= 0 {
            exchanges[xi].upstream = -1
            socks[Int(u)].exchange = -1
            closeSock(u)
        }
        if http2.streams[xi].responseSubmitted { h2Reset(x, NGHTTP2_INTERNAL_ERROR.rawValue); return }
        h2RespondError(x, status, reason, cause: cause)
        // A client still sending a body it no longer needs to: stop it (RFC 9113 §8.1).
        if !http2.streams[xi].requestEnded {
            let c = exchanges[xi].client
            if let s = http2.conns[Int(c)].session {
                _ = nghttp2_submit_rst_stream(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), http2.streams[xi].id, NGHTTP2_NO_ERROR.rawValue)
            }
        }
    }

    func h2Reset(_ x: Int32, _ code: UInt32) {
        let c = exchanges[Int(x)].client
        guard let s = http2.conns[Int(c)].session else { return }
        _ = nghttp2_submit_rst_stream(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), http2.streams[Int(x)].id, code)
    }
}
