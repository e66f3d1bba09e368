import CNGHTTP2
import Glibc
import Protocols

/// One HTTP/2 connection's state beside its socket slot: the nghttp2 session,
/// the streams (exchanges) it carries, the header block being received and the
/// abuse counters. Plain data in a per-worker slab indexed by client slot.
struct H2Conn {
    var session: OpaquePointer? = nil
    /// Listener limits copied when the connection turned HTTP/2.
    var settings = CompiledHTTP2()
    /// First exchange of the intrusive list of open streams (H2Stream.next).
    var firstStream: Int32 = -1
    var openStreams: Int32 = 0
    var block = H2Block()
    /// Token buckets: glitches and streams reset before their response.
    var glitchTokens: Int32 = 0
    var resetTokens: Int32 = 0
    var refillMs: Int64 = 0
    /// When the client last moved a stream forward (frames of a stream, bytes taken).
    var progressMs: Int64 = 0
    /// Inside mem_recv/mem_send: the session may not be deleted now.
    var busy = false
    /// Closed while busy: delete the session once the call returns.
    var doomed = false
    /// GOAWAY queued as the last thing: shut down once output drained.
    var closeWhenFlushed = false
    /// Queued in `HTTP2Tables.kicks` for a flush (H2UpstreamPool.swift).
    var kickPending = false
}

/// Per-worker HTTP/2 tables, created on the first HTTP/2 connection.
final class HTTP2Tables {
    let conns: UnsafeMutablePointer<H2Conn>
    let contexts: UnsafeMutablePointer<H2Context>
    let streams: UnsafeMutablePointer<H2Stream>
    let account: UnsafeMutablePointer<H2MemAccount>
    /// Scratch for one response head: nghttp2 copies names and values on submit.
    static let maxFields = 256
    let nv: UnsafeMutablePointer<nghttp2_nv>
    let scratch: UnsafeMutablePointer<UInt8>
    static let scratchBytes = 65_536
    let callbacks: OpaquePointer?
    /// Upstream HTTP/2 connections (by upstream slot), their pool list and callbacks.
    let upConns: UnsafeMutablePointer<H2UpConn>
    var upFirst: Int32 = -1
    let clientCallbacks: OpaquePointer?
    /// Downstream connections waiting for a flush (see `h2KickDown`).
    let kicks: UnsafeMutablePointer<Int32>
    var kickCount = 0
    let kickCapacity: Int

    init(capacity: Int) {
        upConns = lazyArray(capacity)
        clientCallbacks = H2ClientSession.makeCallbacks()
        kickCapacity = max(capacity, 1)
        kicks = .allocate(capacity: max(capacity, 1))
        conns = lazyArray(capacity)
        contexts = lazyArray(capacity)
        streams = lazyArray(capacity)
        account = .allocate(capacity: 1)
        account.initialize(to: H2MemAccount())
        nv = .allocate(capacity: HTTP2Tables.maxFields)
        scratch = .allocate(capacity: HTTP2Tables.scratchBytes)
        callbacks = H2Session.makeCallbacks()
    }
}

/// The client preface (RFC 9113 §3.4) that opens a prior-knowledge connection.
private let h2Preface: StaticString = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

extension Reactor {
    /// First bytes of a connection on a listener with `http2: { cleartext: true }`:
    /// the client preface turns it into an HTTP/2 connection. True when handled
    /// (HTTP/2 now, or waiting for the rest of a preface).
    func h2TakeOver(_ c: Int32) -> Bool {
        let i = Int(c)
        let negotiated = socks[i].transport == .tls && tls.sessions[i].alpnH2
        guard listenerSettings(c).http2.cleartext || negotiated, socks[i].inHead >= 0 else { return false }
        let buf = buffers.bytes(socks[i].inHead)
        let n = min(buf.count, h2Preface.utf8CodeUnitCount)
        for k in 0..<n where buf[k] != h2Preface.utf8Start[k] { return false }
        if n < h2Preface.utf8CodeUnitCount {
            if socks[i].eof { closeSock(c); return true }
            // A preface split across reads: wait (the header timeout runs).
            return buffers.next[Int(socks[i].inHead)] < 0
        }
        h2Start(c)
        return true
    }

    func h2Start(_ c: Int32) {
        let i = Int(c)
        let t = http2
        let settings = listenerSettings(c).http2
        t.contexts[i] = H2Context(reactor: Unmanaged.passUnretained(self), slot: c)
        t.conns[i] = H2Conn()
        t.conns[i].settings = settings
        t.conns[i].glitchTokens = settings.maxGlitches
        t.conns[i].resetTokens = settings.resetBurst
        t.conns[i].refillMs = nowMs
        t.conns[i].progressMs = nowMs
        guard let s = H2Session.make(t.callbacks, t.contexts + i, t.account, settings) else {
            closeSock(c)
            return
        }
        t.conns[i].session = s
        socks[i].http2 = true
        socks[i].requestsOnConnection = 1
        stats.http2.connections.wrappingIncrement(ordering: .relaxed)
        cancelTimer(c)
        h2Readable(c)
    }

