import CNGHTTP2
import Glibc
import Protocols

/// Upstream (HTTP/1.1) events of exchanges that arrived on HTTP/2 streams.
/// The upstream socket points at its exchange; the exchange at its client
/// connection and stream. Hooks at the top of the HTTP/1.1 handlers send
/// these events here (`h2Serves`).
extension Reactor {
    /// Whether upstream `u` serves an HTTP/2 stream.
    @inline(__always) func h2Serves(_ u: Int32) -> Bool {
        if socks[Int(u)].http2 { return true }
        let x = socks[Int(u)].exchange
        return x >= 0 && exchanges[Int(x)].codec == .h2
    }

    func h2UpstreamConnected(_ u: Int32, _ res: Int32) {
        if h2upOwns(u) { h2upConnected(u, res); return }
        let x = socks[Int(u)].exchange
        let xi = Int(x)
        let c = exchanges[xi].client
        if res < 0 {
            stats.bump(stats.upstreamErrors)
            if res == -ECONNREFUSED { h2FailStream(x, 502, "upstream refused the connection", cause: "upstream_connect_refused") }
            else { h2FailStream(x, 502, "upstream connection failed", cause: "upstream_connect_failed") }
            h2Flush(c)
            return
        }
        socks[Int(u)].connected = true
        stats.bump(stats.upstreamOpened)
        armRecv(u)
        scheduleTimer(u, .upstreamResponse, afterMs: Int64(exchanges[xi].timeoutMs))
        flush(u)
    }

    /// Request bytes went out: what the upstream took leaves nghttp2's windows
    /// (WINDOW_UPDATE lets the client send more on this stream).
    func h2UpstreamWritable(_ u: Int32) {
        if h2upOwns(u) { h2upWritable(u); return }
        let x = socks[Int(u)].exchange
        let xi = Int(x)
        let c = exchanges[xi].client
        if !exchanges[xi].responseHeadDone {
            scheduleTimer(u, .upstreamResponse, afterMs: Int64(exchanges[xi].timeoutMs))
        }
        guard socks[Int(u)].segCount == 0, http2.streams[xi].unconsumed > 0, let s = http2.conns[Int(c)].session else { return }
        _ = nghttp2_session_consume(s, http2.streams[xi].id, http2.streams[xi].unconsumed)
        http2.streams[xi].unconsumed = 0
        h2Flush(c)
    }

    func h2UpstreamFailed(_ u: Int32) {
        if h2upOwns(u) { h2upFailed(u); return }
        let x = socks[Int(u)].exchange
        let c = exchanges[Int(x)].client
        stats.bump(stats.upstreamErrors)
        h2FailStream(x, 502, "upstream reset the connection", cause: "upstream_reset")
        h2Flush(c)
    }

    func h2UpstreamTimer(_ u: Int32, _ kind: TimerKind) {
        if h2upOwns(u) { h2upTimer(u, kind); return }
        let x = socks[Int(u)].exchange
        let c = exchanges[Int(x)].client
        if kind == .upstreamBody && socks[Int(u)].inHead >= 0 {
            // Bytes wait here for the client (its window): the upstream is not
            // the slow one; the client side's stall timer judges the client.
            scheduleTimer(u, .upstreamBody, afterMs: Int64(listenerSettings(c).bodyTimeoutMs))
            return
        }
        stats.bump(stats.upstreamErrors)
        switch kind {
        case .upstreamConnect: h2FailStream(x, 504, "upstream connect timed out", cause: "upstream_connect_timeout")
        case .upstreamResponse: h2FailStream(x, 504, "upstream did not respond in time", cause: "upstream_timeout")
        case .upstreamBody: h2FailStream(x, 504, "upstream stalled", cause: "upstream_timeout")
        default: h2FailStream(x, 502, "upstream connection failed", cause: "upstream_connect_failed")
        }
        h2Flush(c)
    }

