import COpenSSL
import Glibc

/// DTLS listeners (`protocol: dtls`): UDP sessions (Stream/UDPProxy.swift)
/// whose client side is DTLS 1.2. A datagram from an unknown address goes
/// through `DTLSv1_listen` on the listener's one listen `SSL`: a ClientHello
/// without a valid cookie gets a HelloVerifyRequest and nothing is kept;
/// anything else is dropped. Only a ClientHello echoing a valid cookie opens
/// a session (its upstream socket connected like a UDP session's) and takes
/// the listen `SSL` over. Retransmissions run on the timer wheel
/// (`DTLSv1_get_timeout` / `DTLSv1_handle_timeout`) until the handshake is done
/// or `tls.handshake_timeout` passes; then the session idles out after
/// `udp.session_timeout` like a UDP one. Each decrypted datagram becomes one
/// datagram to the upstream, and each upstream datagram one DTLS record back.
extension Reactor {
    static let dtlsReadBatch = 64
    /// Largest plaintext one DTLS record carries (OpenSSL's max send fragment).
    static let dtlsMaxPlaintext = 16384

    func dtlsTables() -> DTLSTables {
        if let d = dtls { return d }
        let d = DTLSTables(capacity: Int(capacity))
        dtls = d
        return d
    }

    /// A datagram (`n` bytes in `udpScratch`) from `from` on DTLS listener accept slot `a`.
    func dtlsDatagram(_ a: Int, _ from: inout sockaddr_storage, _ len: socklen_t, _ n: Int, _ l: CompiledListener) {
        let d = dtlsTables()
        let s = udpLookup(a, &from, len)
        if s >= 0 {
            let i = Int(s)
            guard d.ssl[i] != nil else { closeSock(s); return }
            d.peers[i].input = UnsafeRawPointer(udpScratch)
            d.peers[i].inputLength = n
            if d.established[i] { dtlsReadRecords(s, d) } else { dtlsHandshake(s, d) }
            d.peers[i].input = nil
            if !socks[i].closing && d.established[i] { scheduleTimer(s, .udpIdle, afterMs: Int64(socks[i].relayIdleMs)) }
            return
        }
        // No session: only a DTLS handshake record may start one.
        guard DTLSTables.mayStartHandshake(udpScratch, n), let server = l.tlsContext, let listen = d.listener(a, server) else {
            stats.dtls.bump(stats.dtls.dropped)
            return
        }
        let p = d.listenPeers + a
        p.pointee.fd = acceptFd[a]
        p.pointee.address = from
        p.pointee.length = len
        p.pointee.input = UnsafeRawPointer(udpScratch)
        p.pointee.inputLength = n
        let sentBefore = p.pointee.sent
        ERR_clear_error()
        let r = DTLSv1_listen(listen, d.clientAddress)
        ERR_clear_error()
        guard r == 1 else {
            p.pointee.input = nil
            if r < 0 { d.dropListener(a) }  // fatal on the listen SSL: start over with a fresh one
            if p.pointee.sent > sentBefore { stats.dtls.bump(stats.dtls.helloVerifyRequests) } else { stats.dtls.bump(stats.dtls.dropped) }
            return
        }
        // A valid cookie: the client owns this address. Admit it if there is room.
        guard d.handshaking < l.tlsMaxHandshakes else { p.pointee.input = nil; stats.dtls.fail(.overCapacity); return }
        let session = udpOpenSession(a, &from, len, l)
        guard session >= 0 else { p.pointee.input = nil; stats.dtls.fail(.overCapacity); stats.bump(stats.udpDropped); return }
        let i = Int(session)
        d.promote(a, to: i)
        d.deadlineMs[i] = nowMs + Int64(l.tlsHandshakeTimeoutMs)
        d.handshaking += 1
        stats.dtls.handshaking.store(Int(d.handshaking), ordering: .relaxed)
        dtlsHandshake(session, d)
        d.peers[i].input = nil
    }

