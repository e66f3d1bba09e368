import CIOUring
import Glibc
import Protocols

/// The upstream half of the proxy: connecting, reading response heads and
/// bodies, failure mapping to 502/503/504, and one retry of a request that
/// met a stale pooled connection.
extension Reactor {
    func startProxy(_ c: Int32, _ route: CompiledRoute, _ head: inout RequestHead, _ buf: UnsafeRawBufferPointer, _ req: inout RequestView) {
        let i = Int(c)
        let v = exchanges[i].view
        let cluster = route.cluster == -2 ? pickSplit(v, route) : route.cluster
        let e = pickEndpoint(v, cluster, &req)
        if e < 0 {
            respondError(c, 503, "no endpoint available", cause: "no_endpoint", consume: head.headLength)
            return
        }
        if views[Int(v)].endpoints[Int(e)].address.family == AF_UNSPEC {
            stats.bump(stats.upstreamErrors)
            respondError(c, 502, "upstream host name does not resolve", cause: "upstream_dns_failure", consume: head.headLength)
            return
        }
        if let active = views[Int(v)].active { active[Int(e)] += 1 }
        exchanges[i].countedEndpoint = e
        let u = acquireUpstream(v, e)
        if u < 0 {
            respondError(c, 502, "cannot open an upstream connection", cause: "upstream_connect_failed", consume: head.headLength)
            return
        }
        guard writeRequestHead(to: u, client: c, &head, buf, route) else {
            closeSock(u)
            respondError(c, 431, "request head too large after rewriting", cause: nil, consume: -1)
            return
        }
        consumeInput(c, head.headLength)
        exchanges[i].phase = .proxying
        exchanges[i].timeoutMs = route.timeoutMs
        socks[i].peer = u
        socks[Int(u)].peer = c
        pumpRequestBody(c)
        if socks[i].closing || socks[Int(u)].closing { return }
        if socks[Int(u)].connected {
            scheduleTimer(u, .upstreamResponse, afterMs: Int64(route.timeoutMs))
            flush(u)
        }
        refreshClientTimer(c)
    }

    func onConnect(_ u: Int32, _ res: Int32) {
        let i = Int(u)
        if socks[i].closing { return }
        let c = socks[i].peer
        if res < 0 {
            stats.bump(stats.upstreamErrors)
            if c >= 0 {
                if res == -ECONNREFUSED {
                    failExchange(c, u, 502, "upstream refused the connection", cause: "upstream_connect_refused")
                } else {
                    failExchange(c, u, 502, "upstream connection failed", cause: "upstream_connect_failed")
                }
            } else {
                closeSock(u)
            }
            return
        }
        socks[i].connected = true
        if c >= 0 && socks[Int(c)].isStream {
            streamUpstreamConnected(c, u)
            return
        }
        stats.bump(stats.upstreamOpened)
        armRecv(u)
        if c >= 0 && !sendProxyHeader(client: c, upstream: u) {
            failExchange(c, u, 502, "cannot send the PROXY header", cause: "upstream_connect_failed")
            return
        }
        if c >= 0 {
            scheduleTimer(u, .upstreamResponse, afterMs: Int64(exchanges[Int(c)].timeoutMs))
            flush(u)
        } else {
            closeSock(u)
        }
    }

    func upstreamWritable(_ u: Int32) {
        let c = socks[Int(u)].peer
        guard c >= 0 else { return }
        let ci = Int(c)
        if !exchanges[ci].responseHeadDone {
            scheduleTimer(u, .upstreamResponse, afterMs: Int64(exchanges[ci].timeoutMs))
        }
        if exchanges[ci].phase == .proxying && !exchanges[ci].request.done {
            pumpRequestBody(c)
            if !socks[ci].closing { updateRecv(c); refreshClientTimer(c) }
        }
    }

