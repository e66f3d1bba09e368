import CNGHTTP3
import CNGTCP2
import Glibc
import Protocols

private let indexEntry = 16
/// H3_MESSAGE_ERROR, H3_REQUEST_REJECTED (RFC 9114 §8.1).
private let h3MessageError: UInt64 = 0x10e
private let h3RequestRejected: UInt64 = 0x10b

/// HTTP/3 request streams over nghttp3: the header section is checked by the
/// same translation rules as HTTP/2 (H2FieldRules), written as an HTTP/1.1
/// head, re-parsed by the strict HTTP/1.1 parser and routed through the
/// snapshot's route table like any request.
extension Reactor {
    // MARK: Setup

    /// 1-RTT keys are in place: the HTTP/3 layer starts (control and QPACK streams).
    func h3Setup(_ c: Int32) -> Bool {
        let t = quic
        let i = Int(c)
        guard t.conns[i].h3 == nil, let conn = t.conns[i].conn else { return true }
        var settings = nghttp3_settings()
        edge_nghttp3_settings_default(&settings)
        settings.max_field_section_size = t.conns[i].limits.maxFieldSection
        settings.qpack_max_dtable_capacity = HTTP3Limits.qpackTableBytes
        settings.qpack_encoder_max_dtable_capacity = HTTP3Limits.qpackTableBytes
        settings.qpack_blocked_streams = HTTP3Limits.qpackBlockedStreams
        var h3: OpaquePointer? = nil
        guard edge_nghttp3_conn_server_new(&h3, &t.h3Callbacks, &settings, t.nghttp3Mem, UnsafeMutableRawPointer(t.contexts + i)) == 0,
              let h3 else { return false }
        t.conns[i].h3 = h3
        nghttp3_conn_set_max_client_streams_bidi(h3, t.conns[i].limits.maxConcurrentStreams)
        var control: Int64 = -1, encoder: Int64 = -1, decoder: Int64 = -1
        guard ngtcp2_conn_open_uni_stream(conn, &control, nil) == 0,
              nghttp3_conn_bind_control_stream(h3, control) == 0,
              ngtcp2_conn_open_uni_stream(conn, &encoder, nil) == 0,
              ngtcp2_conn_open_uni_stream(conn, &decoder, nil) == 0,
              nghttp3_conn_bind_qpack_streams(h3, encoder, decoder) == 0 else { return false }
        return true
    }

    func h3StreamData(_ c: Int32, _ sid: Int64, _ data: UnsafePointer<UInt8>?, _ n: Int, fin: Bool) -> Bool {
        let t = quic
        let i = Int(c)
        guard let h3 = t.conns[i].h3 else { return true }
        let consumed = nghttp3_conn_read_stream(h3, sid, data, n, fin ? 1 : 0)
        if consumed < 0 {
            ngtcp2_connection_close_error_set_application_error(&t.conns[i].ccerr, nghttp3_err_infer_quic_app_error_code(Int32(consumed)), nil, 0)
            return false
        }
        quicConsume(c, sid, Int(consumed))
        return true
    }

    // MARK: Header sections

    func h3BeginHeaders(_ c: Int32, _ sid: Int64) -> Int32 {
        let t = quic
        let i = Int(c)
        guard let h3 = t.conns[i].h3 else { return 0 }
        let s = t.allocStream()
        let b = s >= 0 ? buffers.takeHead() : -1
        if s < 0 || b < 0 {
            if s >= 0 { t.freeStream(s) }
            if let conn = t.conns[i].conn { _ = ngtcp2_conn_shutdown_stream(conn, sid, h3RequestRejected) }
            return 0
        }
        t.streams[Int(s)] = H3Stream()
        t.streams[Int(s)].slot = c
        t.streams[Int(s)].id = sid
        t.streams[Int(s)].buf = b
        t.streams[Int(s)].next = t.conns[i].firstStream
        t.conns[i].firstStream = s
        t.conns[i].openStreams += 1
        _ = nghttp3_conn_set_stream_user_data(h3, sid, UnsafeMutableRawPointer(bitPattern: Int(s) + 1))
        stats.http3.streams.wrappingIncrement(ordering: .relaxed)
        return 0
    }

