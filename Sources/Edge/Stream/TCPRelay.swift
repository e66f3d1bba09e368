import CIOUring
import Glibc
import Protocols

/// L4 relaying: TCP listeners (`protocol: tcp`) and HTTP connections upgraded
/// after a 101. Bytes move socket → pipe → socket with non-blocking splice(2),
/// driven by io_uring readiness polls, so they never enter user space.
/// (IORING_OP_SPLICE on a socket would park an io-wq kernel thread per idle
/// connection, hence readiness + splice instead.) Data that arrived through the
/// recv/buffer path before the switch is flushed with sendmsg first.
extension Reactor {
    // MARK: TCP listener connections

    /// A connection accepted on a TCP listener.
    func startStream(_ c: Int32) {
        let i = Int(c)
        let l = listenerSettings(c)
        beginStreamExchange(c)
        if l.acceptsProxyProtocol {
            // The header is peeked on readiness; the same poll then drives the relay.
            socks[i].proxyHeaderPending = true
            scheduleTimer(c, .proxyHeader, afterMs: Int64(l.proxyHeaderTimeoutMs))
            armPollIn(c)
            return
        }
        streamClientReady(c)
    }

    /// A stream client (tcp or tls listener) holds the snapshot for its whole
    /// set-up: its exchange records the view and the listener.
    func beginStreamExchange(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        let i = Int(c)
        socks[i].isStream = true
        exchanges[xi].view = current
        exchanges[xi].listener = acceptListener[Int(socks[i].acceptSlot)]
        exchanges[xi].phase = .upgraded
        retainView(ViewID(raw: current))
    }

    /// Readiness on a client still waiting for its PROXY header (peeked, so
    /// the bytes behind it stay in the socket): TCP listeners go on to the
    /// relay, TLS ones (https and tls) to the handshake.
    private func streamHeaderReadable(_ c: Int32) {
        switch peekProxyHeader(c) {
        case .incomplete: return
        case .invalid, .overClientLimit: closeSock(c)
        case .complete:
            if socks[Int(c)].transport == .tls { tlsProxyHeaderDone(c) } else { streamClientReady(c) }
        }
    }

    /// Input on a TCP-listener connection before the relay runs.
    func streamReadable(_ c: Int32) {
        let i = Int(c)
        if socks[i].relayPending { checkRelayReady(c); return }
        if socks[i].proxyHeaderPending {
            switch readProxyHeader(c) {
            case .incomplete: if socks[i].eof { closeSock(c) }; return
            case .invalid, .overClientLimit: closeSock(c); return
            case .complete: break
            }
            streamClientReady(c)
            return
        }
        // Bytes before the upstream connected stay queued; EOF before that ends it.
        if socks[i].eof && exchanges[Int(socks[i].exchange)].upstream < 0 { closeSock(c) }
    }

    /// Connects the client's upstream in `cluster` (the listener's, or the SNI route's).
    func streamConnect(_ c: Int32, cluster: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        cancelTimer(c)
        let v = exchanges[xi].view
        var req = RequestView.stream(clientIP: clientAddressText(c))
        let e = cluster >= 0 ? pickEndpoint(v, cluster, &req) : -1
        let u = e >= 0 ? connectUpstream(v, e) : -1
        obsStreamBegin(xi, cluster: cluster, endpoint: e, upstream: u)
        if u < 0 { stats.bump(stats.upstreamErrors); closeSock(c); return }
        if let active = views[Int(v)].active { active[Int(e)] += 1 }
        exchanges[xi].countedEndpoint = e
        countRequest(v, e)
        link(c, u)
    }

    /// Upstream of a stream client connected: optional PROXY header, then the
    /// relay (copy or splice, CopyRelay.swift) straight away (the client's bytes
    /// are still in its socket).
    func streamUpstreamConnected(_ c: Int32, _ u: Int32) {
        stats.bump(stats.upstreamOpened)
        obsConnected(u)
        if !sendProxyHeader(client: c, upstream: u) { relayClose(c); return }
        // `tls:` on the cluster: the ClientHello goes out now; relayed bytes
        // queue behind the handshake (tlsFlush sends them once it is done).
        if let client = upstreamTLSContext(u), !startUpstreamTLS(u, client) {
            if !socks[Int(u)].closing { stats.bump(stats.upstreamErrors) }
            detach(c, u); closeSock(u); closeSock(c)
            return
        }
        cancelTimer(u)
        let settings = listenerSettings(c).relay
        releaseRelaySnapshot(c, u)
        scheduleTimer(c, .relayIdle, afterMs: Int64(streamIdleMs(c)))
        startStreamRelay(c, u, settings)
    }

    // MARK: Switching to splice

