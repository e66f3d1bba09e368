import CIOUring
import Glibc
import Protocols

/// The client half of the HTTP/1.1 proxy: reading request heads, routing,
/// streaming request bodies, finishing exchanges (keep-alive, pipelining,
/// lingering close). Runs on the reactor thread; no allocation.
extension Reactor {
    func clientReadable(_ c: Int32) {
        let i = Int(c)
        while !socks[i].closing {
            switch exchanges[i].phase {
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
                if !readRequestHead(c) { return }
            case .proxying:
                pumpRequestBody(c)
                if socks[i].closing { return }
                if socks[i].eof {
                    if !exchanges[i].request.done { abortExchange(c); return }
                    exchanges[i].keepAlive = false
                }
                refreshClientTimer(c)
                return
            case .local:
                discardRequestBody(c)
                if socks[i].closing { return }
                if socks[i].eof && !exchanges[i].request.done { closeSock(c); return }
                maybeFinishExchange(c)
                if !socks[i].closing && exchanges[i].phase == .local { refreshClientTimer(c) }
                return
            case .closing:
                releaseInput(c)
                if socks[i].eof { closeSock(c) }
                return
            case .upgraded:
                if socks[i].relayPending { checkRelayReady(c) }
                return
            }
        }
    }

    func clientWritable(_ c: Int32) {
        let i = Int(c)
        if socks[i].closing { return }
        switch exchanges[i].phase {
        case .proxying:
            let u = socks[i].peer
            if u >= 0 && exchanges[i].responseHeadDone {
                upstreamReadable(u)
                if socks[Int(u)].kind == .upstream && !socks[Int(u)].closing { updateRecv(u) }
            }
            if socks[i].closing { return }
            maybeFinishExchange(c)
            if !socks[i].closing && exchanges[i].phase == .proxying { refreshClientTimer(c) }
        case .local:
            maybeFinishExchange(c)
            if !socks[i].closing && exchanges[i].phase == .local { refreshClientTimer(c) }
        case .closing:
            lingerIfDrained(c)
        case .upgraded:
            return
        case .readingHead:
            if socks[i].segCount == 0 && !socks[i].sendInFlight && socks[i].inHead >= 0 { clientReadable(c) }
        }
        // Reading may have paused while input queued behind this exchange.
        if !socks[i].closing && socks[i].kind == .client { updateRecv(c) }
    }

    /// Parses the request head at the front of the input. True when an exchange started.
    private func readRequestHead(_ c: Int32) -> Bool {
        let i = Int(c)
        guard linearizeInput(c) else {
            respondError(c, 503, "no buffer for the request head", cause: "overloaded", consume: -1)
            return false
        }
        let h = socks[i].inHead
        let buf = buffers.bytes(h)
        let listener = listenerSettings(c)
        var head = RequestHead()
        switch HTTP1Parser.parseRequest(buf, limits: listener.limits, state: &exchanges[i].headScan, head: &head, headers: headerTable) {
        case .incomplete:
            if socks[i].eof { closeSock(c); return false }
            if buffers.count(h) >= buffers.capacity(h) {
                respondError(c, 431, "request head too large", cause: nil, consume: -1)
                return false
            }
            if socks[i].timer != .clientHeader { scheduleTimer(c, .clientHeader, afterMs: Int64(listener.headerTimeoutMs)) }
            parkPartialHead(c)
            return false
        case .error(let e):
            stats.bump(stats.clientErrors)
            respondError(c, e.status, e.reason, cause: nil, consume: -1)
            return false
        case .complete:
            startRequest(c, &head, buf, listener)
            return true
        }
    }

    private func startRequest(_ c: Int32, _ head: inout RequestHead, _ buf: UnsafeRawBufferPointer, _ listener: CompiledListener) {
        let i = Int(c)
        stats.bump(stats.requests)
        socks[i].requestsOnConnection &+= 1  // unbounded per keep-alive connection; never read as a limit
        cancelTimer(c)
        var ex = Exchange()
        ex.method = head.methodKind
        ex.versionMinor = head.versionMinor
        ex.keepAlive = head.keepAlive && !draining && !socks[i].listenerGone
        ex.expectContinue = head.expectContinue
        ex.request.reset(head.framing)
        ex.startedMs = nowMs
        ex.bodyWindowStartMs = nowMs
        ex.clientProgressMs = nowMs
        // The request runs on the current snapshot until it ends, whatever reloads happen.
        ex.view = current
        ex.listener = acceptListener[Int(socks[i].acceptSlot)]
        exchanges[i] = ex
        retainView(current)
        if listener.maxBodyBytes > 0, case .contentLength(let n) = head.framing, n > listener.maxBodyBytes {
            respondError(c, 413, "request body larger than max_body", cause: nil, consume: -1)
            return
        }
        var req = requestView(c, &head, buf)
        let r = matchRoute(ex.view, Int(ex.listener), &req)
        if r < 0 {
            respondError(c, 404, "no route matches this request", cause: "route_not_found", consume: head.headLength)
            return
        }
        exchanges[i].route = Int32(r)
        let route = views[Int(ex.view)].routes[r]
        if route.cluster == -1 {
            respondDirect(c, route, consume: head.headLength)
        } else {
            startProxy(c, route, &head, buf, &req)
        }
    }

