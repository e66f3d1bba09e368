import CNGHTTP2
import Glibc
import Protocols

/// One HTTP/2 stream beside its exchange (same index): the nghttp2 stream id,
/// its request body accounting and its response progress.
struct H2Stream {
    var id: Int32 = 0
    var client: Int32 = -1
    var prev: Int32 = -1
    var next: Int32 = -1
    /// END_STREAM seen from the client.
    var requestEnded = false
    /// The upstream request is chunked (no content-length from the client).
    var requestChunked = false
    var received: UInt64 = 0
    var declaredLength: Int64 = -1
    /// DATA bytes received but not yet handed on upstream (still in nghttp2's windows).
    var unconsumed: Int = 0
    var responseSubmitted = false
    /// All response bytes went to nghttp2 (EOF given to the data provider).
    var responseSent = false
    var deferred = false
    /// A local answer's body (direct response or error text) and how much went out.
    var localBody: UnsafeRawPointer? = nil
    var localLength: Int = 0
    var localOffset: Int = 0
    var localBuf: Int32 = -1
    /// `content-type: application/grpc*`: Edge's own errors become gRPC statuses.
    var grpc = false
    /// Upstream HTTP/2 side (H2UpstreamStream.swift).
    var up = H2UpStream()
}

/// The header block being received on a connection (at most one at a time:
/// RFC 9113 §4.3 forbids interleaving). Fields are copied into a head buffer:
/// bytes from the front, a 16-byte index entry per field from the back.
struct H2Block {
    var buf: Int32 = -1
    var exchange: Int32 = -1
    var trailers = false
    var bytes: Int32 = 0
    var fields: Int32 = 0
    var listBytes: Int = 0
    var method = ByteRange.empty, scheme = ByteRange.empty, authority = ByteRange.empty, path = ByteRange.empty
    var host = ByteRange.empty
    var hasProtocol = false
    var contentLength: Int64 = -1
    var grpc = false
    /// `te: trailers` seen (kept towards HTTP/2 upstreams); `grpc-timeout` in ms (0: none).
    var teTrailers = false
    var grpcTimeoutMs: Int64 = 0
    /// First rule the block broke (nil: fine) and whether it outgrew max_header_list.
    var malformed: StaticString? = nil
    var tooLarge = false
}

private let indexEntry = 16

extension Reactor {
    /// The tables, created on the first HTTP/2 connection of this worker.
    var http2: HTTP2Tables {
        if let t = http2Storage { return t }
        let t = HTTP2Tables(capacity: Int(capacity))
        http2Storage = t
        return t
    }

    @inline(__always) func h2Exchange(_ s: OpaquePointer, _ streamId: Int32) -> Int32 {
        guard let p = nghttp2_session_get_stream_user_data(s, streamId) else { return -1 }
        return Int32(truncatingIfNeeded: Int(bitPattern: p) - 1)
    }

    // MARK: Header blocks