    /// Stops recv on both sockets; once queued bytes are flushed, splicing starts.
    func beginRelay(_ a: Int32, _ b: Int32) {
        // From here on the pair is a raw relay: socket-to-socket, no exchange.
        socks[Int(a)].peer = b
        socks[Int(b)].peer = a
        if !transportCanSplice(a) || !transportCanSplice(b) {
            // A record layer (wss through an HTTPS listener, or a TLS upstream):
            // the copy relay carries it, reads keep running, queued bytes go first.
            for s in [a, b] { cancelTimer(s) }
            releaseRelaySnapshot(a, b)
            scheduleTimer(a, .relayIdle, afterMs: Int64(streamIdleMs(a)))
            startCopyRelay(a, b, spliceAfter: 0)
            return
        }
        for s in [a, b] {
            socks[Int(s)].relayPending = true
            cancelTimer(s)
            if socks[Int(s)].recv == .armed { cancelRecv(s) }
        }
        releaseRelaySnapshot(a, b)
        scheduleTimer(a, .relayIdle, afterMs: Int64(streamIdleMs(a)))
        checkRelayReady(a)
    }

    /// A relay needs nothing from its snapshot once both sides are connected:
    /// it keeps its idle timeout and lets the snapshot go, so long-lived relays
    /// and upgraded connections never hold an old config (nor block reloads).
    /// The endpoint's in-flight count ends here too (least_connections counts
    /// requests and connection set-up, not relay lifetime).
    func releaseRelaySnapshot(_ c: Int32, _ u: Int32) {
        obsUpgraded(c)
        socks[Int(c)].relayIdleMs = streamIdleMs(c)
        endExchangeView(c)
        let v = socks[Int(u)].view
        socks[Int(u)].view = -1
        releaseView(ViewID(raw: v))
    }

    /// Flushes bytes received through the buffer ring to the other side; when both
    /// recvs have stopped and nothing is queued, switches to splice.
    func checkRelayReady(_ s: Int32) {
        let p = socks[Int(s)].peer
        guard p >= 0, socks[Int(s)].relayPending else { return }
        let (a, b) = socks[Int(s)].kind == .client ? (s, p) : (p, s)
        for (src, dst) in [(a, b), (b, a)] {
            while socks[Int(src)].inHead >= 0 && segmentRoom(dst) > 0 {
                let h = socks[Int(src)].inHead
                let bytes = buffers.bytes(h)
                if let base = bytes.baseAddress, bytes.count > 0 {
                    enqueue(dst, base, bytes.count, id: h)
                    socks[Int(src)].relayedBytes &+= UInt64(bytes.count)
                }
                popInput(src)
            }
            flush(dst)
        }
        for x in [a, b] {
            let k = socks[Int(x)]
            if k.recv != .idle || k.inHead >= 0 || k.segCount > 0 || k.sendInFlight { return }
        }
        startSplice(a, b)
    }

    func startSplice(_ a: Int32, _ b: Int32) {
        // splice(2) moves raw socket bytes: only plain transports can be spliced.
        // (A record-layer relay will go through the buffer path instead.)
        guard transportCanSplice(a) && transportCanSplice(b) else { relayClose(a); return }
        socks[Int(a)].peer = b
        socks[Int(b)].peer = a
        for s in [a, b] {
            let i = Int(s)
            guard takePipe(s) else { relayClose(a); return }
            socks[i].relayPending = false
            socks[i].relay = true
            armPollIn(s)
        }
        // Bytes may already wait in a socket whose readiness was reported before
        // the relay began (e.g. right behind a PROXY header): poll events are
        // edge-like, so read once now. This also passes on an EOF seen earlier.
        for s in [a, b] where !socks[Int(s)].closing { relayRead(s) }
    }

    // MARK: Splicing

    func armPollIn(_ s: Int32) {
        let i = Int(s)
        if socks[i].pollArmed || socks[i].eof { return }
        ring.pollMultishot(socks[i].fd, events: EDGE_POLL_IN, tag(.pollIn, s))
        socks[i].ops += 1
        socks[i].pollArmed = true
    }

    private func armPollOut(_ s: Int32) {
        let i = Int(s)
        if socks[i].pollOutArmed { return }
        ring.poll(socks[i].fd, events: EDGE_POLL_OUT, tag(.pollOut, s))
        socks[i].ops += 1
        socks[i].pollOutArmed = true
    }

    func onPollIn(_ s: Int32, _ res: Int32, more: Bool) {
        let i = Int(s)
        if !more { socks[i].pollArmed = false }
        if socks[i].closing { return }
        if socks[i].kind == .udpSession {
            udpSessionReadable(s)
            if !socks[i].closing && !more { armPollIn(s) }
            return
        }
        if socks[i].proxyHeaderPending {
            if res < 0 { closeSock(s); return }
            streamHeaderReadable(s)
            // A TLS client past its header reads through recv from here on.
            if !socks[i].closing && !more && socks[i].transport != .tls { armPollIn(s) }
            return
        }
        if socks[i].stream.sniPending {
            if res < 0 { closeSock(s); return }
            sniReadable(s)
            if !socks[i].closing && !more { armPollIn(s) }
            return
        }
        if !socks[i].relay { return }
        if res < 0 && res != -ECANCELED { relayClose(s); return }
        relayRead(s)
        if !socks[i].closing && !more { armPollIn(s) }
    }

