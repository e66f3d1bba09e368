import CIOUring
import Glibc
import Protocols

/// The client half of the HTTP/1.1 proxy: reading request heads, routing,
/// streaming request bodies, finishing exchanges (keep-alive, pipelining,
/// lingering close). Runs on the reactor thread; no allocation.
extension Reactor {
    func clientReadable(_ c: Int32) {
        if socks[Int(c)].http2 { h2Readable(c); return }
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        while !socks[i].closing {
            switch exchanges[xi].phase {
            case .readingHead:
                if socks[i].inHead < 0 {
                    if socks[i].eof { closeSock(c) }
                    return
                }
                // A pipelined request waits until the previous response is out.
                if socks[i].segCount > 0 || socks[i].sendInFlight { return }
                if socks[i].proxyHeaderPending {
                    switch readProxyHeader(c) {
                    case .incomplete: if socks[i].eof { closeSock(c) }; return
                    case .invalid: closeSock(c); return
                    case .overClientLimit:
                        respondError(c, 429, "too many connections from this address", cause: "client_connection_limit", consume: -1)
                        return
                    case .complete:
                        scheduleTimer(c, .clientHeader, afterMs: Int64(listenerSettings(c).headerTimeoutMs))
                        continue
                    }
                }
                // `http2: { cleartext: true }`: a client preface turns the connection into HTTP/2.
                if socks[i].requestsOnConnection == 0 && h2TakeOver(c) { return }
                if !readRequestHead(c) { return }
            case .proxying:
                pumpRequestBody(c)
                if socks[i].closing { return }
                if socks[i].eof {
                    if !exchanges[xi].request.done { abortExchange(c); return }
                    exchanges[xi].keepAlive = false
                }
                refreshClientTimer(c)
                return
            case .local:
                discardRequestBody(c)
                if socks[i].closing { return }
                if socks[i].eof && !exchanges[xi].request.done { closeSock(c); return }
                maybeFinishExchange(c)
                if !socks[i].closing && exchanges[xi].phase == .local { refreshClientTimer(c) }
                return
            case .closing:
                releaseInput(c)
                if socks[i].eof { closeSock(c) }
                return
            case .upgraded:
                if socks[i].relayPending { checkRelayReady(c) }
                return
            case .cacheWait:
                if socks[i].eof { closeSock(c) }
                return
            }
        }
    }

    func clientWritable(_ c: Int32) {
        if socks[Int(c)].http2 { h2Writable(c); return }
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        if socks[i].closing { return }
        switch exchanges[xi].phase {
        case .proxying:
            let u = exchanges[xi].upstream
            if u >= 0 && exchanges[xi].responseHeadDone {
                upstreamReadable(u)
                if socks[Int(u)].kind == .upstream && !socks[Int(u)].closing { updateRecv(u) }
            }
            if socks[i].closing { return }
            maybeFinishExchange(c)
            if !socks[i].closing && exchanges[xi].phase == .proxying { refreshClientTimer(c) }
        case .local:
            maybeFinishExchange(c)
            if !socks[i].closing && exchanges[xi].phase == .local { refreshClientTimer(c) }
        case .closing:
            lingerIfDrained(c)
        case .upgraded, .cacheWait:
            return
        case .readingHead:
            if socks[i].segCount == 0 && !socks[i].sendInFlight && socks[i].inHead >= 0 { clientReadable(c) }
        }
        // Reading may have paused while input queued behind this exchange.
        if !socks[i].closing && socks[i].kind == .client { updateRecv(c) }
    }