    /// Client bytes → nghttp2; its output → the socket.
    func h2Readable(_ c: Int32) {
        defer { h2DrainKicks() }
        let i = Int(c)
        let t = http2
        if socks[i].lingering {
            releaseInput(c)
            if socks[i].eof { closeSock(c) }
            return
        }
        while !socks[i].closing, let s = t.conns[i].session, socks[i].inHead >= 0 {
            let h = socks[i].inHead
            let buf = buffers.bytes(h)
            t.conns[i].busy = true
            let rv = nghttp2_session_mem_recv(s, buf.baseAddress?.assumingMemoryBound(to: UInt8.self), buf.count)
            t.conns[i].busy = false
            if h2ReapDoomed(c) { return }
            if rv < 0 {
                h2Fatal(c, Int32(truncatingIfNeeded: rv))
                return
            }
            consumeInput(c, buf.count)
        }
        if socks[i].closing { return }
        if socks[i].eof {
            // The client closed: nothing it started can be answered any more.
            closeSock(c)
            return
        }
        h2Flush(c)
    }

    /// A send completed: more of nghttp2's output fits now.
    func h2Writable(_ c: Int32) {
        defer { h2DrainKicks() }
        let i = Int(c)
        if socks[i].closing { return }
        http2.conns[i].progressMs = nowMs
        if http2.conns[i].closeWhenFlushed && socks[i].segCount == 0 && !socks[i].sendInFlight {
            h2Linger(c)
            return
        }
        h2Flush(c)
    }

    /// Copies what nghttp2 has to send into head buffers and sends it. The
    /// pointer mem_send returns is valid only until the next call, so every
    /// chunk is copied at once; output stops while the segment ring is nearly
    /// full (resumed by `h2Writable`), which bounds memory per connection.
    func h2Flush(_ c: Int32) {
        let i = Int(c)
        let t = http2
        guard !socks[i].closing, let s = t.conns[i].session else { return }
        while segmentRoom(c) >= 4 {
            var p: UnsafePointer<UInt8>? = nil
            t.conns[i].busy = true
            let n = nghttp2_session_mem_send(s, &p)
            t.conns[i].busy = false
            if h2ReapDoomed(c) { return }
            if n < 0 { h2Fatal(c, Int32(truncatingIfNeeded: n)); return }
            guard n > 0, let p else { break }
            if !copyOut(c, UnsafeRawPointer(p), n) { closeSock(c); return }
        }
        flush(c)
        if socks[i].closing { return }
        if nghttp2_session_want_read(s) == 0 && nghttp2_session_want_write(s) == 0 {
            t.conns[i].closeWhenFlushed = true
        }
        if t.conns[i].closeWhenFlushed && socks[i].segCount == 0 && !socks[i].sendInFlight {
            h2Linger(c)
            return
        }
        h2ArmTimer(c)
        stats.http2.sessionBytes.store(t.account.pointee.live, ordering: .relaxed)
    }

    /// Appends bytes to a socket's output, copying into its head buffer (a
    /// fresh one when full) and growing the last segment when contiguous. False
    /// when no buffer or segment is left.
    func copyOut(_ slot: Int32, _ src: UnsafeRawPointer, _ count: Int) -> Bool {
        let i = Int(slot)
        var from = src
        var left = count
        while left > 0 {
            let id = outBuffer(slot)
            if id < 0 { return false }
            let room = Int(buffers.capacity(id) - buffers.end[Int(id)])
            if room == 0 {
                let fresh = buffers.takeHead()
                if fresh < 0 { return false }
                buffers.release(id)
                socks[i].outBuf = fresh
                continue
            }
            let take = min(room, left)
            let at = buffers.pointer(id) + Int(buffers.end[Int(id)])
            at.copyMemory(from: from, byteCount: take)
            buffers.end[Int(id)] += Int32(take)
            var merged = false
            if socks[i].segCount > 0 {
                let k = i * Reactor.segmentsPerSlot + ((Int(socks[i].segFirst) + Int(socks[i].segCount) - 1) & (Reactor.segmentsPerSlot - 1))
                if segments[k].id == id, let p = segments[k].pointer, p + Int(segments[k].length) == UnsafeRawPointer(at),
                   Int(segments[k].length) + take < Int(Int32.max) {
                    segments[k].length += Int32(take)
                    merged = true
                }
            }
            if !merged {
                if segmentRoom(slot) < 1 { return false }
                enqueue(slot, at, take, id: id)
            }
            from += take
            left -= take
        }
        return true
    }

