import CIOUring
import Glibc
import Protocols

/// The upstream half of the proxy: connecting, reading response heads and
/// bodies, failure mapping to 502/503/504, and one retry of a request that
/// met a stale pooled connection.
extension Reactor {
    func startProxy(_ c: Int32, _ route: CompiledRoute, _ head: inout RequestHead, _ buf: UnsafeRawBufferPointer, _ req: inout RequestView) {
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        let v = exchanges[xi].view
        let cluster = route.cluster == -2 ? pickSplit(v, route) : route.cluster
        obsCluster(xi, cluster)
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
        if h2upClusterOf(v, e) {
            // HTTP/1.1 clients to `protocol: http2` clusters are not bridged yet (HTTP/2 clients are).
            respondError(c, 502, "this cluster speaks HTTP/2 to its upstreams; send the request over HTTP/2", cause: "upstream_protocol", consume: head.headLength)
            return
        }
        if !circuitAllows(v, e) {
            stats.bump(stats.circuitOpen)
            respondError(c, 503, "cluster circuit breaker open", cause: "circuit_open", consume: head.headLength)
            return
        }
        if let active = views[Int(v)].active { active[Int(e)] += 1 }
        exchanges[xi].countedEndpoint = e
        countRequest(v, e)
        let u = acquireUpstream(v, e)
        obsUpstream(xi, e, u)
        if u < 0 {
            respondError(c, 502, "cannot open an upstream connection", cause: "upstream_connect_failed", consume: head.headLength)
            return
        }
        compressionNoteRequest(xi, route, head, buf)
        guard writeRequestHead(to: u, client: c, &head, buf, route) else {
            closeSock(u)
            respondError(c, 431, "request head too large after rewriting", cause: nil, consume: -1)
            return
        }
        if route.mirrorCluster >= 0 { startMirror(c, route, &req) }
        consumeInput(c, head.headLength)
        exchanges[xi].phase = .proxying
        exchanges[xi].timeoutMs = perTryTimeoutMs(v, e, route.timeoutMs)
        link(c, u)
        pumpRequestBody(c)
        if socks[i].closing || socks[Int(u)].closing { return }
        if socks[Int(u)].connected {
            scheduleTimer(u, .upstreamResponse, afterMs: Int64(route.timeoutMs))
            flush(u)
        }
        refreshClientTimer(c)
    }

