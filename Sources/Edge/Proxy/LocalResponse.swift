import CIOUring
import Glibc
import Protocols

/// Responses Edge answers itself: configured direct responses and errors
/// (`<status> <phrase>` with an `x-edge-error` cause), per the README's error contract.
extension Reactor {
    /// Request bodies up to this size are read and dropped to keep the connection;
    /// larger ones make Edge close after answering.
    static let maxDiscardBody: UInt64 = 1 << 20
    /// min_body_rate is averaged over windows of this length.
    static let bodyRateWindowMs: Int64 = 10_000

    /// Answers locally. `consume` is the request head length to drop before
    /// discarding any body (connection may stay open), or -1 to answer and close
    /// (framing in doubt: nothing more is read as a request).
    func respondError(_ c: Int32, _ status: UInt16, _ reason: StaticString, cause: StaticString?, consume: Int) {
        let xi = Int(socks[Int(c)].exchange)
        if consume < 0 { exchanges[xi].keepAlive = false }
        decideLocalKeepAlive(c)
        let id = outBuffer(c)
        if id < 0 { closeSock(c); return }
        let phrase = reasonPhrase(status)
        let bodyLength = phrase.utf8CodeUnitCount + 2 + reason.utf8CodeUnitCount + 1
        obsLocal(xi, status, cause, bodyBytes: exchanges[xi].method == .head ? 0 : bodyLength)
        var w = headWriter(id)
        w.appendStatusLine(status)
        w.append("Content-Type: text/plain\r\nContent-Length: ")
        w.appendDecimal(UInt64(bodyLength))
        w.append("\r\n")
        if let cause { w.append("x-edge-error: "); w.append(cause); w.append("\r\n") }
        appendAttempts(&w, xi)
        appendAltSvc(&w, xi)
        w.append(exchanges[xi].keepAlive ? "" : "Connection: close\r\n")
        w.append("\r\n")
        if exchanges[xi].method != .head {
            w.append(phrase); w.append(": "); w.append(reason); w.append("\n")
        }
        guard commitHead(c, id, w) else { closeSock(c); return }
        finishLocal(c, consume: consume)
    }

    func respondDirect(_ c: Int32, _ route: CompiledRoute, consume: Int) {
        let xi = Int(socks[Int(c)].exchange)
        decideLocalKeepAlive(c)
        let id = outBuffer(c)
        if id < 0 { closeSock(c); return }
        var w = headWriter(id)
        w.append(route.directHead.buffer)
        appendAltSvc(&w, xi)
        w.append(exchanges[xi].keepAlive ? "" : "Connection: close\r\n")
        w.append("\r\n")
        guard commitHead(c, id, w) else { closeSock(c); return }
        obsLocal(xi, route.directStatus, nil, bodyBytes: exchanges[xi].method == .head ? 0 : route.directBody.count)
        if exchanges[xi].method != .head, let body = route.directBody.base, route.directBody.count > 0 {
            enqueue(c, body, route.directBody.count, id: -1)
        }
        finishLocal(c, consume: consume)
    }

    /// A local answer keeps the connection only if the request body is small
    /// enough to read and drop, and the client is not waiting for 100-continue.
    func decideLocalKeepAlive(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        let body = exchanges[xi].request
        switch body.mode {
        case .none: break
        case .length:
            if body.remaining > Reactor.maxDiscardBody || exchanges[xi].expectContinue { exchanges[xi].keepAlive = false }
        case .chunked, .untilClose:
            exchanges[xi].keepAlive = false
        }
        if draining { exchanges[xi].keepAlive = false }
    }

    func finishLocal(_ c: Int32, consume: Int) {
        let xi = Int(socks[Int(c)].exchange)
        exchanges[xi].responseStarted = true
        exchanges[xi].responseDone = true
        if consume >= 0 && exchanges[xi].keepAlive {
            consumeInput(c, consume)
            exchanges[xi].phase = .local
        } else {
            releaseInput(c)
            exchanges[xi].request.done = true
            exchanges[xi].phase = .closing
        }
        flush(c)
        // The client must take the answer (and send any body) without stalling.
        refreshClientTimer(c)
        if exchanges[xi].phase == .local {
            // Drop whatever body already arrived; more is dropped as it comes.
            clientReadable(c)
        }
    }

