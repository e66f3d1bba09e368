import CNGHTTP2
import Glibc
import Protocols

/// Bytes waiting between two HTTP/2 sessions (request body towards the
/// upstream, response body towards the client): a chain of head buffers.
/// Each side is bounded by the other session's flow-control window.
struct H2Queue {
    var head: Int32 = -1
    var tail: Int32 = -1
    var bytes: Int = 0
}

/// A header block received from the upstream (response head or trailers):
/// bytes from the front of a head buffer, a 16-byte index entry per field from the back.
struct H2Fields {
    var buf: Int32 = -1
    var bytes: Int32 = 0
    var fields: Int32 = 0
    var overflow = false
}

/// The upstream HTTP/2 side of one exchange (kept in its `H2Stream`).
struct H2UpStream {
    /// Attached to a stream of upstream connection `conn` (stream `id`).
    var active = false
    /// The response comes from an upstream HTTP/2 stream (stays set after it closed).
    var viaH2 = false
    var conn: Int32 = -1
    var id: Int32 = -1
    var prev: Int32 = -1
    var next: Int32 = -1
    var teTrailers = false
    var grpcTimeoutMs: Int64 = 0
    /// When the stream fails with 504 / DEADLINE_EXCEEDED (0: none).
    var deadlineMs: Int64 = 0
    var req = H2Queue()
    var res = H2Queue()
    /// The upstream's data provider waits for request bytes.
    var reqDeferred = false
    var sentBody = 0
    var headDone = false
    /// END_STREAM received from the upstream.
    var ended = false
    /// Times the stream was refused unprocessed and sent again (at most 3).
    var retries: Int8 = 0
    var block = H2Fields()
    var trailers = H2Fields()
}

private let fieldEntry = 16

extension Reactor {
    /// Whether endpoint `e` of view `v` belongs to a `protocol: http2` cluster.
    @inline(__always) func h2upClusterOf(_ v: Int32, _ e: Int32) -> Bool {
        let view = views[Int(v)]
        guard e >= 0, Int(e) < view.endpoints.count else { return false }
        let c = Int(view.endpoints[Int(e)].cluster)
        return c >= 0 && c < view.clusters.count && view.clusters[c].http2
    }

    // MARK: Request

    /// An HTTP/2 stream routed to a `protocol: http2` cluster: the request head
    /// is rewritten as for HTTP/1.1 (same edits, forwarding fields), then sent
    /// as HEADERS on a pooled connection.
    func h2upRoute(_ c: Int32, _ x: Int32, _ head: inout RequestHead, _ buf: UnsafeRawBufferPointer, _ route: CompiledRoute) {
        let xi = Int(x)
        let saved = socks[Int(c)].exchange
        socks[Int(c)].exchange = x
        let written = writeRequestHead(to: c, client: c, &head, buf, route, detached: true)
        socks[Int(c)].exchange = saved
        guard written else {
            h2RespondError(x, 431, "request head too large after rewriting", cause: nil)
            return
        }
        exchanges[xi].phase = .proxying
        exchanges[xi].timeoutMs = h2StreamTimeoutMs(x, route)
        http2.streams[xi].up.viaH2 = true
        h2upSubmit(x)
    }