    func upstreamReadable(_ u: Int32) {
        let ui = Int(u)
        if socks[ui].relayPending { checkRelayReady(u); return }
        let c = socks[ui].peer
        if c < 0 {
            // Idle pooled connection: data or EOF means it is no longer usable.
            closeSock(u)
            return
        }
        let ci = Int(c)
        while !exchanges[ci].responseHeadDone {
            if socks[ui].inHead < 0 {
                if socks[ui].eof { upstreamEndedEarly(u, c) } else { flush(c) }  // relay any 1xx now
                return
            }
            guard linearizeInput(u) else {
                failExchange(c, u, 502, "no buffer for the response head", cause: "overloaded")
                return
            }
            let h = socks[ui].inHead
            let buf = buffers.bytes(h)
            var head = ResponseHead()
            let limits = listenerSettings(c).limits
            switch HTTP1Parser.parseResponse(buf, limits: limits, requestMethod: exchanges[ci].method, head: &head, headers: headerTable) {
            case .incomplete:
                if socks[ui].eof {
                    stats.bump(stats.upstreamErrors)
                    failExchange(c, u, 502, "upstream closed the connection mid-head", cause: "upstream_closed")
                } else if buffers.count(h) >= buffers.capacity(h) {
                    failExchange(c, u, 502, "response head too large", cause: "upstream_bad_response")
                } else {
                    flush(c)
                }
                return
            case .error(let e):
                stats.bump(stats.upstreamErrors)
                failExchange(c, u, 502, e.reason, cause: "upstream_bad_response")
                return
            case .complete:
                if head.status < 200 {
                    if head.status == 101 {
                        guard exchanges[ci].upgradeRequested else {
                            failExchange(c, u, 502, "upstream switched protocols without an upgrade request", cause: "upstream_bad_response")
                            return
                        }
                        guard writeResponseHead(to: c, &head, buf, interim: false) else {
                            failExchange(c, u, 502, "response head too large", cause: "upstream_bad_response")
                            return
                        }
                        consumeInput(u, head.headLength)
                        exchanges[ci].responseStarted = true
                        exchanges[ci].responseHeadDone = true
                        exchanges[ci].phase = .upgraded
                        releaseExchangeBuffers(c)
                        flush(c)
                        beginRelay(c, u)
                        return
                    }
                    guard writeResponseHead(to: c, &head, buf, interim: true) else {
                        failExchange(c, u, 502, "response head too large", cause: "upstream_bad_response")
                        return
                    }
                    consumeInput(u, head.headLength)
                    // The client got its `100 Continue` (or another 1xx): from now on its body must flow.
                    exchanges[ci].expectContinue = false
                    continue
                }
                startResponse(c, u, &head, buf)
                if socks[ci].closing || socks[ui].closing { return }
            }
        }
        // Body.
        if let _ = pumpBody(from: u, to: c, state: &exchanges[ci].response) {
            stats.bump(stats.upstreamErrors)
            detach(c, u); closeSock(u)
            flush(c)
            exchanges[ci].keepAlive = false
            exchanges[ci].phase = .closing
            lingerIfDrained(c)
            return
        }
        if !exchanges[ci].response.done && socks[ui].eof && socks[ui].inHead < 0 {
            if exchanges[ci].response.mode == .untilClose {
                exchanges[ci].response.done = true
            } else {
                // Upstream died mid-body: deliver what we have, then close the client.
                stats.bump(stats.upstreamErrors)
                detach(c, u); closeSock(u)
                flush(c)
                exchanges[ci].keepAlive = false
                exchanges[ci].phase = .closing
                lingerIfDrained(c)
                return
            }
        }
        if exchanges[ci].response.done {
            finishResponse(c, u)
        } else {
            scheduleTimer(u, .upstreamBody, afterMs: Int64(listenerSettings(c).bodyTimeoutMs))
        }
        flush(c)
        if !socks[ci].closing && exchanges[ci].phase == .proxying { refreshClientTimer(c) }
        maybeFinishExchange(c)
    }