    @inline(__always) private func matchRoute(_ v: Int32, _ listener: Int, _ req: inout RequestView) -> Int {
        guard let t = views[Int(v)].table else { return -1 }
        return t._withUnsafeGuaranteedRef { $0.match(listener: listener, req, worker: index) }
    }

    /// Views of the parsed head that routing and balancing read.
    func requestView(_ c: Int32, _ head: inout RequestHead, _ buf: UnsafeRawBufferPointer) -> RequestView {
        let target = head.isAbsoluteForm ? head.absolutePath : head.target
        var path = UnsafeRawBufferPointer(start: nil, count: 0)
        var query = UnsafeRawBufferPointer(start: nil, count: 0)
        if target.length > 0, target.end <= buf.count, let base = buf.baseAddress {
            let p = base + Int(target.offset)
            var n = 0
            while n < Int(target.length) && p.load(fromByteOffset: n, as: UInt8.self) != UInt8(ascii: "?") { n += 1 }
            path = UnsafeRawBufferPointer(start: p, count: n)
            if n + 1 < Int(target.length) { query = UnsafeRawBufferPointer(start: p + n + 1, count: Int(target.length) - n - 1) }
        }
        return RequestView(
            host: requestHost(&head, buf), path: path, query: query, method: head.methodKind, head: buf,
            headers: UnsafeBufferPointer(rebasing: UnsafeBufferPointer(headerTable)[0..<min(head.headerCount, headerTable.count)]),
            clientIP: UnsafeRawBufferPointer(start: peerText + Int(c) * 48, count: Int(socks[Int(c)].peerAddrLength)))
    }

    /// Host used for routing: absolute-form authority or the Host field, without port.
    private func requestHost(_ head: inout RequestHead, _ buf: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var r = ByteRange.empty
        if head.isAbsoluteForm { r = head.absoluteAuthority }
        else if head.hostIndex >= 0 && head.hostIndex < head.headerCount { r = headerTable[head.hostIndex].value }
        guard r.length > 0, r.end <= buf.count, let base = buf.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let p = base + Int(r.offset)
        var n = Int(r.length)
        if p.load(as: UInt8.self) == UInt8(ascii: "[") {
            var k = 0
            while k < n && p.load(fromByteOffset: k, as: UInt8.self) != UInt8(ascii: "]") { k += 1 }
            n = min(n, k + 1)
        } else {
            var k = n - 1
            while k >= 0 && p.load(fromByteOffset: k, as: UInt8.self) != UInt8(ascii: ":") { k -= 1 }
            if k >= 0 { n = k }
        }
        return UnsafeRawBufferPointer(start: p, count: n)
    }

    /// Moves request body bytes from the client to its upstream (or drops them
    /// if the upstream is gone), honouring max_body for chunked bodies.
    func pumpRequestBody(_ c: Int32) {
        let i = Int(c)
        if exchanges[i].request.done { return }
        let u = socks[i].peer
        let dst: Int32 = (u >= 0 && !socks[Int(u)].closing) ? u : -1
        let result = pumpBody(from: c, to: dst, state: &exchanges[i].request)
        if let e = result {
            abortRequest(c, status: e.status, reason: e.reason)
            return
        }
        let limit = listenerSettings(c).maxBodyBytes
        if limit > 0 && exchanges[i].request.payloadBytes > limit {
            abortRequest(c, status: 413, reason: "request body larger than max_body")
            return
        }
        if dst >= 0 { flush(dst) }
    }

    /// A request body turned out bad mid-stream: answer if nothing was sent yet, else cut.
    private func abortRequest(_ c: Int32, status: UInt16, reason: StaticString) {
        let i = Int(c)
        stats.bump(stats.clientErrors)
        let u = socks[i].peer
        if u >= 0 { detach(c, u); closeSock(u) }
        if exchanges[i].responseStarted { closeSock(c); return }
        respondError(c, status, reason, cause: nil, consume: -1)
    }

    private func discardRequestBody(_ c: Int32) {
        let i = Int(c)
        if exchanges[i].request.done { return }
        if pumpBody(from: c, to: -1, state: &exchanges[i].request) != nil {
            exchanges[i].keepAlive = false
            exchanges[i].request.done = true
            releaseInput(c)
        }
    }