    /// Drives the handshake with whatever datagram the session's peer holds.
    private func dtlsHandshake(_ s: Int32, _ d: DTLSTables) {
        let i = Int(s)
        guard let ssl = d.ssl[i] else { return }
        ERR_clear_error()
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            d.established[i] = true
            d.handshaking -= 1
            stats.dtls.handshaking.store(Int(d.handshaking), ordering: .relaxed)
            stats.dtls.bump(stats.dtls.handshakes)
            cancelTimer(s)
            // Application records may follow the Finished in the same datagram.
            dtlsReadRecords(s, d)
            if !socks[i].closing { scheduleTimer(s, .udpIdle, afterMs: Int64(socks[i].relayIdleMs)) }
            return
        }
        let e = SSL_get_error(ssl, r)
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE {
            ERR_clear_error()
            dtlsArmRetransmit(s, d)
            return
        }
        ERR_clear_error()
        stats.dtls.fail(.handshake)
        closeSock(s)
    }

    /// The next retransmission or the handshake deadline, whichever is first.
    private func dtlsArmRetransmit(_ s: Int32, _ d: DTLSTables) {
        let i = Int(s)
        guard let ssl = d.ssl[i] else { return }
        var at = d.deadlineMs[i]
        var tv = timeval()
        if SSL_ctrl(ssl, DTLS_CTRL_GET_TIMEOUT, 0, &tv) > 0 {
            let ms = Int64(tv.tv_sec) * 1000 + Int64(tv.tv_usec) / 1000
            at = min(at, nowMs + max(ms, TimerWheel.tickMs))
        }
        socks[i].timer = .dtlsHandshake
        wheel.schedule(s, atMs: at)
    }

    func dtlsTimerFired(_ s: Int32) {
        guard let d = dtls else { closeSock(s); return }
        let i = Int(s)
        guard let ssl = d.ssl[i], !d.established[i] else { closeSock(s); return }
        if nowMs >= d.deadlineMs[i] {
            stats.dtls.fail(.timeout)
            closeSock(s)
            return
        }
        ERR_clear_error()
        let r = SSL_ctrl(ssl, DTLS_CTRL_HANDLE_TIMEOUT, 0, nil)
        ERR_clear_error()
        if r < 0 { stats.dtls.fail(.handshake); closeSock(s); return }
        dtlsArmRetransmit(s, d)
    }

    /// Decrypts the records of the datagram just fed in; each one goes to the upstream as a datagram.
    private func dtlsReadRecords(_ s: Int32, _ d: DTLSTables) {
        let i = Int(s)
        guard let ssl = d.ssl[i] else { return }
        for _ in 0..<Reactor.dtlsReadBatch {
            ERR_clear_error()
            let r = SSL_read(ssl, d.plaintext, Int32(DTLSTables.plaintextSize))
            if r > 0 {
                if send(socks[i].fd, d.plaintext, Int(r), Int32(MSG_DONTWAIT)) < 0 { stats.bump(stats.udpDropped) }
                else { stats.dtls.bump(stats.dtls.plaintextIn) }
                continue
            }
            let e = SSL_get_error(ssl, r)
            ERR_clear_error()
            if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return }
            // close_notify ends the session quietly; anything else is a failure.
            if e != SSL_ERROR_ZERO_RETURN { stats.dtls.fail(.session) }
            closeSock(s)
            return
        }
    }

    /// Upstream replies, each encrypted into one record to the client.
    func dtlsUpstreamReadable(_ s: Int32, _ d: DTLSTables) {
        let i = Int(s)
        guard let ssl = d.ssl[i] else { return }
        var moved = false
        for _ in 0..<Reactor.udpBatch {
            let n = recv(socks[i].fd, udpScratch, 65536, Int32(MSG_DONTWAIT))
            if n < 0 { break }
            moved = true
            // Before the handshake ends there is nobody to encrypt for; oversize cannot be one record.
            guard d.established[i], n <= Reactor.dtlsMaxPlaintext else { stats.bump(stats.udpDropped); continue }
            ERR_clear_error()
            let w = n == 0 ? 1 : SSL_write(ssl, udpScratch, Int32(n))
            ERR_clear_error()
            if w > 0 { stats.dtls.bump(stats.dtls.plaintextOut); stats.bump(stats.udpDatagramsOut) } else { stats.bump(stats.udpDropped) }
        }
        if moved && d.established[i] && !socks[i].closing { scheduleTimer(s, .udpIdle, afterMs: Int64(socks[i].relayIdleMs)) }
    }

    /// A DTLS session's slot is closing: close_notify if its listener still stands, then free the SSL.
    func dtlsSessionClosing(_ s: Int32) {
        guard let d = dtls else { return }
        let i = Int(s)
        guard d.ssl[i] != nil else { return }
        if !d.established[i] {
            d.handshaking -= 1
            stats.dtls.handshaking.store(Int(d.handshaking), ordering: .relaxed)
        }
        let a = Int(socks[i].acceptSlot)
        let listenerOpen = a < acceptCount && acceptFd[a] >= 0 && acceptFd[a] == d.peers[i].fd
        d.release(i, notify: listenerOpen)
    }
}