    func onPollOut(_ s: Int32, _ res: Int32) {
        let i = Int(s)
        socks[i].pollOutArmed = false
        if socks[i].closing || !socks[i].relay { return }
        let src = socks[i].peer
        if src < 0 { return }
        relayRead(src)  // drains src's pipe into s, then reads more from src
    }

    /// Moves what `s` has to its peer: pipe → peer first, then socket → pipe → peer
    /// until the socket is empty or the peer stops taking bytes.
    func relayRead(_ s: Int32) {
        let i = Int(s)
        let p = socks[i].peer
        guard p >= 0, socks[i].relay, !socks[i].closing else { return }
        var progressed = false
        while true {
            if !drainPipe(s, to: p) { return }
            if socks[i].pipeBytes > 0 { break }  // peer full: POLLOUT armed on it
            if socks[i].eof { break }
            let n = edge_splice(socks[i].fd, socks[i].pipeW, Int(socks[i].pipeCapacity))
            trace("w\(index) splice in slot=\(s) n=\(n) pipe=\(socks[i].pipeBytes)")
            if n > 0 {
                socks[i].pipeBytes += Int32(n)
                socks[i].relayedBytes &+= UInt64(n)
                progressed = true
            } else if n == 0 {
                socks[i].eof = true
            } else if n == -Int(EAGAIN) {
                break
            } else {
                relayClose(s); return
            }
        }
        if progressed { scheduleTimer(socks[i].kind == .client ? s : p, .relayIdle, afterMs: Int64(streamIdleMs(socks[i].kind == .client ? s : p))) }
        // Half-close: this side ended and everything it sent went out.
        if socks[i].eof && socks[i].pipeBytes == 0 && !socks[Int(p)].writeShut {
            socks[Int(p)].writeShut = true
            transportShutdownWrite(p)
        }
        if socks[i].writeShut && socks[Int(p)].writeShut { relayClose(s) }
    }

    /// Pipe of `s` → socket `p`. False if the relay was closed on an error.
    private func drainPipe(_ s: Int32, to p: Int32) -> Bool {
        let i = Int(s)
        while socks[i].pipeBytes > 0 {
            let n = edge_splice(socks[i].pipeR, socks[Int(p)].fd, Int(socks[i].pipeBytes))
            trace("w\(index) splice out slot=\(s)->\(p) n=\(n)")
            if n > 0 {
                socks[i].pipeBytes -= Int32(n)
            } else if n == -Int(EAGAIN) {
                armPollOut(p)
                return true
            } else {
                relayClose(s)
                return false
            }
        }
        return true
    }

    /// Ends a relay: both sockets close, byte counts go to the metrics.
    func relayClose(_ s: Int32) {
        let p = socks[Int(s)].peer
        obsRelayBytes(s, p)
        for x in [s, p] where x >= 0 && !socks[Int(x)].closing {
            stats.bump(stats.relayBytes, Int(truncatingIfNeeded: socks[Int(x)].relayedBytes))
            socks[Int(x)].relayedBytes = 0
        }
        if p >= 0 { detach(s, p); closeSock(p) }
        closeSock(s)
    }

    func streamIdleMs(_ c: Int32) -> Int32 {
        let xi = Int(socks[Int(c)].exchange)
        if socks[Int(c)].relayIdleMs > 0 { return socks[Int(c)].relayIdleMs }
        guard xi >= 0 else { return 300_000 }
        let ex = exchanges[xi]
        guard ex.view >= 0 else { return 300_000 }
        let l = views[Int(ex.view)].listeners[Int(ex.listener)]
        return l.isStream ? l.streamIdleTimeoutMs : l.idleTimeoutMs
    }

    // MARK: Pipes

    private func takePipe(_ s: Int32) -> Bool {
        let i = Int(s)
        if socks[i].pipeR >= 0 { return true }
        if pipeCount > 0 {
            pipeCount -= 1
            socks[i].pipeR = pipePool[Int(pipeCount) * 2]
            socks[i].pipeW = pipePool[Int(pipeCount) * 2 + 1]
        } else {
            var fds: (Int32, Int32) = (-1, -1)
            let rc = withUnsafeMutablePointer(to: &fds) { $0.withMemoryRebound(to: Int32.self, capacity: 2) { edge_pipe($0) } }
            if rc != 0 { return false }
            socks[i].pipeR = fds.0
            socks[i].pipeW = fds.1
        }
        socks[i].pipeCapacity = max(4096, edge_pipe_size(socks[i].pipeR))
        socks[i].pipeBytes = 0
        return true
    }

    /// Empty pipes go back to the per-reactor pool; others are closed.
    func releasePipe(_ s: Int32) {
        let i = Int(s)
        guard socks[i].pipeR >= 0 else { return }
        if socks[i].pipeBytes == 0 && pipeCount < Reactor.maxPooledPipes {
            pipePool[Int(pipeCount) * 2] = socks[i].pipeR
            pipePool[Int(pipeCount) * 2 + 1] = socks[i].pipeW
            pipeCount += 1
        } else {
            close(socks[i].pipeR); close(socks[i].pipeW)
        }
        socks[i].pipeR = -1; socks[i].pipeW = -1; socks[i].pipeBytes = 0
    }
}
