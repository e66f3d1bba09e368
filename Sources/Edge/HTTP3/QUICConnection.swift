import CNGHTTP3
import CNGTCP2
import Glibc

/// QUIC connections on one worker: creation from a validated Initial, packet
/// input, the write loop, timers from `ngtcp2_conn_get_expiry` on the
/// worker's wheel, and teardown. Every ngtcp2 call of Edge lives in HTTP3/.
extension Reactor {
    /// The tables, created with the worker's first http3 socket.
    var quic: QUICTables {
        if let t = quicStorage { return t }
        let t = QUICTables(capacity: Int(capacity))
        quicStorage = t
        return t
    }

    @inline(__always) static func quicNowNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// A server connection id: byte 0 names this worker (what the reuseport
    /// BPF program steers by), the rest is random.
    func quicMakeCid(_ cid: UnsafeMutablePointer<ngtcp2_cid>, length: Int) {
        cid.pointee.datalen = length
        withUnsafeMutableBytes(of: &cid.pointee.data) { b in
            guard let p = b.baseAddress else { return }
            _ = edge_gnutls_random(p, length)
            b[0] = UInt8(truncatingIfNeeded: index)
        }
    }

    // MARK: Creation

    /// A new connection for an acceptable Initial. `odcid`: the original DCID
    /// recovered from a Retry token (nil without one). -1 when refused.
    func quicCreate(_ fd: Int32, _ li: Int, _ hd: UnsafePointer<ngtcp2_pkt_hd>, odcid: UnsafePointer<ngtcp2_cid>?,
                    _ from: UnsafePointer<sockaddr_storage>, _ fromLength: socklen_t, _ limits: CompiledHTTP3,
                    _ context: QUICServerContext) -> Int32 {
        let t = quic
        let slot = allocSlot(.quic, fd: -1)
        if slot < 0 { return -1 }
        let c = Int(slot)
        t.conns[c] = QUICConn()
        t.conns[c].fd = fd
        t.conns[c].limits = limits
        t.conns[c].local = t.localAddrs[li]
        t.conns[c].localLength = t.localLengths[li]
        t.conns[c].remote = from.pointee
        t.conns[c].remoteLength = fromLength
        t.contexts[c] = QUICContext(reactor: Unmanaged.passUnretained(self), slot: slot)
        ngtcp2_connection_close_error_default(&t.conns[c].ccerr)
        let text = UnsafeMutableRawBufferPointer(start: peerText + c * 48, count: 48)
        socks[c].peerAddrLength = UInt8(t.conns[c].remote.writeIPText(into: text))

        var settings = ngtcp2_settings()
        edge_ngtcp2_settings_default(&settings)
        settings.initial_ts = Reactor.quicNowNs()
        settings.handshake_timeout = UInt64(limits.handshakeTimeoutMs) &* edge_ngtcp2_ms()
        settings.max_window = limits.connectionWindow * 2
        settings.max_stream_window = limits.streamWindow * 2
        settings.max_tx_udp_payload_size = QUICTables.maxDatagram
        var params = ngtcp2_transport_params()
        edge_ngtcp2_transport_params_default(&params)
        params.initial_max_streams_bidi = limits.maxConcurrentStreams
        params.initial_max_streams_uni = 3
        params.initial_max_stream_data_bidi_local = limits.streamWindow
        params.initial_max_stream_data_bidi_remote = limits.streamWindow
        params.initial_max_stream_data_uni = limits.streamWindow
        params.initial_max_data = limits.connectionWindow
        params.max_idle_timeout = UInt64(limits.idleTimeoutMs) &* edge_ngtcp2_ms()
        params.active_connection_id_limit = 7
        params.disable_active_migration = 1
        if let odcid {
            params.original_dcid = odcid.pointee
            params.retry_scid = hd.pointee.dcid
            params.retry_scid_present = 1
        } else {
            params.original_dcid = hd.pointee.dcid
        }
        var scid = ngtcp2_cid()
        quicMakeCid(&scid, length: QUICTables.cidLength)
        params.stateless_reset_token_present = 1
        let tokenOK = withUnsafeMutableBytes(of: &params.stateless_reset_token) { b -> Bool in
            guard let p = b.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
            return ngtcp2_crypto_generate_stateless_reset_token(p, QUICSecrets.reset, QUICSecrets.length, &scid) == 0
        }
        guard tokenOK else { quicAbandon(slot); return -1 }

        var conn: OpaquePointer? = nil
        var dcid = hd.pointee.scid
        let rv = withUnsafeMutablePointer(to: &t.conns[c].local) { lp in
            withUnsafeMutablePointer(to: &t.conns[c].remote) { rp in
                lp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { l in
                    rp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { r in
                        var path = ngtcp2_path(local: ngtcp2_addr(addr: l, addrlen: t.conns[c].localLength),
                                               remote: ngtcp2_addr(addr: r, addrlen: t.conns[c].remoteLength), user_data: nil)
                        return edge_ngtcp2_conn_server_new(&conn, &dcid, &scid, &path, hd.pointee.version, &t.callbacks,
                                                           &settings, &params, t.ngtcp2Mem, UnsafeMutableRawPointer(t.contexts + c))
                    }
                }
            }
        }
        guard rv == 0, let conn else { quicAbandon(slot); return -1 }
        t.conns[c].conn = conn
        guard quicStartTLS(slot, context) else { quicAbandon(slot); return -1 }
        // Retransmitted Initials still carry the client's first DCID; later packets our ids.
        var first = hd.pointee.dcid
        let registered = withUnsafeBytes(of: &first.data) { b in
            t.register(slot, b.baseAddress!.assumingMemoryBound(to: UInt8.self), first.datalen)
        } && withUnsafeBytes(of: &scid.data) { b in
            t.register(slot, b.baseAddress!.assumingMemoryBound(to: UInt8.self), scid.datalen)
        }
        guard registered else { quicAbandon(slot); return -1 }
        t.connections += 1
        t.handshakes += 1
        stats.http3.connections.wrappingIncrement(ordering: .relaxed)
        stats.http3.activeConnections.store(Int(t.connections), ordering: .relaxed)
        stats.http3.handshakes.store(Int(t.handshakes), ordering: .relaxed)
        return slot
    }

