import CNGHTTP2
import Glibc

/// One multiplexed HTTP/2 connection to an endpoint of a `protocol: http2`
/// cluster, beside its upstream socket slot (same index). It carries many
/// exchanges at once (an intrusive list through `H2Stream.upNext`); the pool
/// is the per-worker list of these connections (`HTTP2Tables.upFirst`).
struct H2UpConn {
    /// Response bytes a stream may have in flight towards Edge before the
    /// downstream took them (SETTINGS_INITIAL_WINDOW_SIZE sent upstream).
    static let streamWindow: Int32 = 262_144
    static let connectionWindow: Int32 = 4 << 20
    /// Streams the pool places on a connection before its SETTINGS arrived
    /// (nghttp2 sends one and holds the rest until the real limit is known).
    static let assumedStreams: UInt32 = 100

    var session: OpaquePointer? = nil
    var live = false
    /// GOAWAY received (or sent): no new streams; closes once its streams end.
    var goingAway = false
    var settingsSeen = false
    var streams: Int32 = 0
    var firstStream: Int32 = -1
    /// Pool list of this worker.
    var prev: Int32 = -1
    var next: Int32 = -1
    /// Inside mem_recv/mem_send; `doomed`: closed meanwhile; `flushAgain`: output queued meanwhile.
    var busy = false
    var doomed = false
    var flushAgain = false
}

extension Reactor {
    /// Whether upstream slot `u` is a multiplexed HTTP/2 connection.
    @inline(__always) func h2upOwns(_ u: Int32) -> Bool {
        socks[Int(u)].http2 && socks[Int(u)].kind == .upstream
    }