    /// Sends the request of exchange `x` (its rewritten head in `requestHeadBuf`)
    /// on a connection with a free stream. False (and the stream answered) on failure.
    @discardableResult
    func h2upSubmit(_ x: Int32) -> Bool {
        let xi = Int(x)
        let t = http2
        let c = exchanges[xi].client
        let u = h2upAcquire(exchanges[xi].view, exchanges[xi].countedEndpoint)
        guard u >= 0, let s = t.upConns[Int(u)].session else {
            h2RespondError(x, 502, "cannot open an upstream connection", cause: "upstream_connect_failed")
            return false
        }
        let id = exchanges[xi].requestHeadBuf
        guard id >= 0 else { h2RespondError(x, 502, "request head lost", cause: "upstream_connect_failed"); return false }
        let text = UnsafeRawBufferPointer(start: buffers.pointer(id), count: Int(exchanges[xi].requestHeadLength))
        var h = RequestHead()
        var scan = HeadScanState()
        guard let tb = text.baseAddress,
              case .complete = HTTP1Parser.parseRequest(text, limits: HTTP1Limits(maxRequestLine: text.count, maxHeaderBytes: text.count + 1, maxHeaderCount: HTTP2Tables.maxFields - 8),
                                                        state: &scan, head: &h, headers: headerTable) else {
            h2RespondError(x, 431, "request head too large after rewriting", cause: nil)
            return false
        }
        var k = 0
        var used = 0
        h2Pair(&k, ":method", tb + Int(h.method.offset), Int(h.method.length))
        h2Pair(&k, ":scheme", UnsafeRawPointer(StaticString("http").utf8Start), 4)
        if h.hostIndex >= 0 {
            let v = headerTable[h.hostIndex].value
            h2Pair(&k, ":authority", tb + Int(v.offset), Int(v.length))
        }
        h2Pair(&k, ":path", tb + Int(h.target.offset), Int(h.target.length))
        for f in 0..<h.headerCount {
            let field = headerTable[f]
            switch field.kind {
            case .host, .connection, .keepAlive, .proxyConnection, .te, .trailer, .upgrade, .transferEncoding: continue
            default: break
            }
            guard let lower = h2Lower(&used, UnsafeRawBufferPointer(rebasing: text[Int(field.name.offset)..<field.name.end])) else {
                h2RespondError(x, 431, "request head too large after rewriting", cause: nil)
                return false
            }
            h2Pair(&k, lower, Int(field.name.length), tb + Int(field.value.offset), Int(field.value.length))
        }
        // gRPC needs `te: trailers` end to end (its proxies detect trailer-dropping hops by it).
        if t.streams[xi].up.teTrailers || t.streams[xi].grpc { h2Pair(&k, "te", UnsafeRawPointer(StaticString("trailers").utf8Start), 8) }
        let bodyComing = !(t.streams[xi].requestEnded && t.streams[xi].up.req.bytes == 0)
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Reactor.h2upRequestReader)
        let sid = bodyComing
            ? nghttp2_submit_request(s, nil, t.nv, k, &provider, UnsafeMutableRawPointer(bitPattern: xi + 1))
            : nghttp2_submit_request(s, nil, t.nv, k, nil, UnsafeMutableRawPointer(bitPattern: xi + 1))
        if sid < 0 {
            h2RespondError(x, 502, "upstream HTTP/2 session refused the request", cause: "upstream_reset")
            return false
        }
        // Link onto the connection.
        t.streams[xi].up.active = true
        t.streams[xi].up.conn = u
        t.streams[xi].up.id = sid
        t.streams[xi].up.prev = -1
        t.streams[xi].up.next = t.upConns[Int(u)].firstStream
        if t.upConns[Int(u)].firstStream >= 0 { t.streams[Int(t.upConns[Int(u)].firstStream)].up.prev = x }
        t.upConns[Int(u)].firstStream = x
        t.upConns[Int(u)].streams += 1
        let timeout = Int64(exchanges[xi].timeoutMs)
        t.streams[xi].up.deadlineMs = timeout > 0 ? nowMs + timeout : 0
        stats.http2.upstreamStreams.wrappingIncrement(ordering: .relaxed)
        _ = c
        h2upFlush(u)
        h2upArmTimer(u)
        return true
    }

    /// Takes stream `x` off its upstream connection (no RST; see `h2upDetach`).
    func h2upUnlink(_ x: Int32) {
        let xi = Int(x)
        let t = http2
        guard t.streams[xi].up.active else { return }
        let u = t.streams[xi].up.conn
        let prev = t.streams[xi].up.prev, next = t.streams[xi].up.next
        if prev >= 0 { t.streams[Int(prev)].up.next = next } else if u >= 0 && t.upConns[Int(u)].firstStream == x { t.upConns[Int(u)].firstStream = next }
        if next >= 0 { t.streams[Int(next)].up.prev = prev }
        if u >= 0 { t.upConns[Int(u)].streams -= 1 }
        t.streams[xi].up.active = false
        t.streams[xi].up.conn = -1
        t.streams[xi].up.prev = -1
        t.streams[xi].up.next = -1
        if u >= 0, let s = t.upConns[Int(u)].session {
            _ = nghttp2_session_set_stream_user_data(s, t.streams[xi].up.id, nil)
            // Response bytes still queued here leave the connection window now.
            if t.streams[xi].up.res.bytes > 0 { _ = nghttp2_session_consume_connection(s, t.streams[xi].up.res.bytes) }
        }
    }

    /// The downstream side gave up on stream `x` (error answer, client reset):
    /// the upstream stream is cancelled and the connection goes on.
    func h2upDetach(_ x: Int32, cancel: Bool) {
        let xi = Int(x)
        let t = http2
        guard t.streams[xi].up.active else { return }
        let u = t.streams[xi].up.conn
        let sid = t.streams[xi].up.id
        let ended = t.streams[xi].up.ended
        h2upUnlink(x)
        guard u >= 0, let s = t.upConns[Int(u)].session else { return }
        if cancel && !ended { _ = nghttp2_submit_rst_stream(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), sid, NGHTTP2_CANCEL.rawValue) }
        h2upFlush(u)
        if !t.upConns[Int(u)].busy { h2upArmTimer(u) }
    }

    /// Stream `x` ends downstream: detach and free what it still holds.
    func h2upStreamEnds(_ x: Int32) {
        let xi = Int(x)
        let t = http2
        guard t.streams[xi].up.viaH2 || t.streams[xi].up.active else { return }
        h2upDetach(x, cancel: true)
        h2qRelease(&t.streams[xi].up.req)
        h2qRelease(&t.streams[xi].up.res)
        h2fRelease(&t.streams[xi].up.block)
        h2fRelease(&t.streams[xi].up.trailers)
    }

    /// DATA from the client for an HTTP/2 upstream: queued until the
    /// upstream's provider takes it (only then it leaves the client's window).
    func h2upRequestData(_ x: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
        let xi = Int(x)
        let t = http2
        let c = exchanges[xi].client
        guard data.count > 0, let ds = t.conns[Int(c)].session else { return 0 }
        if !h2qAppend(&t.streams[xi].up.req, data) {
            _ = nghttp2_session_consume(ds, t.streams[xi].id, data.count)
            h2FailStream(x, 503, "no buffer for the request body", cause: "overloaded")
            return 0
        }
        t.streams[xi].unconsumed += data.count
        h2upResumeRequest(x)
        return 0
    }

    func h2upRequestEnded(_ x: Int32) { h2upResumeRequest(x) }

    private func h2upResumeRequest(_ x: Int32) {
        let xi = Int(x)
        let t = http2
        guard t.streams[xi].up.active, t.streams[xi].up.reqDeferred else { return }
        let u = t.streams[xi].up.conn
        guard u >= 0, let s = t.upConns[Int(u)].session else { return }
        t.streams[xi].up.reqDeferred = false
        _ = nghttp2_session_resume_data(s, t.streams[xi].up.id)
        h2upFlush(u)
    }

    static let h2upRequestReader: nghttp2_data_source_read_callback = { session, sid, buf, length, flags, _, ud in
        guard let session, let buf, let flags, let (r, _) = H2Session.context(ud) else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
        guard let p = nghttp2_session_get_stream_user_data(session, sid) else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        return r.h2upReadRequest(Int32(truncatingIfNeeded: Int(bitPattern: p) - 1), UnsafeMutableRawPointer(buf), length, flags)
    }

    func h2upReadRequest(_ x: Int32, _ dst: UnsafeMutableRawPointer, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        let xi = Int(x)
        let t = http2
        let n = h2qTake(&t.streams[xi].up.req, dst, length)
        if n > 0 {
            let c = exchanges[xi].client
            if let ds = t.conns[Int(c)].session {
                _ = nghttp2_session_consume(ds, t.streams[xi].id, n)
                t.streams[xi].unconsumed = max(0, t.streams[xi].unconsumed - n)
                h2KickDown(c)
            }
            t.streams[xi].up.sentBody += n
        }
        if t.streams[xi].up.req.bytes == 0 && t.streams[xi].requestEnded {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return n
        }
        if n == 0 {
            t.streams[xi].up.reqDeferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return n
    }

    // MARK: Response (upstream session callbacks)

    @inline(__always) private func h2upExchange(_ u: Int32, _ sid: Int32) -> Int32 {
        guard let s = http2.upConns[Int(u)].session, let p = nghttp2_session_get_stream_user_data(s, sid) else { return -1 }
        return Int32(truncatingIfNeeded: Int(bitPattern: p) - 1)
    }

    func h2upBeginHeaders(_ u: Int32, _ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
        let x = h2upExchange(u, frame.pointee.hd.stream_id)
        guard x >= 0 else { return 0 }
        h2fRelease(&http2.streams[Int(x)].up.block)
        return 0
    }

    func h2upHeader(_ u: Int32, _ frame: UnsafePointer<nghttp2_frame>, _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Int32 {
        let x = h2upExchange(u, frame.pointee.hd.stream_id)
        guard x >= 0 else { return 0 }
        h2fAdd(&http2.streams[Int(x)].up.block, name, value)
        return 0
    }

    func h2upFrameReceived(_ u: Int32, _ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let ui = Int(u)
        let t = http2
        let type = UInt32(frame.pointee.hd.type)
        let flags = UInt32(frame.pointee.hd.flags)
        let endStream = flags & NGHTTP2_FLAG_END_STREAM.rawValue != 0
        switch type {
        case NGHTTP2_SETTINGS.rawValue:
            if flags & NGHTTP2_FLAG_ACK.rawValue == 0 { t.upConns[ui].settingsSeen = true }
        case NGHTTP2_GOAWAY.rawValue:
            // Streams above its last id are closed by nghttp2 (REFUSED_STREAM → sent again elsewhere).
            t.upConns[ui].goingAway = true
            stats.http2.upstreamGoaways.wrappingIncrement(ordering: .relaxed)
        case NGHTTP2_HEADERS.rawValue:
            let x = h2upExchange(u, frame.pointee.hd.stream_id)
            guard x >= 0 else { return 0 }
            h2upHeaders(x, endStream: endStream)
        case NGHTTP2_DATA.rawValue:
            guard endStream else { return 0 }
            let x = h2upExchange(u, frame.pointee.hd.stream_id)
            guard x >= 0 else { return 0 }
            http2.streams[Int(x)].up.ended = true
            h2upResumeResponse(x)
        default:
            break
        }
        return 0
    }

    /// A complete header block from the upstream: the response head (interim
    /// 1xx dropped) submitted downstream, or the trailers kept for after the body.
    private func h2upHeaders(_ x: Int32, endStream: Bool) {
        let xi = Int(x)
        let t = http2
        let c = exchanges[xi].client
        if t.streams[xi].up.headDone {
            h2fRelease(&t.streams[xi].up.trailers)
            t.streams[xi].up.trailers = t.streams[xi].up.block
            t.streams[xi].up.block = H2Fields()
            t.streams[xi].up.ended = true
            h2upResumeResponse(x)
            return
        }
        let block = t.streams[xi].up.block
        guard block.buf >= 0, !block.overflow, block.fields > 0, let ds = t.conns[Int(c)].session else {
            stats.bump(stats.upstreamErrors)
            h2FailStream(x, 502, "response head too large", cause: "upstream_bad_response")
            h2KickDown(c)
            return
        }
        let first = h2fField(block, 0)
        if first.nameLength == 7 && first.valueLength == 3 && first.value.load(as: UInt8.self) == UInt8(ascii: "1") {
            h2fRelease(&t.streams[xi].up.block)
            return
        }
        var k = 0
        for f in 0..<Int(block.fields) {
            let e = h2fField(block, f)
            h2Pair(&k, e.name, e.nameLength, e.value, e.valueLength)
        }
        h2Pair(&k, "via", UnsafeRawPointer(StaticString("2 edge").utf8Start), 6)
        t.streams[xi].up.headDone = true
        exchanges[xi].responseHeadDone = true
        // Past the head no retry can happen: the rewritten request head goes.
        if exchanges[xi].requestHeadBuf >= 0 { buffers.release(exchanges[xi].requestHeadBuf); exchanges[xi].requestHeadBuf = -1 }
        if endStream { t.streams[xi].up.ended = true }
        // The route timeout covers the wait for the head; a grpc-timeout the whole call.
        let g = t.streams[xi].up.grpcTimeoutMs
        t.streams[xi].up.deadlineMs = g > 0 ? exchanges[xi].startedMs + g : 0
        if !h2Submit(ds, x, k, hasBody: !endStream) { h2Reset(x, NGHTTP2_INTERNAL_ERROR.rawValue) }
        if endStream { exchanges[xi].responseDone = true }
        h2fRelease(&t.streams[xi].up.block)
        h2KickDown(c)
    }

    func h2upDataChunk(_ u: Int32, _ sid: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
        let t = http2
        guard let s = t.upConns[Int(u)].session else { return 0 }
        let x = h2upExchange(u, sid)
        guard x >= 0 else {
            if nghttp2_session_consume(s, sid, data.count) != 0 { _ = nghttp2_session_consume_connection(s, data.count) }
            return 0
        }
        let xi = Int(x)
        if !h2qAppend(&t.streams[xi].up.res, data) {
            _ = nghttp2_session_consume(s, sid, data.count)
            h2FailStream(x, 502, "no buffer for the response body", cause: "overloaded")
            h2KickDown(exchanges[xi].client)
            return 0
        }
        h2upResumeResponse(x)
        return 0
    }

    private func h2upResumeResponse(_ x: Int32) {
        let xi = Int(x)
        let t = http2
        let c = exchanges[xi].client
        if t.streams[xi].deferred, let ds = t.conns[Int(c)].session {
            t.streams[xi].deferred = false
            _ = nghttp2_session_resume_data(ds, t.streams[xi].id)
        }
        h2KickDown(c)
    }

    func h2upStreamClosed(_ u: Int32, _ sid: Int32, _ code: UInt32) {
        let x = h2upExchange(u, sid)
        guard x >= 0 else { return }
        let xi = Int(x)
        let t = http2
        let c = exchanges[xi].client
        h2upUnlink(x)
        if t.streams[xi].up.ended { h2KickDown(c); return }
        // REFUSED_STREAM guarantees the upstream did not process it (RFC 9113 §8.7); so does a stream
        // above a GOAWAY's last id. Common on a fresh connection whose SETTINGS had not arrived yet.
        if code == NGHTTP2_REFUSED_STREAM.rawValue && !t.streams[xi].up.headDone && t.streams[xi].up.sentBody == 0 && t.streams[xi].up.retries < 3 {
            t.streams[xi].up.retries += 1
            t.streams[xi].up.reqDeferred = false
            if h2upSubmit(x) { return }
            h2KickDown(c)
            return
        }
        stats.bump(stats.upstreamErrors)
        if code == NGHTTP2_REFUSED_STREAM.rawValue { h2FailStream(x, 503, "upstream refused the stream", cause: "upstream_refused") }
        else { h2FailStream(x, 502, "upstream reset the stream", cause: "upstream_reset") }
        h2KickDown(c)
    }

    /// The downstream provider of a stream answered by an HTTP/2 upstream:
    /// queued body bytes, then EOF, with the upstream's trailers if any.
    func h2upReadBody(_ x: Int32, _ dst: UnsafeMutableRawPointer, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        let xi = Int(x)
        let t = http2
        let n = h2qTake(&t.streams[xi].up.res, dst, length)
        if n > 0 {
            exchanges[xi].responseBytes &+= UInt64(n)
            if t.streams[xi].up.active, t.streams[xi].up.conn >= 0, let s = t.upConns[Int(t.streams[xi].up.conn)].session {
                _ = nghttp2_session_consume(s, t.streams[xi].up.id, n)
                h2upFlush(t.streams[xi].up.conn)
            }
        }
        if t.streams[xi].up.res.bytes > 0 { return n }
        if t.streams[xi].up.ended {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            t.streams[xi].responseSent = true
            exchanges[xi].responseDone = true
            let tr = t.streams[xi].up.trailers
            if tr.buf >= 0 && tr.fields > 0 && !tr.overflow, let ds = t.conns[Int(exchanges[xi].client)].session {
                var k = 0
                for f in 0..<Int(tr.fields) {
                    let e = h2fField(tr, f)
                    h2Pair(&k, e.name, e.nameLength, e.value, e.valueLength)
                }
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                if nghttp2_submit_trailer(ds, t.streams[xi].id, t.nv, k) != 0 { flags.pointee &= ~NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue }
            }
            return n
        }
        // The upstream stream went away mid-body: reset this one.
        if !t.streams[xi].up.active { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        if n == 0 {
            t.streams[xi].deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return n
    }

    // MARK: Queues and field blocks

    func h2qAppend(_ q: inout H2Queue, _ data: UnsafeRawBufferPointer) -> Bool {
        guard let src = data.baseAddress else { return true }
        var off = 0
        while off < data.count {
            var id = q.tail
            if id < 0 || buffers.end[Int(id)] >= buffers.capacity(id) {
                let n = buffers.takeHead()
                if n < 0 { return false }
                if id >= 0 { buffers.next[Int(id)] = n } else { q.head = n }
                q.tail = n
                id = n
            }
            let take = min(Int(buffers.capacity(id) - buffers.end[Int(id)]), data.count - off)
            (buffers.pointer(id) + Int(buffers.end[Int(id)])).copyMemory(from: src + off, byteCount: take)
            buffers.end[Int(id)] += Int32(take)
            off += take
            q.bytes += take
        }
        return true
    }

    func h2qTake(_ q: inout H2Queue, _ dst: UnsafeMutableRawPointer, _ max: Int) -> Int {
        var n = 0
        while n < max, q.head >= 0 {
            let id = q.head
            let avail = Int(buffers.end[Int(id)] - buffers.start[Int(id)])
            let take = min(avail, max - n)
            if take > 0 {
                (dst + n).copyMemory(from: buffers.pointer(id) + Int(buffers.start[Int(id)]), byteCount: take)
                buffers.start[Int(id)] += Int32(take)
                n += take
            }
            if buffers.start[Int(id)] < buffers.end[Int(id)] { break }
            if id == q.tail {
                buffers.start[Int(id)] = 0
                buffers.end[Int(id)] = 0
                break
            }
            q.head = buffers.next[Int(id)]
            buffers.release(id)
        }
        q.bytes -= n
        return n
    }

    func h2qRelease(_ q: inout H2Queue) {
        var id = q.head
        while id >= 0 {
            let next = buffers.next[Int(id)]
            buffers.release(id)
            if id == q.tail { break }
            id = next
        }
        q = H2Queue()
    }

    func h2fAdd(_ f: inout H2Fields, _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        if f.overflow { return }
        if f.buf < 0 {
            f.buf = buffers.takeHead()
            if f.buf < 0 { f.overflow = true; return }
        }
        let cap = Int(buffers.capacity(f.buf))
        let used = Int(f.bytes)
        let entries = Int(f.fields)
        guard used + name.count + value.count + (entries + 1) * fieldEntry <= cap, entries < HTTP2Tables.maxFields - 2 else {
            f.overflow = true
            return
        }
        let base = buffers.pointer(f.buf)
        if let n = name.baseAddress { (base + used).copyMemory(from: n, byteCount: name.count) }
        if let v = value.baseAddress { (base + used + name.count).copyMemory(from: v, byteCount: value.count) }
        let e = base + cap - (entries + 1) * fieldEntry
        e.storeBytes(of: Int32(used), toByteOffset: 0, as: Int32.self)
        e.storeBytes(of: Int32(name.count), toByteOffset: 4, as: Int32.self)
        e.storeBytes(of: Int32(used + name.count), toByteOffset: 8, as: Int32.self)
        e.storeBytes(of: Int32(value.count), toByteOffset: 12, as: Int32.self)
        f.bytes = Int32(used + name.count + value.count)
        f.fields = Int32(entries + 1)
    }

    @inline(__always) func h2fField(_ f: H2Fields, _ k: Int) -> (name: UnsafeRawPointer, nameLength: Int, value: UnsafeRawPointer, valueLength: Int) {
        let base = UnsafeRawPointer(buffers.pointer(f.buf))
        let e = base + Int(buffers.capacity(f.buf)) - (k + 1) * fieldEntry
        return (base + Int(e.load(fromByteOffset: 0, as: Int32.self)), Int(e.load(fromByteOffset: 4, as: Int32.self)),
                base + Int(e.load(fromByteOffset: 8, as: Int32.self)), Int(e.load(fromByteOffset: 12, as: Int32.self)))
    }

    func h2fRelease(_ f: inout H2Fields) {
        if f.buf >= 0 { buffers.release(f.buf) }
        f = H2Fields()
    }
}