    func timerFired(_ slot: Int32) {
        let xi = Int(socks[Int(slot)].exchange)
        let i = Int(slot)
        let kind = socks[i].timer
        socks[i].timer = .none
        if socks[i].closing || socks[i].kind == .free { return }
        if socks[i].http2 { h2Timer(slot, kind); return }
        if socks[i].kind == .quic { quicTimer(slot); return }
        if socks[i].kind == .upstream && h2Serves(slot) && kind != .upstreamIdle { h2UpstreamTimer(slot, kind); return }
        switch kind {
        case .none:
            return
        case .clientIdle, .clientLinger:
            closeSock(slot)
        case .clientHeader:
            // Nothing received at all: close quietly (a pre-connect or probe, not a request).
            if socks[i].inHead < 0 { closeSock(slot); return }
            stats.bump(stats.clientErrors)
            respondError(slot, 408, "request head not received in time", cause: nil, consume: -1)
        case .clientBody:
            let silentMs = nowMs - exchanges[xi].clientProgressMs
            let tooSlow = requestBodyTooSlow(slot)
            if !tooSlow && silentMs < Int64(listenerSettings(slot).bodyTimeoutMs) {
                scheduleClientTimer(slot)  // a rate window ended and the client kept up
                return
            }
            if exchanges[xi].request.done {
                // Slow reader: reset instead of FIN so the kernel drops the
                // megabytes still queued for it now rather than trickling them out.
                stats.bump(stats.slowReaders)
                var hard = linger(l_onoff: 1, l_linger: 0)
                setsockopt(socks[i].fd, SOL_SOCKET, SO_LINGER, &hard, socklen_t(MemoryLayout<linger>.size))
            } else {
                stats.bump(stats.slowBodies)
            }
            if exchanges[xi].phase == .proxying && !exchanges[xi].responseStarted && !exchanges[xi].request.done {
                let u = exchanges[xi].upstream
                if u >= 0 { detach(slot, u); closeSock(u) }
                stats.bump(stats.clientErrors)
                if tooSlow {
                    respondError(slot, 408, "request body arriving slower than min_body_rate", cause: nil, consume: -1)
                } else {
                    respondError(slot, 408, "request body not received in time", cause: nil, consume: -1)
                }
            } else {
                abortExchange(slot)
            }
        case .upstreamConnect:
            let c = clientOf(slot)
            stats.bump(stats.upstreamErrors)
            reportConnectFailure(slot)
            if c >= 0 && retryAttempt(c, slot, .connectFailure) { return }
            if c >= 0 { failExchange(c, slot, 504, "upstream connect timed out", cause: "upstream_connect_timeout") }
            else { closeSock(slot) }
        case .upstreamResponse:
            let c = clientOf(slot)
            stats.bump(stats.upstreamErrors)
            reportGatewayFailure(slot)
            if c >= 0 && retryAttempt(c, slot, .idempotentTimeout) { return }
            if c >= 0 { failExchange(c, slot, 504, "upstream did not respond in time", cause: "upstream_timeout") }
            else { closeSock(slot) }
        case .upstreamBody:
            let c = clientOf(slot)
            if c >= 0 { failExchange(c, slot, 504, "upstream stalled", cause: "upstream_timeout") }
            else { closeSock(slot) }
        case .upstreamIdle:
            closeSock(slot)
        case .upstreamBackoff:
            submitConnect(slot)
        case .relayIdle:
            relayClose(slot)
        case .proxyHeader:
            stats.bump(stats.clientErrors)
            closeSock(slot)
        case .tlsHandshake:
            tlsHandshakeTimedOut(slot)
        case .udpIdle:
            closeSock(slot)
        case .dtlsHandshake:
            dtlsTimerFired(slot)
        case .sniPeek:
            stats.bump(stats.clientErrors)
            closeSock(slot)
        case .cacheWait:
            cacheWaitFired(slot)
        }
    }
}
