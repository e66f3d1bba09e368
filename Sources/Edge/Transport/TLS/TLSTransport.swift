import CIOUring
import COpenSSL
import Glibc
import Protocols

/// The TLS record layer between a socket's buffer queues and io_uring (the
/// `.tls` case of Transport.swift). Received ciphertext is copied into the
/// session's read BIO and decrypted back into the same ring buffer, which then
/// joins the input queue as plaintext; queued plaintext segments are encrypted
/// into the write BIO at flush time and replaced by ciphertext segments in head
/// buffers. Steady state allocates nothing: BIO and record buffers are kept
/// per connection and grow only to the largest flight.
extension Reactor {
    // MARK: Accept

    /// Starts a server session on a just-accepted client. False when the
    /// worker is at its handshake cap or OpenSSL is out of memory (the caller closes).
    func startTLS(_ slot: Int32, _ l: CompiledListener) -> Bool {
        guard let raw = l.tlsContext else { return false }
        if tls.handshaking >= l.tlsMaxHandshakes { countTLSFailure(.overCapacity); return false }
        let server = Unmanaged<TLSServerContext>.fromOpaque(raw)
        guard let ctx = server._withUnsafeGuaranteedRef({ $0.contexts.first }), let ssl = SSL_new(ctx) else { return false }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else { SSL_free(ssl); return false }
        // An empty read BIO means "no more bytes yet", not end of stream.
        _ = edge_BIO_set_mem_eof_return(rbio, -1)
        _ = edge_BIO_set_mem_eof_return(wbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        SSL_set_accept_state(ssl)
        _ = server.retain()
        tls.sessions[Int(slot)] = TLSSession(ssl: ssl, rbio: rbio, wbio: wbio, context: raw)
        tls.handshaking += 1
        socks[Int(slot)].transport = .tls
        return true
    }

    /// Client mode: starts TLS on a just-connected upstream socket (after any
    /// PROXY header) and sends the ClientHello; the request head already queued
    /// goes out once the handshake is done. False on failure.
    func startUpstreamTLS(_ u: Int32, _ raw: UnsafeMutableRawPointer) -> Bool {
        let client = Unmanaged<TLSClientContext>.fromOpaque(raw)
        guard let ssl = client._withUnsafeGuaranteedRef({ SSL_new($0.ctx) }) else { return false }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else { SSL_free(ssl); return false }
        _ = edge_BIO_set_mem_eof_return(rbio, -1)
        _ = edge_BIO_set_mem_eof_return(wbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        SSL_set_connect_state(ssl)
        let ok = client._withUnsafeGuaranteedRef { c -> Bool in
            if c.serverName.count > 1 {
                let named = c.serverName.withUnsafeBufferPointer { p -> Bool in
                    guard let base = p.baseAddress else { return false }
                    // SNI, and the name the certificate must carry when verifying.
                    return edge_SSL_set_tlsext_host_name(ssl, base) == 1 && (!c.verify || SSL_set1_host(ssl, base) == 1)
                }
                if !named { return false }
            }
            if let s = c.session(worker: index) { _ = SSL_set_session(ssl, s) }
            _ = SSL_set_ex_data(ssl, 0, UnsafeMutableRawPointer(bitPattern: index + 1))
            return true
        }
        if !ok { SSL_free(ssl); return false }
        _ = client.retain()
        tls.sessions[Int(u)] = TLSSession(ssl: ssl, rbio: rbio, wbio: wbio, clientContext: raw, isClient: true)
        tls.sessions[Int(u)].sawFirstBytes = true
        socks[Int(u)].transport = .tls
        let r = SSL_do_handshake(ssl)
        if r != 1 {
            let e = SSL_get_error(ssl, r)
            if e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE { ERR_clear_error(); return false }
        }
        tlsFlush(u)
        return !socks[Int(u)].closing
    }

    // MARK: Bytes in

    func tlsReceived(_ slot: Int32, _ bid: Int32) {
        let i = Int(slot)
        guard let ssl = tls.sessions[i].ssl, let rbio = tls.sessions[i].rbio else { buffers.release(bid); return }
        if !tls.sessions[i].sawFirstBytes && !tls.sessions[i].isClient {
            tls.sessions[i].sawFirstBytes = true
            // A TLS connection starts with a handshake record (0x16); an upper-case
            // letter is a plaintext request line sent to the wrong port.
            let first = buffers.bytes(bid).first ?? 0x16
            if first >= 0x41 && first <= 0x5A { buffers.release(bid); refusePlaintext(slot); return }
        }
        let n = buffers.count(bid)
        let written = BIO_write(rbio, buffers.pointer(bid) + Int(buffers.start[Int(bid)]), n)
        if written != n { buffers.release(bid); tlsFail(slot, .other); return }
        var finished = false
        if !tls.sessions[i].handshakeDone {
            let r = SSL_do_handshake(ssl)
            if r == 1 {
                tlsHandshakeFinished(slot)
                finished = true
            } else {
                let e = SSL_get_error(ssl, r)
                if e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE {
                    buffers.release(bid)
                    tlsFail(slot, TLSFailure.fromErrorQueue())
                    return
                }
            }
        }
        if tls.sessions[i].handshakeDone { tlsReadPlaintext(slot, reusing: bid) } else { buffers.release(bid) }
        if socks[i].closing { return }
        if let w = tls.sessions[i].wbio, edge_BIO_ctrl_pending(w) > 0 { tlsFlush(slot) }
        // `protocol: tls`: the plaintext just decrypted waits in the input queue
        // for the relay, which starts once the upstream is connected.
        if finished && socks[i].isStream && !socks[i].closing { tlsStreamReady(slot) }
    }

    /// Decrypts everything OpenSSL can into `bid` (then head buffers) and queues it.
    private func tlsReadPlaintext(_ slot: Int32, reusing bid: Int32) {
        let i = Int(slot)
        guard let ssl = tls.sessions[i].ssl else { buffers.release(bid); return }
        var id = bid
        buffers.start[Int(id)] = 0; buffers.end[Int(id)] = 0
        while true {
            let r = SSL_read(ssl, buffers.pointer(id), buffers.capacity(id))
            if r > 0 {
                buffers.end[Int(id)] = r
                appendInput(slot, id)
                id = -1
                guard SSL_pending(ssl) > 0 || edge_BIO_ctrl_pending(tls.sessions[i].rbio) > 0 else { break }
                id = buffers.takeHead()
                if id < 0 { break }  // out of buffers: the rest is decrypted on the next read
                continue
            }
            let e = SSL_get_error(ssl, r)
            if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { break }
            // close_notify (or a fatal alert): end of the client's stream.
            if e != SSL_ERROR_ZERO_RETURN { countTLSFailure(TLSFailure.fromErrorQueue()); socks[i].readError = EPROTO }
            socks[i].eof = true
            break
        }
        if id >= 0 { buffers.release(id) }
    }

    private func tlsHandshakeFinished(_ slot: Int32) {
        let i = Int(slot)
        tls.sessions[i].handshakeDone = true
        if tls.sessions[i].isClient {
            // Sessions to resume are kept by the context's new-session callback.
            stats.bump(stats.tlsUpstreamHandshakes)
            if let ssl = tls.sessions[i].ssl, edge_SSL_session_reused(ssl) == 1 { stats.bump(stats.tlsUpstreamResumed) }
            tlsFlush(slot)  // the request head waiting for the handshake
            return
        }
        tls.handshaking -= 1
        stats.bump(stats.tlsHandshakes)
        if let ssl = tls.sessions[i].ssl {
            if edge_SSL_session_reused(ssl) == 1 { stats.bump(stats.tlsResumed) }
            recordClientCertificate(slot, ssl)
            tls.sessions[i].alpnH2 = TLSTransportALPN.choseH2(ssl)
        }
        // From here on the request-head timeout applies, as on a plain listener
        // (a TLS relay connects its upstream instead: tlsStreamReady).
        if socks[i].isStream { cancelTimer(slot); return }
        scheduleTimer(slot, .clientHeader, afterMs: Int64(listenerSettings(slot).headerTimeoutMs))
    }

    /// Stores the X-Forwarded-Client-Cert value of a verified client
    /// certificate (once per handshake, so requests only copy bytes).
    private func recordClientCertificate(_ slot: Int32, _ ssl: OpaquePointer) {
        let i = Int(slot)
        tls.sessions[i].xfccLength = 0
        guard let peer = SSL_get0_peer_certificate(ssl), SSL_get_verify_result(ssl) == X509_V_OK else { return }
        let value = TLSCertificateInfo.forwardedClientCert(peer)
        let bytes = Array(value.utf8)
        guard bytes.count <= TLSTable.xfccCapacity else { return }
        let dst = tls.xfcc + i * TLSTable.xfccCapacity
        bytes.withUnsafeBufferPointer { if let b = $0.baseAddress { dst.update(from: b, count: bytes.count) } }
        tls.sessions[i].xfccLength = Int32(bytes.count)
    }

    // MARK: Bytes out

    /// Encrypts queued plaintext segments and sends the ciphertext.
    func tlsFlush(_ slot: Int32) {
        let i = Int(slot)
        if socks[i].sendInFlight || socks[i].closing { return }
        guard let ssl = tls.sessions[i].ssl, let wbio = tls.sessions[i].wbio else { return }
        if tls.sessions[i].isClient && !tls.sessions[i].handshakeDone {
            // The request head is already queued as plaintext: handshake flights
            // (a few hundred bytes to a fresh socket) go out directly instead.
            var data: UnsafeMutablePointer<CChar>? = nil
            let n = edge_BIO_get_mem_data(wbio, &data)
            if n > 0, let data {
                if send(socks[i].fd, data, n, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) != n { tlsFail(slot, .other); return }
                _ = edge_BIO_reset(wbio)
            }
            return
        }
        let base = i * Reactor.segmentsPerSlot
        let mask = Reactor.segmentsPerSlot - 1
        // Ciphertext still queued from a partial send sits at the front.
        var k = 0
        var covered: Int32 = 0
        while covered < tls.sessions[i].cipherBytes && k < Int(socks[i].segCount) {
            covered += segments[base + ((Int(socks[i].segFirst) + k) & mask)].length
            k += 1
        }
        if tls.sessions[i].handshakeDone && k < Int(socks[i].segCount) {
            var total = 0
            for j in k..<Int(socks[i].segCount) { total += Int(segments[base + ((Int(socks[i].segFirst) + j) & mask)].length) }
            let gather = total <= TLSTable.scratchCapacity
            var filled = 0
            for j in k..<Int(socks[i].segCount) {
                let seg = segments[base + ((Int(socks[i].segFirst) + j) & mask)]
                guard let p = seg.pointer, seg.length > 0 else { continue }
                if gather {
                    (tls.scratch + filled).copyMemory(from: p, byteCount: Int(seg.length))
                    filled += Int(seg.length)
                } else if SSL_write(ssl, p, seg.length) != seg.length {
                    tlsFail(slot, TLSFailure.fromErrorQueue())
                    return
                }
            }
            if gather && filled > 0 && SSL_write(ssl, tls.scratch, Int32(filled)) != Int32(filled) {
                tlsFail(slot, TLSFailure.fromErrorQueue())
                return
            }
            // The plaintext now lives in the write BIO: give its buffers back.
            while Int(socks[i].segCount) > k {
                let s = segments[base + ((Int(socks[i].segFirst) + Int(socks[i].segCount) - 1) & mask)]
                if s.id >= 0 { buffers.release(s.id) }
                socks[i].segCount -= 1
            }
        }
        while edge_BIO_ctrl_pending(wbio) > 0 && segmentRoom(slot) > 0 {
            let id = buffers.takeHead()
            if id < 0 { break }
            let r = BIO_read(wbio, buffers.pointer(id), buffers.capacity(id))
            if r <= 0 { buffers.release(id); break }
            buffers.end[Int(id)] = r
            enqueue(slot, buffers.pointer(id), Int(r), id: id)
            buffers.release(id)  // the segment holds the only reference now
            tls.sessions[i].cipherBytes += r
        }
        submitSend(slot)
    }

    /// A send completed with `n` bytes: all of them ciphertext.
    func tlsSent(_ slot: Int32, _ n: Int32) {
        let i = Int(slot)
        tls.sessions[i].cipherBytes = max(0, tls.sessions[i].cipherBytes - n)
        if tls.sessions[i].shutdownPending && tls.sessions[i].cipherBytes == 0 && !tlsOutputPending(slot) {
            tls.sessions[i].shutdownPending = false
            shutdown(socks[i].fd, Int32(SHUT_WR))
        }
    }

    @inline(__always) func tlsOutputPending(_ slot: Int32) -> Bool {
        guard let w = tls.sessions[Int(slot)].wbio else { return false }
        return edge_BIO_ctrl_pending(w) > 0
    }

    /// Sends close_notify, then ends the TCP write side once it is out.
    func tlsShutdownWrite(_ slot: Int32) {
        let i = Int(slot)
        if let ssl = tls.sessions[i].ssl, tls.sessions[i].handshakeDone { _ = SSL_shutdown(ssl) }
        ERR_clear_error()
        tls.sessions[i].shutdownPending = true
        tlsFlush(slot)
        if !socks[i].sendInFlight && tls.sessions[i].cipherBytes == 0 {
            tls.sessions[i].shutdownPending = false
            shutdown(socks[i].fd, Int32(SHUT_WR))
        }
    }

    // MARK: Failure and teardown

    /// A fatal TLS error: the alert OpenSSL queued goes out in one best-effort
    /// send, then the connection closes.
    func tlsFail(_ slot: Int32, _ why: TLSFailure) {
        let i = Int(slot)
        if socks[i].stream.copying {
            // A relay (tls listener, TLS upstream of a stream, wss): no HTTP to answer with.
            if !tls.sessions[i].handshakeDone && !tls.sessions[i].isClient { countTLSFailure(why) }
            if tls.sessions[i].isClient { stats.bump(stats.upstreamErrors) }
            tlsSendAlert(slot)
            relayClose(slot)
            return
        }
        if tls.sessions[i].isClient {
            // Upstream TLS (verification, protocol): the request gets a 502.
            stats.bump(stats.upstreamErrors)
            if h2upOwns(slot) { h2upClose(slot, 502, "upstream TLS handshake failed", cause: "upstream_tls_failure"); h2DrainKicks(); return }
            let c = clientOf(slot)
            if c >= 0 {
                failExchange(c, slot, 502, "upstream TLS handshake failed", cause: "upstream_tls_failure")
            } else {
                closeSock(slot)
            }
            return
        }
        if !tls.sessions[i].handshakeDone { countTLSFailure(why) }
        tlsSendAlert(slot)
        if socks[i].kind == .client && socks[i].exchange >= 0 && exchanges[Int(socks[i].exchange)].upstream >= 0 {
            abortExchange(slot)
        } else {
            closeSock(slot)
        }
    }

    /// The alert OpenSSL queued, in one best-effort send (nothing else is in flight).
    private func tlsSendAlert(_ slot: Int32) {
        let i = Int(slot)
        guard let w = tls.sessions[i].wbio, !socks[i].sendInFlight else { return }
        var data: UnsafeMutablePointer<CChar>? = nil
        let n = edge_BIO_get_mem_data(w, &data)
        if n > 0, let data { _ = send(socks[i].fd, data, n, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
    }

    /// Plaintext HTTP on a TLS port: a short 400 in plaintext, then close (nginx
    /// answers 497-style). A TLS relay does not speak HTTP: it just closes.
    private func refusePlaintext(_ slot: Int32) {
        countTLSFailure(.plaintextHTTP)
        if socks[Int(slot)].isStream { closeSock(slot); return }
        let text: StaticString = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 49\r\nx-edge-error: plaintext_http_on_tls_port\r\nConnection: close\r\n\r\nThis port speaks HTTPS: use https:// to reach it\n"
        _ = send(socks[Int(slot)].fd, text.utf8Start, text.utf8CodeUnitCount, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
        shutdown(socks[Int(slot)].fd, Int32(SHUT_WR))
        closeSock(slot)
    }

    /// handshake_timeout passed without a finished handshake.
    func tlsHandshakeTimedOut(_ slot: Int32) {
        countTLSFailure(.timeout)
        closeSock(slot)
    }

    /// Frees the session when its socket slot is freed (exactly once).
    func tlsRelease(_ slot: Int32) {
        let i = Int(slot)
        guard let ssl = tls.sessions[i].ssl else { return }
        if tls.sessions[i].isClient {
            // Marked as shut down: otherwise SSL_free voids the session we keep for resumption.
            SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)
            SSL_free(ssl)
            TLSClientContext.release(tls.sessions[i].clientContext)
            tls.sessions[i] = TLSSession()
            socks[i].transport = .plain
            return
        }
        if !tls.sessions[i].handshakeDone {
            tls.handshaking -= 1
            // Closed mid-handshake by the client (not by a failure already counted).
            if socks[i].eof && socks[i].readError == 0 && tls.sessions[i].sawFirstBytes { countTLSFailure(.clientClosed) }
        }
        SSL_free(ssl)  // frees both BIOs
        if let c = tls.sessions[i].context { Unmanaged<TLSServerContext>.fromOpaque(c).release() }
        tls.sessions[i] = TLSSession()
        socks[i].transport = .plain
    }

    /// The cluster's client TLS context for upstream socket `u`, nil for plain clusters.
    func upstreamTLSContext(_ u: Int32) -> UnsafeMutableRawPointer? {
        let v = socks[Int(u)].view, e = socks[Int(u)].endpoint
        guard v >= 0, e >= 0, Int(e) < views[Int(v)].endpoints.count else { return nil }
        let ci = Int(views[Int(v)].endpoints[Int(e)].cluster)
        guard ci >= 0, ci < views[Int(v)].clusters.count else { return nil }
        return views[Int(v)].clusters[ci].tlsClient
    }

    @inline(__always) func countTLSFailure(_ why: TLSFailure) {
        stats.bump(stats.tlsFailures[why.rawValue])
    }

    // MARK: Forwarded headers

    /// `X-Forwarded-Proto` for the client's transport, and the verified client
    /// certificate (mTLS) as `X-Forwarded-Client-Cert`.
    @inline(__always) func appendForwardedTLS(_ w: inout HeadWriter, client c: Int32) {
        guard socks[Int(c)].transport == .tls else { w.append("X-Forwarded-Proto: http\r\n"); return }
        w.append("X-Forwarded-Proto: https\r\n")
        let n = Int(tls.sessions[Int(c)].xfccLength)
        if n > 0 {
            w.append("X-Forwarded-Client-Cert: ")
            w.append(UnsafeRawBufferPointer(start: tls.xfcc + Int(c) * TLSTable.xfccCapacity, count: n))
            w.append("\r\n")
        }
    }

    /// True for a client-sent `X-Forwarded-Client-Cert` (always dropped: only
    /// Edge may assert a client certificate).
    @inline(__always) static func isForwardedClientCert(_ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> Bool {
        let want: StaticString = "x-forwarded-client-cert"
        guard Int(name.length) == want.utf8CodeUnitCount else { return false }
        let p = want.utf8Start
        for j in 0..<Int(name.length) {
            var ch = buf[Int(name.offset) + j]
            if ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
            if ch != p[j] { return false }
        }
        return true
    }
}

/// Which protocol ALPN settled on.
enum TLSTransportALPN {
    static func choseH2(_ ssl: OpaquePointer) -> Bool {
        var data: UnsafePointer<UInt8>? = nil
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard length == 2, let d = data else { return false }
        return d[0] == 0x68 && d[1] == 0x32  // "h2"
    }
}