    /// nghttp2 gave up on the session (flood, too many CONTINUATIONs, NOMEM,
    /// callback failure): it sends nothing more, so Edge writes the GOAWAY
    /// frame itself (RFC 9113 §6.8: 9-byte header, last stream id, code) and closes.
    func h2Fatal(_ c: Int32, _ error: Int32) {
        let i = Int(c)
        var code = NGHTTP2_INTERNAL_ERROR.rawValue
        switch error {
        case NGHTTP2_ERR_FLOODED.rawValue:
            stats.http2.flood.wrappingIncrement(ordering: .relaxed)
            code = NGHTTP2_ENHANCE_YOUR_CALM.rawValue
        case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue:
            stats.http2.continuationFlood.wrappingIncrement(ordering: .relaxed)
            code = NGHTTP2_ENHANCE_YOUR_CALM.rawValue
        case NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue:
            code = NGHTTP2_PROTOCOL_ERROR.rawValue
        default:
            stats.http2.protocolErrors.wrappingIncrement(ordering: .relaxed)
        }
        var last: UInt32 = 0
        if let s = http2.conns[i].session { last = UInt32(bitPattern: nghttp2_session_get_last_proc_stream_id(s)) & 0x7FFF_FFFF }
        var frame: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 8, 0x7, 0, 0, 0, 0, 0,
             UInt8(last >> 24), UInt8((last >> 16) & 0xFF), UInt8((last >> 8) & 0xFF), UInt8(last & 0xFF),
             UInt8(code >> 24), UInt8((code >> 16) & 0xFF), UInt8((code >> 8) & 0xFF), UInt8(code & 0xFF))
        releaseInput(c)
        let ok = withUnsafeBytes(of: &frame) { copyOut(c, $0.baseAddress.unsafelyUnwrapped, 17) }
        if !ok { closeSock(c); return }
        h2CloseAllStreams(c)
        h2DeleteSession(c)
        http2.conns[i].closeWhenFlushed = true
        flush(c)
        if socks[i].segCount == 0 && !socks[i].sendInFlight { h2Linger(c) }
    }

    /// Ends the connection politely: GOAWAY with `code`, then close once it is out.
    func h2GoAway(_ c: Int32, _ code: UInt32) {
        guard let s = http2.conns[Int(c)].session else { return }
        _ = nghttp2_session_terminate_session(s, code)
        http2.conns[Int(c)].closeWhenFlushed = true
    }

    /// After the last frame: shut our write side, read and drop until the client
    /// closes (so the GOAWAY is read, not lost to an RST), at most a moment.
    func h2Linger(_ c: Int32) {
        let i = Int(c)
        if socks[i].lingering || socks[i].closing { return }
        socks[i].lingering = true
        h2CloseAllStreams(c)
        if socks[i].eof { closeSock(c); return }
        transportShutdownWrite(c)
        releaseInput(c)
        scheduleTimer(c, .clientLinger, afterMs: draining ? 200 : 1000)
    }

    /// The connection's slot is closing: every stream ends, the session goes.
    func h2ConnectionClosing(_ c: Int32) {
        if socks[Int(c)].kind == .upstream { h2upClosing(c); return }
        h2CloseAllStreams(c)
        h2DeleteSession(c)
    }

    private func h2DeleteSession(_ c: Int32) {
        let i = Int(c)
        guard let s = http2.conns[i].session else { return }
        if http2.conns[i].busy { http2.conns[i].doomed = true; return }
        http2.conns[i].session = nil
        if http2.conns[i].block.buf >= 0 { buffers.release(http2.conns[i].block.buf); http2.conns[i].block.buf = -1 }
        nghttp2_session_del(s)
        stats.http2.sessionBytes.store(http2.account.pointee.live, ordering: .relaxed)
    }

    /// True (and the session deleted) if the connection closed during the call just made.
    @inline(__always) private func h2ReapDoomed(_ c: Int32) -> Bool {
        let i = Int(c)
        guard http2.conns[i].doomed else { return false }
        http2.conns[i].doomed = false
        h2DeleteSession(c)
        return true
    }

    /// A glitch: a frame that does no useful work (empty DATA, PING/SETTINGS
    /// beyond need, PRIORITY, an invalid frame). Too many → GOAWAY ENHANCE_YOUR_CALM.
    func h2Glitch(_ c: Int32) {
        let i = Int(c)
        h2Refill(c)
        http2.conns[i].glitchTokens -= 1
        if http2.conns[i].glitchTokens < 0 && !http2.conns[i].closeWhenFlushed {
            stats.http2.glitchLimit.wrappingIncrement(ordering: .relaxed)
            h2GoAway(c, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        }
    }

    /// A stream the client reset before its response (Rapid Reset, CVE-2023-44487).
    func h2EarlyReset(_ c: Int32) {
        let i = Int(c)
        stats.http2.earlyResets.wrappingIncrement(ordering: .relaxed)
        h2Refill(c)
        http2.conns[i].resetTokens -= 1
        if http2.conns[i].resetTokens < 0 && !http2.conns[i].closeWhenFlushed {
            stats.http2.rapidReset.wrappingIncrement(ordering: .relaxed)
            h2GoAway(c, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        }
    }

    private func h2Refill(_ c: Int32) {
        let i = Int(c)
        let elapsed = nowMs - http2.conns[i].refillMs
        if elapsed < 100 { return }
        let s = http2.conns[i].settings
        let g = Int64(http2.conns[i].glitchTokens) + elapsed * Int64(s.glitchRate) / 1000
        let r = Int64(http2.conns[i].resetTokens) + elapsed * Int64(s.resetRate) / 1000
        http2.conns[i].glitchTokens = Int32(min(g, Int64(s.maxGlitches)))
        http2.conns[i].resetTokens = Int32(min(r, Int64(s.resetBurst)))
        http2.conns[i].refillMs = nowMs
    }

    /// Idle (no stream): the listener's idle timeout. Streams open: body_timeout
    /// after the client last moved one forward; on expiry `h2Timer` checks
    /// whether a stream really waits on the client.
    func h2ArmTimer(_ c: Int32) {
        let i = Int(c)
        if socks[i].lingering || socks[i].closing { return }
        let l = listenerSettings(c)
        if http2.conns[i].openStreams == 0 && http2.conns[i].block.buf < 0 {
            scheduleTimer(c, .clientIdle, afterMs: Int64(l.idleTimeoutMs))
        } else {
            let at = http2.conns[i].progressMs + Int64(l.bodyTimeoutMs)
            scheduleTimer(c, .clientBody, afterMs: max(at - nowMs, 1))
        }
    }

    func h2Timer(_ c: Int32, _ kind: TimerKind) {
        if socks[Int(c)].kind == .upstream { h2upTimer(c, kind); return }
        defer { h2DrainKicks() }
        let i = Int(c)
        switch kind {
        case .clientLinger:
            closeSock(c)
        case .clientIdle:
            h2GoAway(c, NGHTTP2_NO_ERROR.rawValue)
            h2Flush(c)
        case .clientBody:
            let l = listenerSettings(c)
            if nowMs - http2.conns[i].progressMs < Int64(l.bodyTimeoutMs) { h2ArmTimer(c); return }
            if h2WaitsOnClient(c) {
                // Zero window, a body that never comes, a header block never finished.
                stats.http2.stalls.wrappingIncrement(ordering: .relaxed)
                h2GoAway(c, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
                h2Flush(c)
                if !socks[i].closing && !socks[i].lingering {
                    // Output may be stuck behind the client's TCP window too: close soon regardless.
                    scheduleTimer(c, .clientLinger, afterMs: 1000)
                }
            } else {
                http2.conns[i].progressMs = nowMs
                h2ArmTimer(c)
            }
        default:
            closeSock(c)
        }
    }

    /// Whether any stream waits for the client: its request body, a window
    /// update for its response, or the rest of a header block.
    private func h2WaitsOnClient(_ c: Int32) -> Bool {
        let i = Int(c)
        guard let s = http2.conns[i].session else { return false }
        if http2.conns[i].block.buf >= 0 { return true }
        if socks[i].segCount > 0 { return true }
        var x = http2.conns[i].firstStream
        while x >= 0 {
            let st = http2.streams[Int(x)]
            if !st.requestEnded { return true }
            if st.responseSubmitted && !st.responseSent {
                if nghttp2_session_get_stream_remote_window_size(s, st.id) <= 0 || nghttp2_session_get_remote_window_size(s) <= 0 { return true }
            }
            x = st.next
        }
        return false
    }
}

extension Reactor {
    /// Drain: a client connection gets GOAWAY NO_ERROR naming the last stream
    /// Edge took (RFC 9113 §6.8), its open streams finish, then it closes; an
    /// idle upstream HTTP/2 connection closes now, a busy one after its streams.
    func h2Drain(_ slot: Int32) {
        let i = Int(slot)
        if socks[i].kind == .upstream {
            if http2.upConns[i].streams == 0 { h2upClose(slot, 502, "draining", cause: "upstream_closed") }
            else { http2.upConns[i].goingAway = true }
            return
        }
        guard socks[i].kind == .client, let s = http2.conns[i].session, !http2.conns[i].closeWhenFlushed, !socks[i].lingering else { return }
        let last = nghttp2_session_get_last_proc_stream_id(s)
        _ = nghttp2_submit_goaway(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, NGHTTP2_NO_ERROR.rawValue, nil, 0)
        h2Flush(slot)
        h2DrainKicks()
    }
}