    /// Streams connection `u` may still open: the upstream's
    /// SETTINGS_MAX_CONCURRENT_STREAMS (100 assumed until it arrives) minus those open.
    func h2upFreeStreams(_ u: Int32) -> Int {
        let t = http2
        guard let s = t.upConns[Int(u)].session else { return 0 }
        let limit = t.upConns[Int(u)].settingsSeen
            ? nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) : H2UpConn.assumedStreams
        return Int(limit) - Int(t.upConns[Int(u)].streams)
    }

    /// A connection to endpoint `e` of view `v` with a free stream, or a new
    /// one (connecting; requests queue in its session until it is up); -1 on failure.
    func h2upAcquire(_ v: Int32, _ e: Int32) -> Int32 {
        let t = http2
        var u = t.upFirst
        while u >= 0 {
            let ui = Int(u)
            if socks[ui].view == v && socks[ui].endpoint == e && !socks[ui].closing && !socks[ui].eof
                && !t.upConns[ui].goingAway && t.upConns[ui].session != nil && h2upFreeStreams(u) > 0 {
                return u
            }
            u = t.upConns[ui].next
        }
        let n = connectUpstream(v, e)
        if n < 0 { return -1 }
        let ni = Int(n)
        t.contexts[ni] = H2Context(reactor: Unmanaged.passUnretained(self), slot: n)
        t.upConns[ni] = H2UpConn()
        guard let s = H2ClientSession.make(t.clientCallbacks, t.contexts + ni, t.account) else {
            closeSock(n)
            return -1
        }
        t.upConns[ni].session = s
        t.upConns[ni].live = true
        socks[ni].http2 = true
        socks[ni].exchange = -1
        t.upConns[ni].next = t.upFirst
        if t.upFirst >= 0 { t.upConns[Int(t.upFirst)].prev = n }
        t.upFirst = n
        stats.http2.upstreamConnections.wrappingIncrement(ordering: .relaxed)
        return n
    }

    func h2upConnected(_ u: Int32, _ res: Int32) {
        let ui = Int(u)
        if res < 0 {
            stats.bump(stats.upstreamErrors)
            if res == -ECONNREFUSED { h2upClose(u, 502, "upstream refused the connection", cause: "upstream_connect_refused") }
            else { h2upClose(u, 502, "upstream connection failed", cause: "upstream_connect_failed") }
            h2DrainKicks()
            return
        }
        socks[ui].connected = true
        connectionEstablished(u)
        stats.bump(stats.upstreamOpened)
        cancelTimer(u)
        armRecv(u)
        // Over TLS the queued preface and requests go out once the handshake is done (Transport/TLS).
        if let client = upstreamTLSContext(u), !startUpstreamTLS(u, client) {
            if !socks[ui].closing { h2upClose(u, 502, "upstream TLS handshake failed", cause: "upstream_tls_failure") }
            h2DrainKicks()
            return
        }
        h2upFlush(u)
        h2upArmTimer(u)
        h2DrainKicks()
    }

    /// Upstream bytes → nghttp2 (responses of every stream on the connection).
    func h2upReadable(_ u: Int32) {
        let ui = Int(u)
        let t = http2
        while !socks[ui].closing, let s = t.upConns[ui].session, socks[ui].inHead >= 0 {
            let buf = buffers.bytes(socks[ui].inHead)
            t.upConns[ui].busy = true
            let rv = nghttp2_session_mem_recv(s, buf.baseAddress?.assumingMemoryBound(to: UInt8.self), buf.count)
            t.upConns[ui].busy = false
            if h2upReapDoomed(u) { h2DrainKicks(); return }
            if rv < 0 {
                stats.bump(stats.upstreamErrors)
                h2upClose(u, 502, "upstream sent invalid HTTP/2", cause: "upstream_bad_response")
                h2DrainKicks()
                return
            }
            consumeInput(u, buf.count)
        }
        if socks[ui].closing { h2DrainKicks(); return }
        if socks[ui].eof {
            if socks[ui].readError == ECONNRESET { h2upClose(u, 502, "upstream reset the connection", cause: "upstream_reset") }
            else { h2upClose(u, 502, "upstream closed the connection", cause: "upstream_closed") }
            h2DrainKicks()
            return
        }
        h2upFlush(u)
        h2upArmTimer(u)
        h2DrainKicks()
    }

    func h2upWritable(_ u: Int32) {
        if socks[Int(u)].closing { return }
        h2upFlush(u)
        h2DrainKicks()
    }

    func h2upFailed(_ u: Int32) {
        stats.bump(stats.upstreamErrors)
        h2upClose(u, 502, "upstream reset the connection", cause: "upstream_reset")
        h2DrainKicks()
    }

    /// nghttp2's output for the upstream → its socket (copied: the pointer is
    /// valid only until the next call). Nested calls (from a callback of this
    /// very session) only mark that another round is due.
    func h2upFlush(_ u: Int32) {
        let ui = Int(u)
        let t = http2
        if t.upConns[ui].busy { t.upConns[ui].flushAgain = true; return }
        guard !socks[ui].closing, t.upConns[ui].session != nil else { return }
        repeat {
            t.upConns[ui].flushAgain = false
            while segmentRoom(u) >= 4, let s = t.upConns[ui].session {
                var p: UnsafePointer<UInt8>? = nil
                t.upConns[ui].busy = true
                let n = nghttp2_session_mem_send(s, &p)
                t.upConns[ui].busy = false
                if h2upReapDoomed(u) { return }
                if n < 0 {
                    h2upClose(u, 502, "upstream HTTP/2 session failed", cause: "upstream_reset")
                    return
                }
                guard n > 0, let p else { break }
                if !copyOut(u, UnsafeRawPointer(p), n) {
                    h2upClose(u, 503, "no buffer for the upstream connection", cause: "overloaded")
                    return
                }
            }
        } while t.upConns[ui].flushAgain && segmentRoom(u) >= 4
        if socks[ui].connected { flush(u) }
        stats.http2.sessionBytes.store(t.account.pointee.live, ordering: .relaxed)
    }

    /// Connected with streams: the earliest stream deadline. Without streams:
    /// the cluster's idle timeout (a going-away connection closes now).
    func h2upArmTimer(_ u: Int32) {
        let ui = Int(u)
        let t = http2
        guard socks[ui].connected, !socks[ui].closing else { return }
        if t.upConns[ui].streams == 0 {
            if t.upConns[ui].goingAway || draining || socks[ui].view != current { h2upClose(u, 502, "upstream going away", cause: "upstream_closed"); return }
            let v = socks[ui].view, e = socks[ui].endpoint
            var idle: Int64 = 60_000
            if v >= 0 && e >= 0 && Int(e) < views[Int(v)].endpoints.count {
                let view = views[Int(v)]
                idle = Int64(view.clusters[Int(view.endpoints[Int(e)].cluster)].idleTimeoutMs)
            }
            scheduleTimer(u, .upstreamIdle, afterMs: idle)
            return
        }
        var soonest: Int64 = .max
        var x = t.upConns[ui].firstStream
        while x >= 0 {
            let d = t.streams[Int(x)].up.deadlineMs
            if d > 0 && d < soonest { soonest = d }
            x = t.streams[Int(x)].up.next
        }
        if soonest == .max { cancelTimer(u) } else { scheduleTimer(u, .upstreamResponse, afterMs: max(soonest - nowMs, 1)) }
    }

    func h2upTimer(_ u: Int32, _ kind: TimerKind) {
        let ui = Int(u)
        let t = http2
        switch kind {
        case .upstreamConnect:
            stats.bump(stats.upstreamErrors)
            h2upClose(u, 504, "upstream connect timed out", cause: "upstream_connect_timeout")
        case .upstreamIdle:
            h2upClose(u, 502, "upstream idle", cause: "upstream_closed")
        default:
            // Streams past their deadline (route timeout or grpc-timeout) end with 504 / DEADLINE_EXCEEDED.
            var x = t.upConns[ui].firstStream
            while x >= 0 {
                let next = t.streams[Int(x)].up.next
                let d = t.streams[Int(x)].up.deadlineMs
                if d > 0 && d <= nowMs {
                    stats.bump(stats.upstreamErrors)
                    let c = exchanges[Int(x)].client
                    h2FailStream(x, 504, "upstream did not respond in time", cause: "upstream_timeout")
                    h2KickDown(c)
                }
                x = next
            }
            h2upFlush(u)
            h2upArmTimer(u)
        }
        h2DrainKicks()
    }

    /// Ends the connection: every stream on it fails with `status` (its gRPC
    /// mapping for gRPC streams), then the socket closes.
    func h2upClose(_ u: Int32, _ status: UInt16, _ reason: StaticString, cause: StaticString) {
        let ui = Int(u)
        let t = http2
        while t.upConns[ui].firstStream >= 0 {
            let x = t.upConns[ui].firstStream
            let c = exchanges[Int(x)].client
            h2upUnlink(x)
            h2FailStream(x, status, reason, cause: cause)
            h2KickDown(c)
        }
        closeSock(u)
    }

    /// From closeSock: the session goes (streams were failed by `h2upClose`,
    /// or fail here if the socket closed another way).
    func h2upClosing(_ u: Int32) {
        let ui = Int(u)
        let t = http2
        while t.upConns[ui].firstStream >= 0 {
            let x = t.upConns[ui].firstStream
            let c = exchanges[Int(x)].client
            h2upUnlink(x)
            h2FailStream(x, 502, "upstream connection closed", cause: "upstream_closed")
            h2KickDown(c)
        }
        if t.upConns[ui].live {
            t.upConns[ui].live = false
            let prev = t.upConns[ui].prev, next = t.upConns[ui].next
            if prev >= 0 { t.upConns[Int(prev)].next = next } else if t.upFirst == u { t.upFirst = next }
            if next >= 0 { t.upConns[Int(next)].prev = prev }
            t.upConns[ui].prev = -1
            t.upConns[ui].next = -1
        }
        socks[ui].http2 = false
        if t.upConns[ui].busy { t.upConns[ui].doomed = true; return }
        h2upDeleteSession(u)
    }

    private func h2upDeleteSession(_ u: Int32) {
        let t = http2
        guard let s = t.upConns[Int(u)].session else { return }
        t.upConns[Int(u)].session = nil
        nghttp2_session_del(s)
    }

    @inline(__always) private func h2upReapDoomed(_ u: Int32) -> Bool {
        let t = http2
        guard t.upConns[Int(u)].doomed else { return false }
        t.upConns[Int(u)].doomed = false
        h2upDeleteSession(u)
        return true
    }

    // MARK: Downstream kicks

    /// Downstream connection `c` has new output (a response head, body bytes,
    /// window updates). Flushed now unless its session is inside a call, then
    /// queued for `h2DrainKicks` (a session's mem_send never nests in itself).
    func h2KickDown(_ c: Int32) {
        let ci = Int(c)
        let t = http2
        guard c >= 0, socks[ci].http2, socks[ci].kind == .client, t.conns[ci].session != nil else { return }
        if t.conns[ci].kickPending { return }
        t.conns[ci].kickPending = true
        if t.kickCount < t.kickCapacity {
            t.kicks[t.kickCount] = c
            t.kickCount += 1
        }
    }

    /// Flushes every downstream connection kicked while busy.
    func h2DrainKicks() {
        guard let t = http2Storage else { return }
        var k = 0
        while k < t.kickCount {
            let c = t.kicks[k]
            k += 1
            let ci = Int(c)
            t.conns[ci].kickPending = false
            if socks[ci].http2 && socks[ci].kind == .client && !t.conns[ci].busy && t.conns[ci].session != nil { h2Flush(c) }
        }
        t.kickCount = 0
    }
}