    func onConnect(_ u: Int32, _ res: Int32) {
        let xi = Int(socks[Int(u)].exchange)
        let i = Int(u)
        if socks[i].closing { return }
        if h2Serves(u) { h2UpstreamConnected(u, res); return }
        let c = clientOf(u)
        if res < 0 {
            stats.bump(stats.upstreamErrors)
            reportConnectFailure(u)
            if c >= 0 && retryAttempt(c, u, .connectFailure) { return }
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
        connectionEstablished(u)
        if socks[i].mirror { mirrorConnected(u); return }
        if c >= 0 && socks[Int(c)].isStream {
            streamUpstreamConnected(c, u)
            return
        }
        stats.bump(stats.upstreamOpened)
        obsConnected(u)
        armRecv(u)
        if c >= 0 && !sendProxyHeader(client: c, upstream: u) {
            failExchange(c, u, 502, "cannot send the PROXY header", cause: "upstream_connect_failed")
            return
        }
        if c >= 0, let client = upstreamTLSContext(u), !startUpstreamTLS(u, client) {
            if !socks[i].closing { failExchange(c, u, 502, "upstream TLS handshake failed", cause: "upstream_tls_failure") }
            return
        }
        if c >= 0 {
            scheduleTimer(u, .upstreamResponse, afterMs: Int64(exchanges[xi].timeoutMs))
            flush(u)
        } else {
            closeSock(u)
        }
    }

    func upstreamWritable(_ u: Int32) {
        if h2Serves(u) { h2UpstreamWritable(u); return }
        let xi = Int(socks[Int(u)].exchange)
        let c = clientOf(u)
        guard c >= 0 else { return }
        let ci = Int(c)
        if !exchanges[xi].responseHeadDone {
            scheduleTimer(u, .upstreamResponse, afterMs: Int64(exchanges[xi].timeoutMs))
        }
        if exchanges[xi].phase == .proxying && !exchanges[xi].request.done {
            pumpRequestBody(c)
            if !socks[ci].closing { updateRecv(c); refreshClientTimer(c) }
        }
    }

    func upstreamReadable(_ u: Int32) {
        let xi = Int(socks[Int(u)].exchange)
        let ui = Int(u)
        if socks[ui].relayPending { checkRelayReady(u); return }
        if socks[ui].mirror { mirrorAnswered(u); return }
        if h2Serves(u) { h2UpstreamReadable(u); return }
        let c = clientOf(u)
        if c < 0 {
            // Idle pooled connection: data or EOF means it is no longer usable.
            closeSock(u)
            return
        }
        let ci = Int(c)
        while !exchanges[xi].responseHeadDone {
            if socks[ui].inHead < 0 {
                if socks[ui].eof { upstreamEndedEarly(u, c) } else { downstreamPush(xi) }  // relay any 1xx now
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
            switch HTTP1Parser.parseResponse(buf, limits: limits, requestMethod: exchanges[xi].method, head: &head, headers: headerTable) {
            case .incomplete:
                if socks[ui].eof {
                    stats.bump(stats.upstreamErrors)
                    failExchange(c, u, 502, "upstream closed the connection mid-head", cause: "upstream_closed")
                } else if buffers.count(h) >= buffers.capacity(h) {
                    failExchange(c, u, 502, "response head too large", cause: "upstream_bad_response")
                } else {
                    downstreamPush(xi)
                }
                return
            case .error(let e):
                stats.bump(stats.upstreamErrors)
                failExchange(c, u, 502, e.reason, cause: "upstream_bad_response")
                return
            case .complete:
                if head.status < 200 {
                    if head.status == 101 {
                        guard exchanges[xi].upgradeRequested else {
                            failExchange(c, u, 502, "upstream switched protocols without an upgrade request", cause: "upstream_bad_response")
                            return
                        }
                        guard downstreamSendHead(xi, &head, buf, interim: false) else {
                            failExchange(c, u, 502, "response head too large", cause: "upstream_bad_response")
                            return
                        }
                        consumeInput(u, head.headLength)
                        exchanges[xi].responseStarted = true
                        exchanges[xi].responseHeadDone = true
                        exchanges[xi].phase = .upgraded
                        releaseExchangeBuffers(c)
                        downstreamPush(xi)
                        beginRelay(c, u)
                        return
                    }
                    guard downstreamSendHead(xi, &head, buf, interim: true) else {
                        failExchange(c, u, 502, "response head too large", cause: "upstream_bad_response")
                        return
                    }
                    consumeInput(u, head.headLength)
                    // The client got its `100 Continue` (or another 1xx): from now on its body must flow.
                    exchanges[xi].expectContinue = false
                    continue
                }
                reportResponse(u, status: head.status)
                observeLatency(u, since: exchanges[xi].startedMs)
                if let cause = RetryCause.forStatus(head.status), retryAttempt(c, u, cause) { return }
                if exchanges[xi].cache.active && cacheResponseHead(c, u, &head, buf) { return }
                startResponse(c, u, &head, buf)
                if socks[ci].closing || socks[ui].closing { return }
            }
        }
        // Body.
        if let _ = cacheSendData(xi, from: u) {
            stats.bump(stats.upstreamErrors)
            detach(c, u); closeSock(u)
            downstreamReset(xi)
            return
        }
        if !exchanges[xi].response.done && socks[ui].eof && socks[ui].inHead < 0 && !exchanges[xi].compress.inputDone {
            if exchanges[xi].response.mode == .untilClose {
                exchanges[xi].response.done = true
            } else {
                // Upstream died mid-body: deliver what we have, then close the client.
                stats.bump(stats.upstreamErrors)
                detach(c, u); closeSock(u)
                downstreamReset(xi)
                return
            }
        }
        if exchanges[xi].response.done {
            downstreamSendTrailers(xi)
            finishResponse(c, u)
        } else {
            scheduleTimer(u, .upstreamBody, afterMs: Int64(listenerSettings(c).bodyTimeoutMs))
        }
        downstreamPush(xi)
        if !socks[ci].closing && exchanges[xi].phase == .proxying { refreshClientTimer(c) }
        downstreamEnd(xi)
    }

    private func startResponse(_ c: Int32, _ u: Int32, _ head: inout ResponseHead, _ buf: UnsafeRawBufferPointer) {
        let xi = Int(socks[Int(c)].exchange)
        obsResponseHead(xi, head.status)
        exchanges[xi].response.reset(head.framing)
        if head.framing == .chunked && exchanges[xi].versionMinor == 0 { exchanges[xi].response.dechunk = true }
        if head.framing == .untilClose || exchanges[xi].response.dechunk || draining { exchanges[xi].keepAlive = false }
        if head.framing == .untilClose || !head.keepAlive { exchanges[xi].upstreamReusable = false }
        guard downstreamSendHead(xi, &head, buf, interim: false) else {
            failExchange(c, u, 502, "response head too large", cause: "upstream_bad_response")
            return
        }
        consumeInput(u, head.headLength)
        exchanges[xi].responseHeadDone = true
        exchanges[xi].responseStarted = true
        releaseExchangeBuffers(c)
    }

    /// Response fully received: the upstream goes back to the pool (or closes)
    /// and the client finishes once its output drains.
    private func finishResponse(_ c: Int32, _ u: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        exchanges[xi].responseDone = true
        detach(c, u)
        let reusable = exchanges[xi].upstreamReusable && exchanges[xi].request.done
            && socks[Int(u)].inHead < 0 && !socks[Int(u)].eof && socks[Int(u)].segCount == 0 && !socks[Int(u)].sendInFlight
        if reusable { poolRelease(u) } else { closeSock(u) }
    }

    /// The upstream closed (or reset) before a complete response head.
    private func upstreamEndedEarly(_ u: Int32, _ c: Int32) {
        let xi = Int(socks[Int(u)].exchange)
        let ex = exchanges[xi]
        if socks[Int(u)].reused && !ex.retried && ex.request.mode == .none && ex.requestHeadBuf >= 0 {
            // A pooled connection the upstream had already closed: resend once on a fresh one.
            if retryOnFreshConnection(c, u) { return }
        }
        stats.bump(stats.upstreamErrors)
        reportGatewayFailure(u)
        if retryAttempt(c, u, .reset) { return }
        if socks[Int(u)].readError == ECONNRESET {
            failExchange(c, u, 502, "upstream reset the connection", cause: "upstream_reset")
        } else {
            failExchange(c, u, 502, "upstream closed the connection before responding", cause: "upstream_closed")
        }
    }

    func upstreamFailed(_ u: Int32, sendError: Int32) {
        if h2Serves(u) { h2UpstreamFailed(u); return }
        let xi = Int(socks[Int(u)].exchange)
        let c = clientOf(u)
        guard c >= 0 else { closeSock(u); return }
        let ex = exchanges[xi]
        if socks[Int(u)].reused && !ex.retried && ex.request.mode == .none && ex.requestHeadBuf >= 0 && !ex.responseHeadDone {
            if retryOnFreshConnection(c, u) { return }
        }
        stats.bump(stats.upstreamErrors)
        reportGatewayFailure(u)
        if !ex.responseHeadDone && retryAttempt(c, u, .reset) { return }
        failExchange(c, u, 502, "upstream reset the connection", cause: "upstream_reset")
    }

    private func retryOnFreshConnection(_ c: Int32, _ u: Int32) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        let e = socks[Int(u)].endpoint
        let v = socks[Int(u)].view
        detach(c, u)
        closeSock(u)
        exchanges[xi].retried = true
        obsRetry(xi)
        let n = connectUpstream(v, e)
        guard n >= 0 else { return false }
        let id = exchanges[xi].requestHeadBuf
        enqueue(n, buffers.pointer(id), Int(exchanges[xi].requestHeadLength), id: id)
        link(c, n)
        return true
    }

    /// Ends the exchange with an error status if nothing was sent yet, or cuts
    /// the client connection if the response had already started.
    func failExchange(_ c: Int32, _ u: Int32, _ status: UInt16, _ reason: StaticString, cause: StaticString) {
        let xi = Int(socks[Int(c)].exchange)
        let ci = Int(c)
        if socks[ci].isStream || exchanges[xi].phase == .upgraded {
            // Raw relays have no HTTP to answer with: the client connection closes.
            obsLocal(xi, status, cause, bodyBytes: 0)
            if u >= 0 { detach(c, u); closeSock(u) }
            closeSock(c)
            return
        }
        if u >= 0 { detach(c, u); closeSock(u) }
        if socks[ci].closing { return }
        if exchanges[xi].responseStarted {
            downstreamReset(xi)
            return
        }
        releaseExchangeBuffers(c)
        respondError(c, status, reason, cause: cause, consume: 0)
    }
}