    private func startResponse(_ c: Int32, _ u: Int32, _ head: inout ResponseHead, _ buf: UnsafeRawBufferPointer) {
        let ci = Int(c)
        exchanges[ci].response.reset(head.framing)
        if head.framing == .chunked && exchanges[ci].versionMinor == 0 { exchanges[ci].response.dechunk = true }
        if head.framing == .untilClose || exchanges[ci].response.dechunk || draining { exchanges[ci].keepAlive = false }
        if head.framing == .untilClose || !head.keepAlive { exchanges[ci].upstreamReusable = false }
        guard writeResponseHead(to: c, &head, buf, interim: false) else {
            failExchange(c, u, 502, "response head too large", cause: "upstream_bad_response")
            return
        }
        consumeInput(u, head.headLength)
        exchanges[ci].responseHeadDone = true
        exchanges[ci].responseStarted = true
        releaseExchangeBuffers(c)
    }

    /// Response fully received: the upstream goes back to the pool (or closes)
    /// and the client finishes once its output drains.
    private func finishResponse(_ c: Int32, _ u: Int32) {
        let ci = Int(c)
        exchanges[ci].responseDone = true
        detach(c, u)
        let reusable = exchanges[ci].upstreamReusable && exchanges[ci].request.done
            && socks[Int(u)].inHead < 0 && !socks[Int(u)].eof && socks[Int(u)].segCount == 0 && !socks[Int(u)].sendInFlight
        if reusable { poolRelease(u) } else { closeSock(u) }
    }

    /// The upstream closed (or reset) before a complete response head.
    private func upstreamEndedEarly(_ u: Int32, _ c: Int32) {
        let ci = Int(c)
        let ex = exchanges[ci]
        if socks[Int(u)].reused && !ex.retried && ex.request.mode == .none && ex.requestHeadBuf >= 0 {
            // A pooled connection the upstream had already closed: resend once on a fresh one.
            if retryOnFreshConnection(c, u) { return }
        }
        stats.bump(stats.upstreamErrors)
        if socks[Int(u)].readError == ECONNRESET {
            failExchange(c, u, 502, "upstream reset the connection", cause: "upstream_reset")
        } else {
            failExchange(c, u, 502, "upstream closed the connection before responding", cause: "upstream_closed")
        }
    }

    func upstreamFailed(_ u: Int32, sendError: Int32) {
        let c = socks[Int(u)].peer
        guard c >= 0 else { closeSock(u); return }
        let ex = exchanges[Int(c)]
        if socks[Int(u)].reused && !ex.retried && ex.request.mode == .none && ex.requestHeadBuf >= 0 && !ex.responseHeadDone {
            if retryOnFreshConnection(c, u) { return }
        }
        stats.bump(stats.upstreamErrors)
        failExchange(c, u, 502, "upstream reset the connection", cause: "upstream_reset")
    }

    private func retryOnFreshConnection(_ c: Int32, _ u: Int32) -> Bool {
        let ci = Int(c)
        let e = socks[Int(u)].endpoint
        let v = socks[Int(u)].view
        detach(c, u)
        closeSock(u)
        exchanges[ci].retried = true
        let n = connectUpstream(v, e)
        guard n >= 0 else { return false }
        let id = exchanges[ci].requestHeadBuf
        enqueue(n, buffers.pointer(id), Int(exchanges[ci].requestHeadLength), id: id)
        socks[ci].peer = n
        socks[Int(n)].peer = c
        return true
    }

    /// Ends the exchange with an error status if nothing was sent yet, or cuts
    /// the client connection if the response had already started.
    func failExchange(_ c: Int32, _ u: Int32, _ status: UInt16, _ reason: StaticString, cause: StaticString) {
        let ci = Int(c)
        if socks[ci].isStream || exchanges[ci].phase == .upgraded {
            // Raw relays have no HTTP to answer with: the client connection closes.
            if u >= 0 { detach(c, u); closeSock(u) }
            closeSock(c)
            return
        }
        if u >= 0 { detach(c, u); closeSock(u) }
        if socks[ci].closing { return }
        if exchanges[ci].responseStarted {
            exchanges[ci].keepAlive = false
            exchanges[ci].phase = .closing
            flush(c)
            lingerIfDrained(c)
            return
        }
        releaseExchangeBuffers(c)
        respondError(c, status, reason, cause: cause, consume: 0)
    }
}