    /// Parses the request head at the front of the input. True when an exchange started.
    private func readRequestHead(_ c: Int32) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        guard linearizeInput(c) else {
            respondError(c, 503, "no buffer for the request head", cause: "overloaded", consume: -1)
            return false
        }
        let h = socks[i].inHead
        let buf = buffers.bytes(h)
        let listener = listenerSettings(c)
        var head = RequestHead()
        switch HTTP1Parser.parseRequest(buf, limits: listener.limits, state: &exchanges[xi].headScan, head: &head, headers: headerTable) {
        case .incomplete:
            if socks[i].eof { closeSock(c); return false }
            if buffers.count(h) >= buffers.capacity(h) {
                respondError(c, 431, "request head too large", cause: nil, consume: -1)
                return false
            }
            if socks[i].timer != .clientHeader { scheduleTimer(c, .clientHeader, afterMs: Int64(listener.headerTimeoutMs)) }
            parkPartialHead(c)
            if socks[i].tinyReads >= Reactor.paceAfterTinyReads && !socks[i].paced { startPacedReads(c) }
            return false
        case .error(let e):
            stats.bump(stats.clientErrors)
            obsMalformed(xi, c)
            respondError(c, e.status, e.reason, cause: nil, consume: -1)
            return false
        case .complete:
            startRequest(c, &head, buf, listener)
            return true
        }
    }

    private func startRequest(_ c: Int32, _ head: inout RequestHead, _ buf: UnsafeRawBufferPointer, _ listener: CompiledListener) {
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        stats.bump(stats.requests)
        socks[i].requestsOnConnection &+= 1  // unbounded per keep-alive connection; never read as a limit
        socks[i].tinyReads = 0
        socks[i].paced = false
        cancelTimer(c)
        // From here on the exchange reads the protocol-neutral head (h2/h3 fill the same).
        let request = NeutralRequestHead(h1: head, bytes: buf, fields: UnsafeBufferPointer(headerTable), scheme: .http)
        var ex = Exchange()
        ex.client = c
        ex.method = request.method
        ex.versionMinor = request.versionMinor
        ex.keepAlive = request.keepAlive && !draining && !socks[i].listenerGone
        ex.expectContinue = request.expectContinue
        ex.request.reset(request.framing)
        ex.startedMs = nowMs
        ex.bodyWindowStartMs = nowMs
        ex.clientProgressMs = nowMs
        // The request runs on the current snapshot until it ends, whatever reloads happen.
        ex.view = current
        ex.listener = acceptListener[Int(socks[i].acceptSlot)]
        exchanges[xi] = ex
        retainView(ViewID(raw: current))
        obsBegin(xi, c, request)
        if listener.maxBodyBytes > 0, case .contentLength(let n) = request.framing, n > listener.maxBodyBytes {
            respondError(c, 413, "request body larger than max_body", cause: nil, consume: -1)
            return
        }
        var req = RequestView.make(request, clientIP: clientAddressText(c))
        let r = matchRoute(ex.view, Int(ex.listener), &req)
        if r < 0 {
            respondError(c, 404, "no route matches this request", cause: "route_not_found", consume: head.headLength)
            return
        }
        exchanges[xi].route = Int32(r)
        if !runRequestPolicies(c, route: r, &req, consume: head.headLength) { return }
        let route = views[Int(ex.view)].routes[r]
        if route.cluster == -1 {
            respondDirect(c, route, consume: head.headLength)
        } else if !(route.cache.enabled && cacheLookup(c, route, &head, buf)) {
            startProxy(c, route, &head, buf, &req)
        }
    }

    @inline(__always) private func matchRoute(_ v: Int32, _ listener: Int, _ req: inout RequestView) -> Int {
        guard let t = views[Int(v)].table else { return -1 }
        return t._withUnsafeGuaranteedRef { $0.match(listener: listener, req, worker: index) }
    }

    /// The client's address as text (X-Forwarded-For, client_ip hashing).
    @inline(__always) func clientAddressText(_ c: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: peerText + Int(c) * 48, count: Int(socks[Int(c)].peerAddrLength))
    }

    /// Moves request body bytes from the client to its upstream (or drops them
    /// if the upstream is gone), honouring max_body for chunked bodies.
    func pumpRequestBody(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        if exchanges[xi].request.done { return }
        let u = exchanges[xi].upstream
        let dst: Int32 = (u >= 0 && !socks[Int(u)].closing) ? u : -1
        let result = pumpBody(from: c, to: dst, state: &exchanges[xi].request)
        if let e = result {
            abortRequest(c, status: e.status, reason: e.reason)
            return
        }
        let limit = listenerSettings(c).maxBodyBytes
        if limit > 0 && exchanges[xi].request.payloadBytes > limit {
            abortRequest(c, status: 413, reason: "request body larger than max_body")
            return
        }
        if dst >= 0 { flush(dst) }
    }

    /// A request body turned out bad mid-stream: answer if nothing was sent yet, else cut.
    private func abortRequest(_ c: Int32, status: UInt16, reason: StaticString) {
        let xi = Int(socks[Int(c)].exchange)
        stats.bump(stats.clientErrors)
        let u = exchanges[xi].upstream
        if u >= 0 { detach(c, u); closeSock(u) }
        if exchanges[xi].responseStarted { closeSock(c); return }
        respondError(c, status, reason, cause: nil, consume: -1)
    }

    private func discardRequestBody(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        if exchanges[xi].request.done { return }
        if pumpBody(from: c, to: -1, state: &exchanges[xi].request) != nil {
            exchanges[xi].keepAlive = false
            exchanges[xi].request.done = true
            releaseInput(c)
        }
    }

    /// Ends the exchange once the response is out and the request fully read.
    func maybeFinishExchange(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        if socks[i].segCount > 0 || socks[i].sendInFlight { return }
        let ex = exchanges[xi]
        switch ex.phase {
        case .proxying: if !ex.responseDone { return }
        case .local: break
        case .closing: lingerIfDrained(c); return
        case .readingHead, .upgraded, .cacheWait: return
        }
        if !ex.request.done {
            // Body not read (early response or local answer): we cannot find the next request.
            exchanges[xi].keepAlive = false
        }
        obsEnd(xi)
        if !exchanges[xi].keepAlive || socks[i].eof {
            exchanges[xi].phase = .closing
            lingerIfDrained(c)
            return
        }
        releaseExchangeBuffers(c)
        if socks[i].outBuf >= 0 && buffers.refs[Int(socks[i].outBuf)] == 1 {
            buffers.release(socks[i].outBuf); socks[i].outBuf = -1
        }
        endExchangeView(c)
        resetExchange(xi)
        // Upgrade drain: the client may already be sending its next request; answer it (Connection: close) within the grace.
        if draining && !BinaryUpgrade.gentleDrain.load(ordering: .relaxed) { closeSock(c); return }
        scheduleTimer(c, .clientIdle, afterMs: draining ? BinaryUpgrade.idleGraceMs : Int64(listenerSettings(c).idleTimeoutMs))
        if socks[i].inHead >= 0 { clientReadable(c) }
    }

    /// Lingering close: after the last response is sent, shut our write side and
    /// discard input for a moment so the client reads the response instead of an RST.
    func lingerIfDrained(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        if socks[i].segCount > 0 || socks[i].sendInFlight || socks[i].lingering { return }
        socks[i].lingering = true
        obsEnd(xi)
        let u = exchanges[xi].upstream
        if u >= 0 { detach(c, u); closeSock(u) }
        // Nothing unread from the client: a plain close cannot turn into an RST.
        if socks[i].eof || (exchanges[xi].request.done && socks[i].inHead < 0) { closeSock(c); return }
        transportShutdownWrite(c)
        releaseInput(c)
        scheduleTimer(c, .clientLinger, afterMs: draining ? 200 : 2000)
    }

    /// The client just delivered body bytes or took response bytes: restart its
    /// silence timer.
    func refreshClientTimer(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        exchanges[xi].clientProgressMs = nowMs
        scheduleClientTimer(c)
    }

    /// Client timer during an exchange: runs only while we wait on the client
    /// (request body to read, or response bytes it has not taken yet). Fires at
    /// body_timeout of silence, or earlier at the end of a min_body_rate window.
    func scheduleClientTimer(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        let readingBody = !exchanges[xi].request.done
        if readingBody || socks[i].segCount > 0 || socks[i].sendInFlight {
            let l = listenerSettings(c)
            var at = exchanges[xi].clientProgressMs + Int64(l.bodyTimeoutMs)
            if readingBody && l.minBodyRate > 0 {
                at = min(at, exchanges[xi].bodyWindowStartMs + Reactor.bodyRateWindowMs)
            }
            scheduleTimer(c, .clientBody, afterMs: max(at - nowMs, 1))
        } else if socks[i].timer == .clientBody {
            cancelTimer(c)
        }
    }

    /// Slow-POST guard, evaluated at the end of each rate window: true when the
    /// client sent less than min_body_rate bytes/s while Edge was ready to read.
    /// Windows in which Edge itself paused reading (backpressure from a slow
    /// upstream, no buffers) or still holds unread input do not count.
    func requestBodyTooSlow(_ c: Int32) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        let rate = listenerSettings(c).minBodyRate
        if rate <= 0 || exchanges[xi].request.done { return false }
        let elapsed = nowMs - exchanges[xi].bodyWindowStartMs
        if elapsed < Reactor.bodyRateWindowMs { return false }
        let got = exchanges[xi].request.payloadBytes &- exchanges[xi].bodyWindowStartBytes
        // A client waiting for `100 Continue` that has not come yet is not slow either.
        let waitingForContinue = exchanges[xi].expectContinue
        let excused = exchanges[xi].bodyWindowPaused || socks[i].inHead >= 0 || socks[i].recv != .armed || waitingForContinue
        exchanges[xi].bodyWindowStartMs = nowMs
        exchanges[xi].bodyWindowStartBytes = exchanges[xi].request.payloadBytes
        exchanges[xi].bodyWindowPaused = false
        return !excused && got &* 1000 < UInt64(rate) &* UInt64(elapsed)
    }

    /// A partial request head left in a provided-ring buffer would pin that
    /// buffer for as long as the client trickles (slowloris: thousands of them
    /// would starve the ring). Copy it into a head buffer and give the ring buffer back.
    private func parkPartialHead(_ c: Int32) {
        let i = Int(c)
        let h = socks[i].inHead
        guard h >= 0, buffers.isRing(h), buffers.next[Int(h)] < 0 else { return }
        let n = buffers.count(h)
        let d = buffers.takeHead()
        guard d >= 0 else { return }
        guard n <= buffers.capacity(d) else { buffers.release(d); return }
        buffers.pointer(d).copyMemory(from: buffers.pointer(h) + Int(buffers.start[Int(h)]), byteCount: Int(n))
        buffers.end[Int(d)] = n
        socks[i].inHead = d
        socks[i].inTail = d
        buffers.release(h)
    }

    func clientFailed(_ c: Int32) { abortExchange(c) }

    func abortExchange(_ c: Int32) {
        let x = socks[Int(c)].exchange
        let u = x >= 0 && exchanges[Int(x)].upstream >= 0 ? exchanges[Int(x)].upstream : socks[Int(c)].peer
        if u >= 0 { detach(c, u); closeSock(u) }
        closeSock(c)
    }

    /// Unlinks two sockets (either order): a client's exchange forgets its
    /// upstream, the upstream its exchange, and a relay pair its peers.
    @inline(__always) func detach(_ a: Int32, _ b: Int32) {
        unlink(a)
        unlink(b)
    }

    @inline(__always) private func unlink(_ s: Int32) {
        let i = Int(s)
        socks[i].peer = -1
        if socks[i].kind == .upstream { socks[i].exchange = -1 }
        else if socks[i].exchange >= 0 { exchanges[Int(socks[i].exchange)].upstream = -1 }
    }

    /// Links exchange of client `c` to upstream `u` (the upstream serves that exchange).
    @inline(__always) func link(_ c: Int32, _ u: Int32) {
        let x = socks[Int(c)].exchange
        exchanges[Int(x)].upstream = u
        socks[Int(u)].exchange = x
    }

    /// Client slot of the exchange an upstream socket serves, -1 if none (idle or pooled).
    @inline(__always) func clientOf(_ u: Int32) -> Int32 {
        let x = socks[Int(u)].exchange
        return x >= 0 ? exchanges[Int(x)].client : -1
    }

    /// The exchange stops using its snapshot (and its endpoint's in-flight count).
    func endExchangeView(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        let v = exchanges[xi].view
        if v < 0 { return }
        if exchanges[xi].cache.active { cacheExchangeEnded(xi) }
        let e = exchanges[xi].countedEndpoint
        if e >= 0, let active = views[Int(v)].active { active[Int(e)] -= 1 }
        if e >= 0 { uncountRequest(v, e, retried: exchanges[xi].retryCounted) }
        exchanges[xi].retryCounted = false
        exchanges[xi].countedEndpoint = -1
        exchanges[xi].view = -1
        releaseView(ViewID(raw: v))
    }

    func releaseExchangeBuffers(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        if exchanges[xi].requestHeadBuf >= 0 {
            buffers.release(exchanges[xi].requestHeadBuf)
            exchanges[xi].requestHeadBuf = -1
        }
    }
}