    /// One decoded field: checked against the translation rules and copied.
    func h3Header(_ s: Int32, _ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        guard s >= 0 else { return }
        let t = quic
        let x = Int(s)
        let b = t.streams[x].buf
        guard b >= 0, !t.streams[x].headersDone else { return }
        // QPACK bomb: decoded sizes count, indexed fields included.
        t.streams[x].listBytes += name.count + value.count + 32
        if t.streams[x].listBytes > Int(t.conns[Int(t.streams[x].slot)].limits.maxFieldSection) { t.streams[x].tooLarge = true; return }
        if t.streams[x].malformed != nil || t.streams[x].tooLarge { return }
        let verdict = H2FieldRules.classify(name: name, value: value)
        let cap = Int(buffers.capacity(b))
        let used = Int(t.streams[x].bytes)
        let entries = Int(t.streams[x].fields)
        guard used + name.count + value.count + (entries + 1) * indexEntry <= cap else { t.streams[x].tooLarge = true; return }
        let base = buffers.pointer(b)
        if let n = name.baseAddress { (base + used).copyMemory(from: n, byteCount: name.count) }
        if let v = value.baseAddress { (base + used + name.count).copyMemory(from: v, byteCount: value.count) }
        let valueRange = ByteRange(offset: Int32(used + name.count), length: Int32(value.count))
        t.streams[x].bytes = Int32(used + name.count + value.count)
        switch verdict {
        case .malformed(let why):
            t.streams[x].malformed = why
        case .pseudo(let p):
            switch p {
            case .method: t.streams[x].method = valueRange
            case .scheme: t.streams[x].scheme = valueRange
            case .authority: t.streams[x].authority = valueRange
            case .path: t.streams[x].path = valueRange
            case .protocol: t.streams[x].hasProtocol = true
            }
        case .host:
            if t.streams[x].hostSeen { t.streams[x].malformed = "more than one host"; return }
            t.streams[x].hostSeen = true
            t.streams[x].host = valueRange
        case .contentLength:
            let n = Int64(H2FieldRules.parseContentLength(value) ?? 0)
            if t.streams[x].contentLength >= 0 && t.streams[x].contentLength != n { t.streams[x].malformed = "conflicting content-length" }
            t.streams[x].contentLength = n
        case .te:
            return
        case .regular, .cookie:
            let e = base + cap - (entries + 1) * indexEntry
            e.storeBytes(of: Int32(used), toByteOffset: 0, as: Int32.self)
            e.storeBytes(of: Int32(name.count), toByteOffset: 4, as: Int32.self)
            e.storeBytes(of: valueRange.offset, toByteOffset: 8, as: Int32.self)
            e.storeBytes(of: valueRange.length | (verdict.isCookie ? Int32(1 << 30) : 0), toByteOffset: 12, as: Int32.self)
            t.streams[x].fields = Int32(entries + 1)
        }
    }

    @inline(__always) private func h3Field(_ b: Int32, _ k: Int) -> (name: ByteRange, value: ByteRange, cookie: Bool) {
        let cap = Int(buffers.capacity(b))
        let e = UnsafeRawPointer(buffers.pointer(b) + cap - (k + 1) * indexEntry)
        let last = e.load(fromByteOffset: 12, as: Int32.self)
        return (ByteRange(offset: e.load(fromByteOffset: 0, as: Int32.self), length: e.load(fromByteOffset: 4, as: Int32.self)),
                ByteRange(offset: e.load(fromByteOffset: 8, as: Int32.self), length: last & 0x3FFF_FFFF),
                last & (1 << 30) != 0)
    }