    func h2BeginHeaders(_ c: Int32, _ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let i = Int(c)
        let t = http2
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), let s = t.conns[i].session else { return 0 }
        let sid = frame.pointee.hd.stream_id
        var block = H2Block()
        if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
            guard let x = allocExchangeKeepingFocus(c) else {
                _ = nghttp2_submit_rst_stream(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), sid, NGHTTP2_REFUSED_STREAM.rawValue)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
            }
            exchanges[Int(x)].codec = .h2
            t.streams[Int(x)] = H2Stream()
            t.streams[Int(x)].id = sid
            t.streams[Int(x)].client = c
            h2LinkStream(c, x)
            _ = nghttp2_session_set_stream_user_data(s, sid, UnsafeMutableRawPointer(bitPattern: Int(x) + 1))
            block.exchange = x
            stats.http2.streams.wrappingIncrement(ordering: .relaxed)
        } else {
            block.exchange = h2Exchange(s, sid)
            block.trailers = true
            if block.exchange < 0 { return 0 }
        }
        if t.conns[i].block.buf >= 0 { buffers.release(t.conns[i].block.buf) }
        block.buf = buffers.takeHead()
        if block.buf < 0 {
            t.conns[i].block = H2Block()
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
        }
        t.conns[i].block = block
        return 0
    }

    /// One decoded field: checked against the translation rules and copied.
    func h2Header(_ c: Int32, _ frame: UnsafePointer<nghttp2_frame>, _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Int32 {
        let i = Int(c)
        let t = http2
        let b = t.conns[i].block.buf
        guard b >= 0 else { return 0 }
        // HPACK bomb: decoded size counts indexed fields too (RFC 9113 §6.5.2 accounting).
        t.conns[i].block.listBytes += name.count + value.count + 32
        let limit = Int(t.conns[i].settings.maxHeaderList)
        if t.conns[i].block.listBytes > limit {
            if !t.conns[i].block.tooLarge {
                t.conns[i].block.tooLarge = true
                stats.http2.headerListTooLarge.wrappingIncrement(ordering: .relaxed)
            }
            // Far beyond what was advertised: the client ignores SETTINGS; end it.
            if t.conns[i].block.listBytes > limit * 4 {
                h2GoAway(c, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
            }
            return 0
        }
        if t.conns[i].block.malformed != nil { return 0 }
        let verdict = H2FieldRules.classify(name: name, value: value)
        if t.conns[i].block.trailers {
            switch verdict {
            case .regular, .cookie: break
            case .malformed(let why): t.conns[i].block.malformed = why; return 0
            default: t.conns[i].block.malformed = "field not allowed in trailers"; return 0
            }
        }
        // Copy the bytes (name, value) and an index entry at the back.
        let cap = Int(buffers.capacity(b))
        let used = Int(t.conns[i].block.bytes)
        let entries = Int(t.conns[i].block.fields)
        guard used + name.count + value.count + (entries + 1) * indexEntry <= cap else {
            t.conns[i].block.tooLarge = true
            return 0
        }
        let base = buffers.pointer(b)
        if let n = name.baseAddress { (base + used).copyMemory(from: n, byteCount: name.count) }
        if let v = value.baseAddress { (base + used + name.count).copyMemory(from: v, byteCount: value.count) }
        let valueRange = ByteRange(offset: Int32(used + name.count), length: Int32(value.count))
        t.conns[i].block.bytes = Int32(used + name.count + value.count)
        switch verdict {
        case .malformed(let why):
            t.conns[i].block.malformed = why
            return 0
        case .pseudo(let p):
            switch p {
            case .method: t.conns[i].block.method = valueRange
            case .scheme: t.conns[i].block.scheme = valueRange
            case .authority: t.conns[i].block.authority = valueRange
            case .path: t.conns[i].block.path = valueRange
            case .protocol: t.conns[i].block.hasProtocol = true
            }
            return 0
        case .host:
            if t.conns[i].block.host.length > 0 || t.conns[i].block.host.offset > 0 { t.conns[i].block.malformed = "more than one host"; return 0 }
            t.conns[i].block.host = valueRange
            return 0
        case .contentLength:
            let n = Int64(H2FieldRules.parseContentLength(value) ?? 0)
            if t.conns[i].block.contentLength >= 0 && t.conns[i].block.contentLength != n {
                t.conns[i].block.malformed = "conflicting content-length"
            }
            t.conns[i].block.contentLength = n
            return 0
        case .te:
            t.conns[i].block.teTrailers = true
            return 0
        case .regular, .cookie:
            if name.count == 12 && value.count >= 16 && H2FieldRules.equalsIgnoringCase(name, UnsafeRawBufferPointer(start: StaticString("content-type").utf8Start, count: 12)) {
                let g: StaticString = "application/grpc"
                t.conns[i].block.grpc = H2FieldRules.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: value[0..<16]), UnsafeRawBufferPointer(start: g.utf8Start, count: 16))
            }
            if name.count == 12 && GRPCTimeout.isName(name) { t.conns[i].block.grpcTimeoutMs = GRPCTimeout.parseMs(value) ?? 0 }
            let e = base + cap - (entries + 1) * indexEntry
            e.storeBytes(of: Int32(used), toByteOffset: 0, as: Int32.self)
            e.storeBytes(of: Int32(name.count), toByteOffset: 4, as: Int32.self)
            e.storeBytes(of: valueRange.offset, toByteOffset: 8, as: Int32.self)
            e.storeBytes(of: valueRange.length | (verdict.isCookie ? Int32(1 << 30) : 0), toByteOffset: 12, as: Int32.self)
            t.conns[i].block.fields = Int32(entries + 1)
            return 0
        }
    }

    /// Field `k` of the block: name and value ranges into its buffer, and whether it is a cookie.
    @inline(__always) func h2BlockField(_ block: H2Block, _ k: Int) -> (name: ByteRange, value: ByteRange, cookie: Bool) {
        let cap = Int(buffers.capacity(block.buf))
        let e = UnsafeRawPointer(buffers.pointer(block.buf) + cap - (k + 1) * indexEntry)
        let last = e.load(fromByteOffset: 12, as: Int32.self)
        return (ByteRange(offset: e.load(fromByteOffset: 0, as: Int32.self), length: e.load(fromByteOffset: 4, as: Int32.self)),
                ByteRange(offset: e.load(fromByteOffset: 8, as: Int32.self), length: last & 0x3FFF_FFFF),
                last & (1 << 30) != 0)
    }

    // MARK: Frames

    func h2FrameReceived(_ c: Int32, _ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let i = Int(c)
        let t = http2
        guard let s = t.conns[i].session else { return 0 }
        let type = UInt32(frame.pointee.hd.type)
        let flags = UInt32(frame.pointee.hd.flags)
        let sid = frame.pointee.hd.stream_id
        let endStream = flags & NGHTTP2_FLAG_END_STREAM.rawValue != 0
        switch type {
        case NGHTTP2_HEADERS.rawValue:
            t.conns[i].progressMs = nowMs
            let block = t.conns[i].block
            t.conns[i].block = H2Block()
            defer { if block.buf >= 0 { buffers.release(block.buf) } }
            guard block.exchange >= 0, block.buf >= 0 else { return 0 }
            if block.trailers {
                h2RequestTrailers(c, block, endStream: endStream)
            } else {
                h2StartStream(c, s, block, endStream: endStream)
            }
        case NGHTTP2_DATA.rawValue:
            t.conns[i].progressMs = nowMs
            if frame.pointee.hd.length == 0 && !endStream { h2Glitch(c) }
            if endStream {
                let x = h2Exchange(s, sid)
                if x >= 0 { h2RequestEnded(c, x, trailers: nil) }
            }
        case NGHTTP2_PING.rawValue:
            if flags & NGHTTP2_FLAG_ACK.rawValue == 0 { h2Glitch(c) }
        case NGHTTP2_SETTINGS.rawValue:
            if flags & NGHTTP2_FLAG_ACK.rawValue == 0 { h2Glitch(c) }
        case NGHTTP2_PRIORITY.rawValue:
            h2Glitch(c)
        case NGHTTP2_WINDOW_UPDATE.rawValue:
            t.conns[i].progressMs = nowMs
        default:
            break
        }
        return 0
    }

    /// A complete request header block: checked, written as an HTTP/1.1 head,
    /// re-parsed by the strict HTTP/1.1 parser, then routed like any request.
    private func h2StartStream(_ c: Int32, _ s: OpaquePointer, _ block: H2Block, endStream: Bool) {
        let x = Int(block.exchange)
        let t = http2
        t.streams[x].requestEnded = endStream
        t.streams[x].grpc = block.grpc
        t.streams[x].up.teTrailers = block.teTrailers
        t.streams[x].up.grpcTimeoutMs = block.grpcTimeoutMs
        if let why = block.malformed {
            _ = why
            stats.http2.malformed.wrappingIncrement(ordering: .relaxed)
            stats.bump(stats.clientErrors)
            _ = nghttp2_submit_rst_stream(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), t.streams[x].id, NGHTTP2_PROTOCOL_ERROR.rawValue)
            return
        }
        h2BeginExchange(c, x)
        if block.tooLarge {
            stats.bump(stats.clientErrors)
            h2RespondError(Int32(x), 431, "request header list larger than max_header_list", cause: nil)
            return
        }
        if block.hasProtocol || block.path.length == 0 || block.method.length == 0 {
            // CONNECT (plain or extended, RFC 8441) is not offered on HTTP/2 yet.
            h2RespondError(Int32(x), 501, "CONNECT over HTTP/2 is not supported", cause: nil)
            return
        }
        let bb = UnsafeRawBufferPointer(start: buffers.pointer(block.buf), count: Int(block.bytes))
        var authority = block.authority
        if authority.length == 0 { authority = block.host }
        else if block.host.length > 0 {
            let a = UnsafeRawBufferPointer(rebasing: bb[Int(block.authority.offset)..<Int(block.authority.offset + block.authority.length)])
            let h = UnsafeRawBufferPointer(rebasing: bb[Int(block.host.offset)..<Int(block.host.offset + block.host.length)])
            if !H2FieldRules.equalsIgnoringCase(a, h) {
                stats.http2.malformed.wrappingIncrement(ordering: .relaxed)
                h2RespondError(Int32(x), 400, "host differs from :authority", cause: nil)
                return
            }
        }
        t.streams[x].declaredLength = block.contentLength
        if endStream && block.contentLength > 0 {
            h2RespondError(Int32(x), 400, "content-length without a body", cause: nil)
            return
        }
        t.streams[x].requestChunked = !endStream && block.contentLength < 0
        // Compose the HTTP/1.1 head.
        let d = buffers.takeHead()
        if d < 0 { h2RespondError(Int32(x), 503, "no buffer for the request head", cause: "overloaded"); return }
        defer { buffers.release(d) }
        var w = HeadWriter(buffers.pointer(d), capacity: Int(buffers.capacity(d)))
        w.append(bb, range: block.method); w.appendByte(0x20)
        w.append(bb, range: block.path); w.append(" HTTP/1.1\r\nHost: ")
        w.append(bb, range: authority); w.append("\r\n")
        var cookies = 0
        for k in 0..<Int(block.fields) {
            let f = h2BlockField(block, k)
            if f.cookie { cookies += 1; continue }
            w.append(bb, range: f.name); w.append(": "); w.append(bb, range: f.value); w.append("\r\n")
        }
        // RFC 9113 §8.2.3: cookie fields are joined with "; " for HTTP/1.1.
        if cookies > 0 {
            w.append("cookie: ")
            var first = true
            for k in 0..<Int(block.fields) {
                let f = h2BlockField(block, k)
                if !f.cookie { continue }
                if !first { w.append("; ") }
                first = false
                w.append(bb, range: f.value)
            }
            w.append("\r\n")
        }
        if block.contentLength >= 0 { w.append("Content-Length: "); w.appendDecimal(UInt64(block.contentLength)); w.append("\r\n") }
        else if !endStream { w.append("Transfer-Encoding: chunked\r\n") }
        w.append("\r\n")
        if w.overflowed {
            h2RespondError(Int32(x), 431, "request head too large", cause: nil)
            return
        }
        let head1 = UnsafeRawBufferPointer(start: buffers.pointer(d), count: w.count)
        let listener = listenerSettings(c)
        var head = RequestHead()
        var scan = HeadScanState()
        switch HTTP1Parser.parseRequest(head1, limits: listener.limits, state: &scan, head: &head, headers: headerTable) {
        case .incomplete:
            h2RespondError(Int32(x), 431, "request head too large", cause: nil)
            return
        case .error(let e):
            stats.bump(stats.clientErrors)
            h2RespondError(Int32(x), e.status, e.reason, cause: nil)
            return
        case .complete:
            break
        }
        h2Route(c, Int32(x), &head, head1, listener)
    }

    /// The exchange joins the current snapshot (kept until the stream ends).
    private func h2BeginExchange(_ c: Int32, _ x: Int) {
        stats.bump(stats.requests)
        exchanges[x].startedMs = nowMs
        exchanges[x].clientProgressMs = nowMs
        exchanges[x].view = current
        exchanges[x].listener = acceptListener[Int(socks[Int(c)].acceptSlot)]
        exchanges[x].keepAlive = true
        exchanges[x].versionMinor = 1
        exchanges[x].phase = .local
        retainView(ViewID(raw: current))
    }

    private func h2Route(_ c: Int32, _ x: Int32, _ head: inout RequestHead, _ buf: UnsafeRawBufferPointer, _ listener: CompiledListener) {
        let xi = Int(x)
        let t = http2
        let request = NeutralRequestHead(h1: head, bytes: buf, fields: UnsafeBufferPointer(headerTable), scheme: .http)
        exchanges[xi].method = request.method
        exchanges[xi].request.reset(request.framing)
        if t.streams[xi].requestEnded { exchanges[xi].request.done = true }
        if listener.maxBodyBytes > 0, case .contentLength(let n) = request.framing, n > listener.maxBodyBytes {
            h2RespondError(x, 413, "request body larger than max_body", cause: nil)
            return
        }
        var req = RequestView.make(request, clientIP: clientAddressText(c))
        let v = exchanges[xi].view
        guard let table = views[Int(v)].table else { h2RespondError(x, 404, "no route matches this request", cause: "route_not_found"); return }
        let r = table._withUnsafeGuaranteedRef { $0.match(listener: Int(exchanges[xi].listener), req, worker: index) }
        if r < 0 {
            h2RespondError(x, 404, "no route matches this request", cause: "route_not_found")
            return
        }
        exchanges[xi].route = Int32(r)
        let route = views[Int(v)].routes[r]
        if route.cluster == -1 {
            h2RespondDirect(x, route)
            return
        }
        let cluster = route.cluster == -2 ? pickSplit(v, route) : route.cluster
        let e = pickEndpoint(v, cluster, &req)
        if e < 0 { h2RespondError(x, 503, "no endpoint available", cause: "no_endpoint"); return }
        if views[Int(v)].endpoints[Int(e)].address.family == AF_UNSPEC {
            stats.bump(stats.upstreamErrors)
            h2RespondError(x, 502, "upstream host name does not resolve", cause: "upstream_dns_failure")
            return
        }
        if let active = views[Int(v)].active { active[Int(e)] += 1 }
        exchanges[xi].countedEndpoint = e
        if h2upClusterOf(v, e) { h2upRoute(c, x, &head, buf, route); return }
        let u = acquireUpstream(v, e)
        if u < 0 { h2RespondError(x, 502, "cannot open an upstream connection", cause: "upstream_connect_failed"); return }
        // The HTTP/1.1 writers read the client's exchange through its slot: point it here for the call.
        let saved = socks[Int(c)].exchange
        socks[Int(c)].exchange = x
        compressionNoteRequest(xi, route, head, buf)
        let written = writeRequestHead(to: u, client: c, &head, buf, route)
        socks[Int(c)].exchange = saved
        guard written else {
            closeSock(u)
            h2RespondError(x, 431, "request head too large after rewriting", cause: nil)
            return
        }
        exchanges[xi].phase = .proxying
        exchanges[xi].timeoutMs = h2StreamTimeoutMs(x, route)
        exchanges[xi].upstream = u
        socks[Int(u)].exchange = x
        if t.streams[xi].requestEnded { exchanges[xi].request.done = true }
        if socks[Int(u)].connected {
            scheduleTimer(u, .upstreamResponse, afterMs: Int64(exchanges[xi].timeoutMs))
            flush(u)
        }
    }

    // MARK: Request bodies

    /// DATA payload of a stream: forwarded to its upstream (chunked when the
    /// client gave no content-length). It stays counted in nghttp2's windows
    /// until the upstream took it (`h2UpstreamWritable`), so a slow upstream
    /// slows only its own stream.
    func h2DataChunk(_ c: Int32, _ sid: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
        let i = Int(c)
        let t = http2
        guard let s = t.conns[i].session else { return 0 }
        let x = h2Exchange(s, sid)
        guard x >= 0 else { _ = nghttp2_session_consume_connection(s, data.count); return 0 }
        let xi = Int(x)
        t.streams[xi].received &+= UInt64(data.count)
        exchanges[xi].request.payloadBytes = t.streams[xi].received
        if t.streams[xi].declaredLength >= 0 && t.streams[xi].received > UInt64(t.streams[xi].declaredLength) {
            _ = nghttp2_session_consume(s, sid, data.count)
            h2FailStream(x, 400, "request body longer than content-length", cause: nil)
            return 0
        }
        let limit = listenerSettings(c).maxBodyBytes
        if limit > 0 && t.streams[xi].received > limit {
            _ = nghttp2_session_consume(s, sid, data.count)
            h2FailStream(x, 413, "request body larger than max_body", cause: nil)
            return 0
        }
        if t.streams[xi].up.active { return h2upRequestData(x, data) }
        let u = exchanges[xi].upstream
        guard u >= 0, !socks[Int(u)].closing, exchanges[xi].phase == .proxying, let base = data.baseAddress, data.count > 0 else {
            _ = nghttp2_session_consume(s, sid, data.count)
            return 0
        }
        var ok = true
        if t.streams[xi].requestChunked {
            var line = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
            let n = withUnsafeMutableBytes(of: &line) { p -> Int in
                var w = HeadWriter(p.baseAddress.unsafelyUnwrapped, capacity: 10)
                w.appendHex(UInt64(data.count), minDigits: 1)
                w.append("\r\n")
                return w.count
            }
            ok = withUnsafeBytes(of: &line) { copyOut(u, $0.baseAddress.unsafelyUnwrapped, n) }
            ok = ok && copyOut(u, base, data.count)
            ok = ok && copyOut(u, StaticString("\r\n").utf8Start, 2)
        } else {
            ok = copyOut(u, base, data.count)
        }
        if !ok {
            _ = nghttp2_session_consume(s, sid, data.count)
            h2FailStream(x, 503, "no buffer for the request body", cause: "overloaded")
            return 0
        }
        t.streams[xi].unconsumed += data.count
        if socks[Int(u)].connected { flush(u) }
        return 0
    }

    /// Trailers from the client: forwarded in the last chunk of a chunked
    /// request, dropped when the request had a content-length.
    private func h2RequestTrailers(_ c: Int32, _ block: H2Block, endStream: Bool) {
        let x = block.exchange
        if block.malformed != nil || block.tooLarge {
            stats.http2.malformed.wrappingIncrement(ordering: .relaxed)
            h2FailStream(x, 400, "bad request trailers", cause: nil)
            return
        }
        h2RequestEnded(c, x, trailers: block)
    }

    private func h2RequestEnded(_ c: Int32, _ x: Int32, trailers: H2Block?) {
        let xi = Int(x)
        let t = http2
        if t.streams[xi].requestEnded { return }
        t.streams[xi].requestEnded = true
        exchanges[xi].request.done = true
        if t.streams[xi].declaredLength >= 0 && t.streams[xi].received != UInt64(t.streams[xi].declaredLength) {
            h2FailStream(x, 400, "request body shorter than content-length", cause: nil)
            return
        }
        if t.streams[xi].up.active { h2upRequestEnded(x); return }
        let u = exchanges[xi].upstream
        guard t.streams[xi].requestChunked, u >= 0, !socks[Int(u)].closing, exchanges[xi].phase == .proxying else { return }
        var ok = copyOut(u, StaticString("0\r\n").utf8Start, 3)
        if let b = trailers {
            let bb = UnsafeRawBufferPointer(start: buffers.pointer(b.buf), count: Int(b.bytes))
            for k in 0..<Int(b.fields) {
                let f = h2BlockField(b, k)
                guard let nb = bb.baseAddress else { break }
                ok = ok && copyOut(u, nb + Int(f.name.offset), Int(f.name.length))
                ok = ok && copyOut(u, StaticString(": ").utf8Start, 2)
                ok = ok && copyOut(u, nb + Int(f.value.offset), Int(f.value.length))
                ok = ok && copyOut(u, StaticString("\r\n").utf8Start, 2)
            }
        }
        ok = ok && copyOut(u, StaticString("\r\n").utf8Start, 2)
        if !ok { h2FailStream(x, 503, "no buffer for the request body", cause: "overloaded"); return }
        if socks[Int(u)].connected { flush(u) }
    }

    // MARK: Stream lifecycle

    /// An exchange for a new stream that leaves the slot's own exchange (the
    /// connection's placeholder) in place.
    private func allocExchangeKeepingFocus(_ c: Int32) -> Int32? {
        let saved = socks[Int(c)].exchange
        let x = allocExchange(client: c)
        socks[Int(c)].exchange = saved
        return x?.raw
    }

    private func h2LinkStream(_ c: Int32, _ x: Int32) {
        let i = Int(c)
        let t = http2
        let first = t.conns[i].firstStream
        t.streams[Int(x)].next = first
        t.streams[Int(x)].prev = -1
        if first >= 0 { t.streams[Int(first)].prev = x }
        t.conns[i].firstStream = x
        t.conns[i].openStreams += 1
    }

    /// nghttp2 closed the stream (answered, reset either way): the exchange ends.
    func h2StreamClosed(_ c: Int32, _ sid: Int32, _ code: UInt32) {
        let t = http2
        guard let s = t.conns[Int(c)].session else { return }
        let x = h2Exchange(s, sid)
        guard x >= 0 else { return }
        if code != NGHTTP2_NO_ERROR.rawValue && !t.streams[Int(x)].responseSubmitted { h2EarlyReset(c) }
        h2EndStream(c, x)
    }

    /// Frees one stream's exchange: its upstream closes (unless already pooled),
    /// its snapshot and buffers are released.
    func h2EndStream(_ c: Int32, _ x: Int32) {
        let i = Int(c)
        let xi = Int(x)
        let t = http2
        h2ReleaseWindow(x)
        h2upStreamEnds(x)
        let u = exchanges[xi].upstream
        if u >= 0 {
            exchanges[xi].upstream = -1
            socks[Int(u)].exchange = -1
            closeSock(u)
        }
        if exchanges[xi].requestHeadBuf >= 0 { buffers.release(exchanges[xi].requestHeadBuf); exchanges[xi].requestHeadBuf = -1 }
        if t.streams[xi].localBuf >= 0 { buffers.release(t.streams[xi].localBuf); t.streams[xi].localBuf = -1 }
        let v = exchanges[xi].view
        if v >= 0 {
            let e = exchanges[xi].countedEndpoint
            if e >= 0, let active = views[Int(v)].active { active[Int(e)] -= 1 }
            exchanges[xi].view = -1
            releaseView(ViewID(raw: v))
        }
        let prev = t.streams[xi].prev, next = t.streams[xi].next
        if prev >= 0 { t.streams[Int(prev)].next = next } else { t.conns[i].firstStream = next }
        if next >= 0 { t.streams[Int(next)].prev = prev }
        t.conns[i].openStreams -= 1
        if let s = t.conns[i].session { _ = nghttp2_session_set_stream_user_data(s, t.streams[xi].id, nil) }
        t.streams[xi] = H2Stream()
        freeExchange(ExchangeID(raw: x))
    }

    /// Request bytes that will never reach an upstream now leave the windows
    /// too (else the connection window would shrink for good).
    func h2ReleaseWindow(_ x: Int32) {
        let xi = Int(x)
        let n = http2.streams[xi].unconsumed
        guard n > 0, let s = http2.conns[Int(exchanges[xi].client)].session else { return }
        http2.streams[xi].unconsumed = 0
        if nghttp2_session_consume(s, http2.streams[xi].id, n) != 0 { _ = nghttp2_session_consume_connection(s, n) }
    }

    func h2CloseAllStreams(_ c: Int32) {
        while http2.conns[Int(c)].firstStream >= 0 { h2EndStream(c, http2.conns[Int(c)].firstStream) }
    }
}