    /// GnuTLS server session wired to ngtcp2: TLS 1.3 only, ALPN h3, no 0-RTT.
    private func quicStartTLS(_ slot: Int32, _ context: QUICServerContext) -> Bool {
        let t = quic
        let c = Int(slot)
        var session: OpaquePointer? = nil
        guard edge_gnutls_server_init(&session) == 0, let session else { return false }
        t.conns[c].tls = session
        guard gnutls_priority_set(session, context.priority) == 0,
              ngtcp2_crypto_gnutls_configure_server_session(session) == 0,
              gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, UnsafeMutableRawPointer(context.credentials)) == 0,
              edge_gnutls_alpn_h3(session) == 0 else { return false }
        t.conns[c].ref.get_conn = { ref in
            guard let p = ref?.pointee.user_data?.assumingMemoryBound(to: QUICConn.self) else { return nil }
            return p.pointee.conn
        }
        t.conns[c].ref.user_data = UnsafeMutableRawPointer(t.conns + c)
        gnutls_session_set_ptr(session, UnsafeMutableRawPointer(t.conns + c) + (MemoryLayout<QUICConn>.offset(of: \QUICConn.ref) ?? 0))
        if let conn = t.conns[c].conn { ngtcp2_conn_set_tls_native_handle(conn, UnsafeMutableRawPointer(session)) }
        return true
    }

    /// Frees a half-built connection (nothing was sent on it).
    private func quicAbandon(_ slot: Int32) {
        let t = quic
        let c = Int(slot)
        t.unregisterAll(slot)
        if let conn = t.conns[c].conn { ngtcp2_conn_del(conn) }
        if let tls = t.conns[c].tls { gnutls_deinit(tls) }
        t.conns[c] = QUICConn()
        closeSock(slot)
    }

    // MARK: Callbacks from ngtcp2

    func quicHandshakeCompleted(_ c: Int32) {
        let t = quic
        let i = Int(c)
        if t.conns[i].handshaking {
            t.conns[i].handshaking = false
            t.handshakes -= 1
            stats.http3.handshakes.store(Int(t.handshakes), ordering: .relaxed)
            stats.http3.handshakesCompleted.wrappingIncrement(ordering: .relaxed)
        }
        // NEW_TOKEN: a returning client skips the Retry round trip for a while.
        guard let conn = t.conns[i].conn else { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { token in
            guard let tp = token.baseAddress else { return }
            let n = withUnsafePointer(to: &t.conns[i].remote) { rp in
                rp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) {
                    ngtcp2_crypto_generate_regular_token(tp, QUICSecrets.token, QUICSecrets.length, $0, t.conns[i].remoteLength, Reactor.quicNowNs())
                }
            }
            if n > 0 { _ = ngtcp2_conn_submit_new_token(conn, tp, Int(n)) }
        }
    }

    func quicNewConnectionId(_ c: Int32, _ cid: UnsafeMutablePointer<ngtcp2_cid>, _ token: UnsafeMutablePointer<UInt8>, _ length: Int) -> Bool {
        let t = quic
        quicMakeCid(cid, length: min(length, 20))
        guard ngtcp2_crypto_generate_stateless_reset_token(token, QUICSecrets.reset, QUICSecrets.length, cid) == 0 else { return false }
        return withUnsafeBytes(of: &cid.pointee.data) { b in
            t.register(c, b.baseAddress!.assumingMemoryBound(to: UInt8.self), cid.pointee.datalen)
        }
    }

    func quicRemoveConnectionId(_ c: Int32, _ cid: UnsafePointer<ngtcp2_cid>) {
        var copy = cid.pointee
        withUnsafeBytes(of: &copy.data) { b in
            quic.unregister(c, b.baseAddress!.assumingMemoryBound(to: UInt8.self), copy.datalen)
        }
    }

    /// Request bytes handed on (or dropped): the client may send that much more.
    func quicConsume(_ c: Int32, _ sid: Int64, _ n: Int) {
        guard let conn = quic.conns[Int(c)].conn, n > 0 else { return }
        _ = ngtcp2_conn_extend_max_stream_offset(conn, sid, UInt64(n))
        ngtcp2_conn_extend_max_offset(conn, UInt64(n))
    }

    // MARK: Input

    /// One datagram for connection `c`, then whatever it has to send.
    func quicRead(_ c: Int32, _ data: UnsafePointer<UInt8>, _ n: Int, _ from: UnsafeMutablePointer<sockaddr_storage>, _ fromLength: socklen_t) {
        let t = quic
        let i = Int(c)
        guard let conn = t.conns[i].conn else { return }
        var pi = ngtcp2_pkt_info()
        t.conns[i].busy = true
        let rv = withUnsafeMutablePointer(to: &t.conns[i].local) { lp in
            lp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { l in
                from.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { r in
                    var path = ngtcp2_path(local: ngtcp2_addr(addr: l, addrlen: t.conns[i].localLength),
                                           remote: ngtcp2_addr(addr: r, addrlen: fromLength), user_data: nil)
                    return edge_ngtcp2_conn_read_pkt(conn, &path, &pi, data, n, Reactor.quicNowNs())
                }
            }
        }
        t.conns[i].busy = false
        if t.conns[i].doomed { quicDelete(c); return }
        if rv != 0 {
            switch rv {
            case NGTCP2_ERR_DRAINING, NGTCP2_ERR_DROP_CONN:
                quicDelete(c)
            case NGTCP2_ERR_CRYPTO:
                ngtcp2_connection_close_error_set_transport_error_tls_alert(&t.conns[i].ccerr, ngtcp2_conn_get_tls_alert(conn), nil, 0)
                quicCloseWithError(c)
            default:
                if t.conns[i].ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT && t.conns[i].ccerr.error_code == 0 {
                    ngtcp2_connection_close_error_set_transport_error_liberr(&t.conns[i].ccerr, rv, nil, 0)
                }
                quicCloseWithError(c)
            }
            return
        }
        quicWrite(c)
    }

    // MARK: Output

    /// Writes packets until ngtcp2 and nghttp3 have nothing more, the send
    /// quantum is used up or the congestion window is full. Packets of one
    /// size go out together as one GSO datagram train (UDP_SEGMENT): one
    /// syscall for up to 45 packets. Then re-arms the connection's timer.
    func quicWrite(_ c: Int32) {
        let t = quic
        let i = Int(c)
        guard let conn = t.conns[i].conn, !t.conns[i].busy else { return }
        let ts = Reactor.quicNowNs()
        let limit = max(ngtcp2_conn_get_max_tx_udp_payload_size(conn), 1200)
        let maxPackets = max(1, min(QUICTables.gsoBytes / limit, ngtcp2_conn_get_send_quantum(conn) / limit))
        var batch = QUICBatch()
        var packets = 0
        var vec = (nghttp3_vec(), nghttp3_vec(), nghttp3_vec(), nghttp3_vec(), nghttp3_vec(), nghttp3_vec(), nghttp3_vec(), nghttp3_vec())
        while packets < maxPackets {
            var sid: Int64 = -1
            var fin: Int32 = 0
            var count: Int = 0
            let h3 = t.conns[i].h3
            let dest = t.tx.assumingMemoryBound(to: UInt8.self) + batch.used
            // > 0: a packet of that many bytes at `dest`; 0: nothing more; -1: fatal; -2: try again.
            let rv: Int = withUnsafeMutableBytes(of: &vec) { vb -> Int in
                let v = vb.baseAddress!.assumingMemoryBound(to: nghttp3_vec.self)
                if let h3 {
                    let k = nghttp3_conn_writev_stream(h3, &sid, &fin, v, 8)
                    if k < 0 {
                        ngtcp2_connection_close_error_set_application_error(&t.conns[i].ccerr, nghttp3_err_infer_quic_app_error_code(Int32(k)), nil, 0)
                        return -1
                    }
                    count = Int(k)
                }
                var flags: UInt32 = NGTCP2_WRITE_STREAM_FLAG_MORE
                if fin != 0 { flags |= NGTCP2_WRITE_STREAM_FLAG_FIN }
                var written: ngtcp2_ssize = -1
                var pi = ngtcp2_pkt_info()
                let n = withUnsafeMutablePointer(to: &t.conns[i].local) { lp in
                    withUnsafeMutablePointer(to: &t.conns[i].remote) { rp in
                        lp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { l in
                            rp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { r in
                                var path = ngtcp2_path(local: ngtcp2_addr(addr: l, addrlen: t.conns[i].localLength),
                                                       remote: ngtcp2_addr(addr: r, addrlen: t.conns[i].remoteLength), user_data: nil)
                                return v.withMemoryRebound(to: ngtcp2_vec.self, capacity: 8) { nv in
                                    edge_ngtcp2_conn_writev_stream(conn, &path, &pi, dest, limit, &written, flags, sid,
                                                                   count > 0 ? nv : nil, count, ts)
                                }
                            }
                        }
                    }
                }
                if n < 0 {
                    switch Int32(n) {
                    case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                        if let h3 { nghttp3_conn_block_stream(h3, sid) }
                        return -2
                    case NGTCP2_ERR_STREAM_SHUT_WR:
                        if let h3 { nghttp3_conn_shutdown_stream_write(h3, sid) }
                        return -2
                    case NGTCP2_ERR_WRITE_MORE:
                        if let h3, written >= 0, nghttp3_conn_add_write_offset(h3, sid, Int(written)) != 0 { return -1 }
                        return -2
                    default:
                        ngtcp2_connection_close_error_set_transport_error_liberr(&t.conns[i].ccerr, Int32(n), nil, 0)
                        return -1
                    }
                }
                if let h3, written >= 0, sid >= 0, nghttp3_conn_add_write_offset(h3, sid, Int(written)) != 0 { return -1 }
                return Int(n)
            }
            if rv == -1 { quicFlush(&batch, c); quicCloseWithError(c); return }
            if rv == -2 { continue }
            if rv == 0 { break }
            packets += 1
            if batch.count == 0 || rv == batch.segment {
                if batch.count == 0 { batch.segment = rv }
                batch.used += rv
                batch.count += 1
            } else if rv < batch.segment {
                // A shorter packet may close a train, never sit inside one.
                batch.used += rv
                batch.count += 1
                quicFlush(&batch, c)
            } else {
                // Larger than the train's segments: send the train, start a new one with it.
                let start = batch.used
                quicFlush(&batch, c)
                t.tx.copyMemory(from: t.tx + start, byteCount: rv)
                batch = QUICBatch(used: rv, segment: rv, count: 1)
            }
            if batch.used + limit > QUICTables.gsoBytes { quicFlush(&batch, c) }
        }
        quicFlush(&batch, c)
        ngtcp2_conn_update_pkt_tx_time(conn, ts)
        quicArmTimer(c)
    }

    /// Sends the packets gathered in `tx` (one datagram each) and empties the batch.
    private func quicFlush(_ batch: inout QUICBatch, _ c: Int32) {
        defer { batch = QUICBatch() }
        guard batch.count > 0 else { return }
        let t = quic
        let i = Int(c)
        if batch.count == 1 || !t.gso {
            var off = 0
            while off < batch.used {
                let n = min(batch.segment, batch.used - off)
                quicSend(t.conns[i].fd, t.tx + off, n, &t.conns[i].remote, t.conns[i].remoteLength)
                off += n
            }
            return
        }
        if quicSendSegments(t.conns[i].fd, t.tx, batch.used, UInt16(batch.segment), &t.conns[i].remote, t.conns[i].remoteLength, datagrams: batch.count) { return }
        // The device refused GSO: plain datagrams from now on.
        t.gso = false
        var off = 0
        while off < batch.used {
            let n = min(batch.segment, batch.used - off)
            quicSend(t.conns[i].fd, t.tx + off, n, &t.conns[i].remote, t.conns[i].remoteLength)
            off += n
        }
    }

    @inline(__always) func quicSend(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, _ to: UnsafeMutablePointer<sockaddr_storage>, _ length: socklen_t) {
        let rc = to.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, p, n, Int32(MSG_DONTWAIT), $0, length) }
        if rc >= 0 { stats.http3.datagramsOut.wrappingIncrement(ordering: .relaxed) }
    }

    /// One sendmsg carrying `count` datagrams of `segment` bytes (the last may be shorter).
    private func quicSendSegments(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, _ segment: UInt16,
                                  _ to: UnsafeMutablePointer<sockaddr_storage>, _ length: socklen_t, datagrams: Int) -> Bool {
        let t = quic
        var iov = iovec(iov_base: p, iov_len: n)
        // struct cmsghdr (len, level, type) then the u16 segment size: CMSG_SPACE(2) = 24.
        let control = t.control
        control.initializeMemory(as: UInt8.self, repeating: 0, count: 24)
        control.storeBytes(of: 18, toByteOffset: 0, as: Int.self)
        control.storeBytes(of: Int32(IPPROTO_UDP), toByteOffset: 8, as: Int32.self)
        control.storeBytes(of: Int32(103), toByteOffset: 12, as: Int32.self)  // UDP_SEGMENT
        control.storeBytes(of: segment, toByteOffset: 16, as: UInt16.self)
        var msg = msghdr()
        msg.msg_name = UnsafeMutableRawPointer(to)
        msg.msg_namelen = length
        let rc = withUnsafeMutablePointer(to: &iov) { iv -> Int in
            msg.msg_iov = iv
            msg.msg_iovlen = 1
            msg.msg_control = control
            msg.msg_controllen = 24
            return sendmsg(fd, &msg, Int32(MSG_DONTWAIT))
        }
        if rc >= 0 {
            stats.http3.datagramsOut.wrappingIncrement(by: datagrams, ordering: .relaxed)
            return true
        }
        // EAGAIN: dropped like a lost packet (QUIC retransmits); EIO/EINVAL: no GSO here.
        return errno != EIO && errno != EINVAL
    }

    // MARK: Timers

    func quicArmTimer(_ c: Int32) {
        guard let conn = quic.conns[Int(c)].conn else { return }
        let expiry = ngtcp2_conn_get_expiry(conn)
        if expiry == UInt64.max { cancelTimer(c); return }
        let now = Reactor.quicNowNs()
        let ms = expiry <= now ? 0 : Int64((expiry - now + 999_999) / 1_000_000)
        scheduleTimer(c, .none, afterMs: ms)
    }

    func quicTimer(_ c: Int32) {
        let t = quic
        let i = Int(c)
        guard let conn = t.conns[i].conn else { return }
        let rv = ngtcp2_conn_handle_expiry(conn, Reactor.quicNowNs())
        if rv != 0 {
            if rv == NGTCP2_ERR_IDLE_CLOSE { stats.http3.idleTimeouts.wrappingIncrement(ordering: .relaxed); quicDelete(c); return }
            if rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT { stats.http3.handshakeTimeouts.wrappingIncrement(ordering: .relaxed); quicDelete(c); return }
            ngtcp2_connection_close_error_set_transport_error_liberr(&t.conns[i].ccerr, rv, nil, 0)
            quicCloseWithError(c)
            return
        }
        quicWrite(c)
    }

    // MARK: Teardown

    /// Sends CONNECTION_CLOSE once (unless closing or draining already), then deletes.
    func quicCloseWithError(_ c: Int32) {
        let t = quic
        let i = Int(c)
        guard let conn = t.conns[i].conn else { return }
        if ngtcp2_conn_is_in_closing_period(conn) == 0 && ngtcp2_conn_is_in_draining_period(conn) == 0 {
            var pi = ngtcp2_pkt_info()
            let n = withUnsafeMutablePointer(to: &t.conns[i].local) { lp in
                withUnsafeMutablePointer(to: &t.conns[i].remote) { rp in
                    lp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { l in
                        rp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { r in
                            var path = ngtcp2_path(local: ngtcp2_addr(addr: l, addrlen: t.conns[i].localLength),
                                                   remote: ngtcp2_addr(addr: r, addrlen: t.conns[i].remoteLength), user_data: nil)
                            return edge_ngtcp2_conn_write_connection_close(conn, &path, &pi, t.tx.assumingMemoryBound(to: UInt8.self),
                                                                           QUICTables.maxDatagram, &t.conns[i].ccerr, Reactor.quicNowNs())
                        }
                    }
                }
            }
            if n > 0 { quicSend(t.conns[i].fd, t.tx, Int(n), &t.conns[i].remote, t.conns[i].remoteLength) }
        }
        quicDelete(c)
    }

    /// Frees everything the connection holds (streams, ids, libraries, slot).
    func quicDelete(_ c: Int32) {
        let t = quic
        let i = Int(c)
        if t.conns[i].busy { t.conns[i].doomed = true; return }
        guard t.conns[i].conn != nil else { return }
        t.unregisterAll(c)
        if let h3 = t.conns[i].h3 { nghttp3_conn_del(h3) }
        t.conns[i].h3 = nil
        // Streams nghttp3 did not close: free their state and views.
        h3FreeAllStreams(c)
        if let conn = t.conns[i].conn { ngtcp2_conn_del(conn) }
        if let tls = t.conns[i].tls { gnutls_deinit(tls) }
        if t.conns[i].handshaking {
            t.handshakes -= 1
            stats.http3.handshakes.store(Int(t.handshakes), ordering: .relaxed)
        }
        t.conns[i] = QUICConn()
        t.connections -= 1
        stats.http3.activeConnections.store(Int(t.connections), ordering: .relaxed)
        stats.http3.libraryBytes.store(t.account.pointee.live, ordering: .relaxed)
        closeSock(c)
    }
}