    func h3HeadersDone(_ c: Int32, _ s: Int32, fin: Bool) {
        guard s >= 0 else { return }
        let t = quic
        let x = Int(s)
        if t.streams[x].headersDone { return }  // trailers: nothing to forward for local answers
        t.streams[x].headersDone = true
        if fin { t.streams[x].requestEnded = true }
        h3StartRequest(c, s)
        let b = t.streams[x].buf
        if b >= 0 { buffers.release(b); t.streams[x].buf = -1 }
    }

    func h3RequestEnded(_ s: Int32) {
        guard s >= 0 else { return }
        quic.streams[Int(s)].requestEnded = true
    }

    /// Request body bytes. Local answers do not need them: they are dropped
    /// and credited back to the client's flow-control windows at once.
    func h3RequestData(_ c: Int32, _ sid: Int64, _ s: Int32, _ n: Int) {
        if s >= 0 { quic.streams[Int(s)].received &+= UInt64(n) }
        quicConsume(c, sid, n)
    }

    // MARK: Routing

    private func h3StartRequest(_ c: Int32, _ s: Int32) {
        let t = quic
        let x = Int(s)
        let st = t.streams[x]
        if let why = st.malformed {
            _ = why
            stats.http3.malformed.wrappingIncrement(ordering: .relaxed)
            stats.bump(stats.clientErrors)
            if let conn = t.conns[Int(c)].conn { _ = ngtcp2_conn_shutdown_stream(conn, st.id, h3MessageError) }
            return
        }
        stats.bump(stats.requests)
        let v = current
        retainView(ViewID(raw: v))
        t.streams[x].view = v
        if st.tooLarge { h3RespondError(s, 431, "request header section larger than max_field_section", cause: nil); return }
        if st.hasProtocol || st.path.length == 0 || st.method.length == 0 {
            h3RespondError(s, 501, "CONNECT over HTTP/3 is not supported", cause: nil)
            return
        }
        let bb = UnsafeRawBufferPointer(start: buffers.pointer(st.buf), count: Int(st.bytes))
        var authority = st.authority
        if authority.length == 0 { authority = st.host }
        else if st.hostSeen {
            let a = UnsafeRawBufferPointer(rebasing: bb[Int(st.authority.offset)..<Int(st.authority.offset + st.authority.length)])
            let h = UnsafeRawBufferPointer(rebasing: bb[Int(st.host.offset)..<Int(st.host.offset + st.host.length)])
            if !H2FieldRules.equalsIgnoringCase(a, h) {
                stats.http3.malformed.wrappingIncrement(ordering: .relaxed)
                h3RespondError(s, 400, "host differs from :authority", cause: nil)
                return
            }
        }
        if st.requestEnded && st.contentLength > 0 { h3RespondError(s, 400, "content-length without a body", cause: nil); return }
        let d = buffers.takeHead()
        if d < 0 { h3RespondError(s, 503, "no buffer for the request head", cause: "overloaded"); return }
        defer { buffers.release(d) }
        var w = HeadWriter(buffers.pointer(d), capacity: Int(buffers.capacity(d)))
        w.append(bb, range: st.method); w.appendByte(0x20)
        w.append(bb, range: st.path); w.append(" HTTP/1.1\r\nHost: ")
        w.append(bb, range: authority); w.append("\r\n")
        var cookies = 0
        for k in 0..<Int(st.fields) {
            let f = h3Field(st.buf, k)
            if f.cookie { cookies += 1; continue }
            w.append(bb, range: f.name); w.append(": "); w.append(bb, range: f.value); w.append("\r\n")
        }
        // RFC 9114 §4.2.1: cookie fields are joined with "; " for HTTP/1.1.
        if cookies > 0 {
            w.append("cookie: ")
            var first = true
            for k in 0..<Int(st.fields) {
                let f = h3Field(st.buf, k)
                if !f.cookie { continue }
                if !first { w.append("; ") }
                first = false
                w.append(bb, range: f.value)
            }
            w.append("\r\n")
        }
        if st.contentLength >= 0 { w.append("Content-Length: "); w.appendDecimal(UInt64(st.contentLength)); w.append("\r\n") }
        else if !st.requestEnded { w.append("Transfer-Encoding: chunked\r\n") }
        w.append("\r\n")
        if w.overflowed { h3RespondError(s, 431, "request head too large", cause: nil); return }
        var li = -1
        for k in 0..<QUICTables.maxSockets where t.fds[k] == t.conns[Int(c)].fd { li = k; break }
        guard li >= 0, li < views[Int(v)].listeners.count else { h3RespondError(s, 503, "listener is gone", cause: "listener_gone"); return }
        let listener = views[Int(v)].listeners[li]
        let head1 = UnsafeRawBufferPointer(start: buffers.pointer(d), count: w.count)
        var head = RequestHead()
        var scan = HeadScanState()
        switch HTTP1Parser.parseRequest(head1, limits: listener.limits, state: &scan, head: &head, headers: headerTable) {
        case .incomplete:
            h3RespondError(s, 431, "request head too large", cause: nil)
            return
        case .error(let e):
            stats.bump(stats.clientErrors)
            h3RespondError(s, e.status, e.reason, cause: nil)
            return
        case .complete:
            break
        }
        let request = NeutralRequestHead(h1: head, bytes: head1, fields: UnsafeBufferPointer(headerTable), scheme: .https)
        t.streams[x].headMethod = request.method == .head
        if listener.maxBodyBytes > 0, case .contentLength(let n) = request.framing, n > listener.maxBodyBytes {
            h3RespondError(s, 413, "request body larger than max_body", cause: nil)
            return
        }
        let req = RequestView.make(request, clientIP: clientAddressText(c))
        guard let table = views[Int(v)].table else { h3RespondError(s, 404, "no route matches this request", cause: "route_not_found"); return }
        let r = table._withUnsafeGuaranteedRef { $0.match(listener: li, req, worker: index) }
        if r < 0 { h3RespondError(s, 404, "no route matches this request", cause: "route_not_found"); return }
        let route = views[Int(v)].routes[r]
        if route.cluster == -1 { h3RespondDirect(s, route); return }
        // Upstream clusters over HTTP/3 need the exchange glue HTTP/2 has (H2Upstream); not wired yet.
        h3RespondError(s, 502, "HTTP/3 to upstream clusters is not supported yet; use HTTPS (h1/h2) for this route", cause: "h3_upstream_unsupported")
    }