    /// Ends the exchange once the response is out and the request fully read.
    func maybeFinishExchange(_ c: Int32) {
        let i = Int(c)
        if socks[i].segCount > 0 || socks[i].sendInFlight { return }
        let ex = exchanges[i]
        switch ex.phase {
        case .proxying: if !ex.responseDone { return }
        case .local: break
        case .closing: lingerIfDrained(c); return
        case .readingHead, .upgraded: return
        }
        if !ex.request.done {
            // Body not read (early response or local answer): we cannot find the next request.
            exchanges[i].keepAlive = false
        }
        if !exchanges[i].keepAlive || socks[i].eof {
            exchanges[i].phase = .closing
            lingerIfDrained(c)
            return
        }
        releaseExchangeBuffers(c)
        if socks[i].outBuf >= 0 && buffers.refs[Int(socks[i].outBuf)] == 1 {
            buffers.release(socks[i].outBuf); socks[i].outBuf = -1
        }
        endExchangeView(c)
        exchanges[i] = Exchange()
        if draining { closeSock(c); return }
        scheduleTimer(c, .clientIdle, afterMs: Int64(listenerSettings(c).idleTimeoutMs))
        if socks[i].inHead >= 0 { clientReadable(c) }
    }

    /// Lingering close: after the last response is sent, shut our write side and
    /// discard input for a moment so the client reads the response instead of an RST.
    func lingerIfDrained(_ c: Int32) {
        let i = Int(c)
        if socks[i].segCount > 0 || socks[i].sendInFlight || socks[i].lingering { return }
        socks[i].lingering = true
        let u = socks[i].peer
        if u >= 0 { detach(c, u); closeSock(u) }
        // Nothing unread from the client: a plain close cannot turn into an RST.
        if socks[i].eof || (exchanges[i].request.done && socks[i].inHead < 0) { closeSock(c); return }
        shutdown(socks[i].fd, Int32(SHUT_WR))
        releaseInput(c)
        scheduleTimer(c, .clientLinger, afterMs: draining ? 200 : 2000)
    }

    /// The client just delivered body bytes or took response bytes: restart its
    /// silence timer.
    func refreshClientTimer(_ c: Int32) {
        exchanges[Int(c)].clientProgressMs = nowMs
        scheduleClientTimer(c)
    }

    /// Client timer during an exchange: runs only while we wait on the client
    /// (request body to read, or response bytes it has not taken yet). Fires at
    /// body_timeout of silence, or earlier at the end of a min_body_rate window.
    func scheduleClientTimer(_ c: Int32) {
        let i = Int(c)
        let readingBody = !exchanges[i].request.done
        if readingBody || socks[i].segCount > 0 || socks[i].sendInFlight {
            let l = listenerSettings(c)
            var at = exchanges[i].clientProgressMs + Int64(l.bodyTimeoutMs)
            if readingBody && l.minBodyRate > 0 {
                at = min(at, exchanges[i].bodyWindowStartMs + Reactor.bodyRateWindowMs)
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
        let i = Int(c)
        let rate = listenerSettings(c).minBodyRate
        if rate <= 0 || exchanges[i].request.done { return false }
        let elapsed = nowMs - exchanges[i].bodyWindowStartMs
        if elapsed < Reactor.bodyRateWindowMs { return false }
        let got = exchanges[i].request.payloadBytes &- exchanges[i].bodyWindowStartBytes
        // A client waiting for `100 Continue` that has not come yet is not slow either.
        let waitingForContinue = exchanges[i].expectContinue
        let excused = exchanges[i].bodyWindowPaused || socks[i].inHead >= 0 || socks[i].recv != .armed || waitingForContinue
        exchanges[i].bodyWindowStartMs = nowMs
        exchanges[i].bodyWindowStartBytes = exchanges[i].request.payloadBytes
        exchanges[i].bodyWindowPaused = false
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
        let u = socks[Int(c)].peer
        if u >= 0 { detach(c, u); closeSock(u) }
        closeSock(c)
    }

    @inline(__always) func detach(_ c: Int32, _ u: Int32) {
        socks[Int(c)].peer = -1
        socks[Int(u)].peer = -1
    }

    /// The exchange stops using its snapshot (and its endpoint's in-flight count).
    func endExchangeView(_ c: Int32) {
        let i = Int(c)
        let v = exchanges[i].view
        if v < 0 { return }
        let e = exchanges[i].countedEndpoint
        if e >= 0, let active = views[Int(v)].active { active[Int(e)] -= 1 }
        exchanges[i].countedEndpoint = -1
        exchanges[i].view = -1
        releaseView(v)
    }

    func releaseExchangeBuffers(_ c: Int32) {
        let i = Int(c)
        if exchanges[i].requestHeadBuf >= 0 {
            buffers.release(exchanges[i].requestHeadBuf)
            exchanges[i].requestHeadBuf = -1
        }
    }
}