    /// Response head, then body bytes (pulled by the data provider).
    func h2UpstreamReadable(_ u: Int32) {
        if h2upOwns(u) { h2upReadable(u); return }
        let x = socks[Int(u)].exchange
        let xi = Int(x)
        let ui = Int(u)
        let c = exchanges[xi].client
        while !exchanges[xi].responseHeadDone {
            if socks[ui].inHead < 0 {
                if socks[ui].eof {
                    stats.bump(stats.upstreamErrors)
                    if socks[ui].readError == ECONNRESET { h2FailStream(x, 502, "upstream reset the connection", cause: "upstream_reset") }
                    else { h2FailStream(x, 502, "upstream closed the connection before responding", cause: "upstream_closed") }
                    h2Flush(c)
                }
                return
            }
            guard linearizeInput(u) else {
                h2FailStream(x, 502, "no buffer for the response head", cause: "overloaded")
                h2Flush(c)
                return
            }
            let h = socks[ui].inHead
            let buf = buffers.bytes(h)
            var head = ResponseHead()
            switch HTTP1Parser.parseResponse(buf, limits: listenerSettings(c).limits, requestMethod: exchanges[xi].method, head: &head, headers: headerTable) {
            case .incomplete:
                if socks[ui].eof {
                    stats.bump(stats.upstreamErrors)
                    h2FailStream(x, 502, "upstream closed the connection mid-head", cause: "upstream_closed")
                    h2Flush(c)
                } else if buffers.count(h) >= buffers.capacity(h) {
                    h2FailStream(x, 502, "response head too large", cause: "upstream_bad_response")
                    h2Flush(c)
                }
                return
            case .error(let e):
                stats.bump(stats.upstreamErrors)
                h2FailStream(x, 502, e.reason, cause: "upstream_bad_response")
                h2Flush(c)
                return
            case .complete:
                if head.status < 200 {
                    // Interim answers stay between Edge and the upstream; 101 was never asked for.
                    if head.status == 101 {
                        h2FailStream(x, 502, "upstream switched protocols without an upgrade request", cause: "upstream_bad_response")
                        h2Flush(c)
                        return
                    }
                    consumeInput(u, head.headLength)
                    continue
                }
                exchanges[xi].response.reset(head.framing)
                if head.framing == .untilClose || !head.keepAlive { exchanges[xi].upstreamReusable = false }
                let hasBody = !exchanges[xi].response.done
                guard h2SubmitUpstreamHead(x, &head, buf, hasBody: hasBody) else {
                    h2FailStream(x, 502, "response head too large", cause: "upstream_bad_response")
                    h2Flush(c)
                    return
                }
                consumeInput(u, head.headLength)
                exchanges[xi].responseHeadDone = true
                if exchanges[xi].requestHeadBuf >= 0 { buffers.release(exchanges[xi].requestHeadBuf); exchanges[xi].requestHeadBuf = -1 }
                if !hasBody {
                    h2FinishUpstream(x)
                    h2Flush(c)
                    return
                }
                scheduleTimer(u, .upstreamBody, afterMs: Int64(listenerSettings(c).bodyTimeoutMs))
            }
        }
        // Body bytes (or EOF) arrived: a provider waiting for them resumes.
        if http2.streams[xi].deferred, let s = http2.conns[Int(c)].session {
            http2.streams[xi].deferred = false
            _ = nghttp2_session_resume_data(s, http2.streams[xi].id)
        }
        h2Flush(c)
    }
}

extension Reactor {
    /// An HTTP/1.1 request's Upgrade field names `h2c`: Edge never switches to
    /// HTTP/2 that way and never lets the upstream do it behind its back.
    func upgradeNamesH2c(_ buf: UnsafeRawBufferPointer, count: Int) -> Bool {
        for k in 0..<min(count, headerTable.count) where headerTable[k].kind == .upgrade {
            let v = headerTable[k].value
            var i = Int(v.offset)
            let end = min(v.end, buf.count)
            while i + 3 <= end {
                if buf[i] | 0x20 == UInt8(ascii: "h") && buf[i + 1] == UInt8(ascii: "2") && buf[i + 2] | 0x20 == UInt8(ascii: "c") { return true }
                i += 1
            }
        }
        return false
    }
}