    // MARK: Responses

    @inline(__always) private func h3IsHopByHop(_ kind: HeaderKind) -> Bool {
        switch kind {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .upgrade, .transferEncoding: return true
        default: return false
        }
    }

    /// Copies `bytes` lower-cased into the scratch area; nil when it is full.
    @inline(__always) private func h3Copy(_ used: inout Int, _ bytes: UnsafeRawBufferPointer, lower: Bool) -> UnsafeMutablePointer<UInt8>? {
        let t = quic
        guard used + bytes.count <= QUICTables.scratchBytes else { return nil }
        let p = t.scratch + used
        for k in 0..<bytes.count {
            var ch = bytes[k]
            if lower && ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
            p[k] = ch
        }
        used += bytes.count
        return p
    }

    @inline(__always) private func h3Pair(_ k: inout Int, _ name: UnsafeMutablePointer<UInt8>, _ nameLength: Int, _ value: UnsafeMutablePointer<UInt8>, _ valueLength: Int) {
        guard k < QUICTables.maxFields else { return }
        quic.nv[k] = nghttp3_nv(name: name, value: value, namelen: nameLength, valuelen: valueLength, flags: UInt8(NGHTTP3_NV_FLAG_NONE))
        k += 1
    }

    private func h3RespondDirect(_ s: Int32, _ route: CompiledRoute) {
        let t = quic
        let x = Int(s)
        let d = buffers.takeHead()
        if d < 0 { h3Reset(s); return }
        defer { buffers.release(d) }
        var w = HeadWriter(buffers.pointer(d), capacity: Int(buffers.capacity(d)))
        w.append(route.directHead.buffer)
        w.append("\r\n")
        let text = UnsafeRawBufferPointer(start: buffers.pointer(d), count: w.count)
        var head = ResponseHead()
        guard !w.overflowed, case .complete = HTTP1Parser.parseResponse(text, limits: HTTP1Limits(maxHeaderBytes: max(w.count, 256)),
                                                                         requestMethod: t.streams[x].headMethod ? .head : .get,
                                                                         head: &head, headers: headerTable) else {
            h3Reset(s)
            return
        }
        var k = 0
        var used = 0
        var digits = (UInt8(0), UInt8(0), UInt8(0))
        let status = head.status
        digits.0 = UInt8(48 + (status / 100) % 10); digits.1 = UInt8(48 + (status / 10) % 10); digits.2 = UInt8(48 + status % 10)
        guard let sv = withUnsafeBytes(of: &digits, { h3Copy(&used, $0, lower: false) }),
              let sn = h3Copy(&used, UnsafeRawBufferPointer(start: StaticString(":status").utf8Start, count: 7), lower: false) else { h3Reset(s); return }
        h3Pair(&k, sn, 7, sv, 3)
        for f in 0..<head.headerCount {
            let field = headerTable[f]
            if h3IsHopByHop(field.kind) { continue }
            guard let n = h3Copy(&used, UnsafeRawBufferPointer(rebasing: text[Int(field.name.offset)..<field.name.end]), lower: true),
                  let v = h3Copy(&used, UnsafeRawBufferPointer(rebasing: text[Int(field.value.offset)..<field.value.end]), lower: false) else { h3Reset(s); return }
            h3Pair(&k, n, Int(field.name.length), v, Int(field.value.length))
        }
        let hasBody = !t.streams[x].headMethod && route.directBody.count > 0
        if hasBody {
            t.streams[x].body = route.directBody.base
            t.streams[x].bodyLength = route.directBody.count
        }
        h3Submit(s, k, hasBody: hasBody)
    }

    /// An error Edge answers itself: `<status>` with `x-edge-error: <cause>` and a one-line text body.
    func h3RespondError(_ s: Int32, _ status: UInt16, _ reason: StaticString, cause: StaticString?) {
        let t = quic
        let x = Int(s)
        var k = 0
        var used = 0
        var digits = (UInt8(48 + (status / 100) % 10), UInt8(48 + (status / 10) % 10), UInt8(48 + status % 10))
        func put(_ name: StaticString, _ value: UnsafeRawBufferPointer) -> Bool {
            guard let n = h3Copy(&used, UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), lower: false),
                  let v = h3Copy(&used, value, lower: false) else { return false }
            h3Pair(&k, n, name.utf8CodeUnitCount, v, value.count)
            return true
        }
        let ct: StaticString = "text/plain"
        guard withUnsafeBytes(of: &digits, { put(":status", $0) }),
              put("content-type", UnsafeRawBufferPointer(start: ct.utf8Start, count: ct.utf8CodeUnitCount)) else { h3Reset(s); return }
        if let cause, !put("x-edge-error", UnsafeRawBufferPointer(start: cause.utf8Start, count: cause.utf8CodeUnitCount)) { h3Reset(s); return }
        var hasBody = false
        if !t.streams[x].headMethod {
            let b = buffers.takeHead()
            if b >= 0 {
                var w = HeadWriter(buffers.pointer(b), capacity: Int(buffers.capacity(b)))
                w.append(reason); w.append("\n")
                t.streams[x].bodyBuf = b
                t.streams[x].body = UnsafeRawPointer(buffers.pointer(b))
                t.streams[x].bodyLength = w.count
                hasBody = true
            }
        }
        h3Submit(s, k, hasBody: hasBody)
    }

    private func h3Submit(_ s: Int32, _ count: Int, hasBody: Bool) {
        let t = quic
        let x = Int(s)
        let c = Int(t.streams[x].slot)
        guard let h3 = t.conns[c].h3 else { return }
        t.streams[x].responded = true
        var dr = nghttp3_data_reader(read_data: { _, _, vec, veccnt, pflags, ud, sud in
            guard let (r, _) = QUICCallbacks.context(ud), let vec, let pflags else { return nghttp3_ssize(NGHTTP3_ERR_CALLBACK_FAILURE) }
            return r.h3ReadBody(QUICCallbacks.stream(sud), vec, veccnt, pflags)
        })
        let rv = hasBody ? nghttp3_conn_submit_response(h3, t.streams[x].id, t.nv, count, &dr)
                         : nghttp3_conn_submit_response(h3, t.streams[x].id, t.nv, count, nil)
        if rv != 0 { h3Reset(s) }
    }

    /// The body by reference: it stays valid until the stream closes (the
    /// snapshot view or the buffer is held until then), which covers every
    /// retransmission nghttp3 may ask for.
    func h3ReadBody(_ s: Int32, _ vec: UnsafeMutablePointer<nghttp3_vec>, _ count: Int, _ flags: UnsafeMutablePointer<UInt32>) -> nghttp3_ssize {
        guard s >= 0, count > 0 else { flags.pointee |= UInt32(NGHTTP3_DATA_FLAG_EOF); return 0 }
        let t = quic
        let x = Int(s)
        let left = t.streams[x].bodyLength - t.streams[x].bodyOffset
        flags.pointee |= UInt32(NGHTTP3_DATA_FLAG_EOF)
        guard left > 0, let base = t.streams[x].body else { return 0 }
        vec[0] = nghttp3_vec(base: UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self) + t.streams[x].bodyOffset), len: left)
        t.streams[x].bodyOffset = t.streams[x].bodyLength
        return 1
    }

    private func h3Reset(_ s: Int32) {
        let t = quic
        let x = Int(s)
        guard let conn = t.conns[Int(t.streams[x].slot)].conn else { return }
        _ = ngtcp2_conn_shutdown_stream(conn, t.streams[x].id, 0x102)  // H3_INTERNAL_ERROR
    }

    // MARK: Close

    func h3StreamClosed(_ c: Int32, _ sid: Int64, _ s: Int32) {
        guard s >= 0 else { return }
        let t = quic
        let i = Int(c)
        var p = t.conns[i].firstStream
        var prev: Int32 = -1
        while p >= 0 && p != s { prev = p; p = t.streams[Int(p)].next }
        if p == s {
            if prev >= 0 { t.streams[Int(prev)].next = t.streams[Int(s)].next } else { t.conns[i].firstStream = t.streams[Int(s)].next }
        }
        h3ReleaseStream(s)
        t.conns[i].openStreams -= 1
    }

    private func h3ReleaseStream(_ s: Int32) {
        let t = quic
        let x = Int(s)
        if t.streams[x].buf >= 0 { buffers.release(t.streams[x].buf) }
        if t.streams[x].bodyBuf >= 0 { buffers.release(t.streams[x].bodyBuf) }
        let v = t.streams[x].view
        t.freeStream(s)
        releaseView(ViewID(raw: v))
    }

    func h3FreeAllStreams(_ c: Int32) {
        let t = quic
        var p = t.conns[Int(c)].firstStream
        while p >= 0 {
            let next = t.streams[Int(p)].next
            h3ReleaseStream(p)
            p = next
        }
        t.conns[Int(c)].firstStream = -1
        t.conns[Int(c)].openStreams = 0
    }
}
