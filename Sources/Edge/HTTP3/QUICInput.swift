import CIOUring
import CNGTCP2
import Glibc

/// Datagrams from a worker's http3 sockets. Nothing is allocated for a
/// datagram until `ngtcp2_accept` called it an acceptable Initial and the
/// per-worker caps and address validation (Retry) let it through: garbage,
/// truncated Initials and floods cost one header decode each.
extension Reactor {
    static let quicBatch = 64

    /// Adopts the http3 sockets of a new snapshot (by listener index).
    func applyQUICSockets(_ fds: [Int32], workers: Int) {
        if fds.allSatisfy({ $0 < 0 }) && quicStorage == nil { return }
        let t = quic
        t.workers = max(1, workers)
        for li in 0..<QUICTables.maxSockets {
            let fd = li < fds.count ? fds[li] : -1
            if t.fds[li] == fd { continue }
            if t.fds[li] >= 0 {
                if t.armed[li] { ring.cancel(Tag(.quicRead, acceptSlot: li), .untracked) }
                t.armed[li] = false
                // Still published under another index: keep it open.
                if !fds.contains(t.fds[li]) { quicCloseSocket(t.fds[li]) }
            }
            t.fds[li] = fd
            guard fd >= 0 else { continue }
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = withUnsafeMutablePointer(to: &t.localAddrs[li]) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            t.localLengths[li] = len
            if !draining { quicArm(li) }
        }
    }

    private func quicArm(_ li: Int) {
        ring.pollMultishot(quic.fds[li], events: EDGE_POLL_IN, Tag(.quicRead, acceptSlot: li))
        quic.armed[li] = true
    }

    /// A socket no snapshot publishes any more: its connections end with it.
    private func quicCloseSocket(_ fd: Int32) {
        let t = quic
        var slot: Int32 = 0
        while slot < freshSlot {
            if socks[Int(slot)].kind == .quic && t.conns[Int(slot)].fd == fd { quicDelete(slot) }
            slot += 1
        }
        close(fd)
    }

    func onQUICReadable(_ li: Int, _ res: Int32, more: Bool) {
        guard li >= 0 && li < QUICTables.maxSockets, let t = quicStorage else { return }
        if !more {
            t.armed[li] = false
            if !draining && t.fds[li] >= 0 && res != -ECANCELED { quicArm(li) }
        }
        guard res >= 0, t.fds[li] >= 0 else { return }
        let fd = t.fds[li]
        let v = views[Int(current)]
        guard li < v.listeners.count, v.listeners[li].http3.enabled, let ctx = v.listeners[li].quicContext else { return }
        let limits = v.listeners[li].http3
        let context = QUICServerContext.borrow(ctx)
        var from = sockaddr_storage()
        for _ in 0..<Reactor.quicBatch {
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, t.rx, QUICTables.rxBytes, Int32(MSG_DONTWAIT), $0, &len) }
            }
            if n < 0 { break }
            stats.http3.datagramsIn.wrappingIncrement(ordering: .relaxed)
            // libngtcp2 asserts datalen > 0 (an abort for the whole process): an
            // empty datagram never reaches it. Found by Fuzz/FuzzQUIC.
            if n == 0 { stats.http3.rejected.wrappingIncrement(ordering: .relaxed); continue }
            quicDatagram(fd, li, t.rx.assumingMemoryBound(to: UInt8.self), n, &from, len, limits, context)
        }
    }

    /// Routes one datagram: to its connection, or (an acceptable Initial) to a new one.
    func quicDatagram(_ fd: Int32, _ li: Int, _ data: UnsafePointer<UInt8>, _ n: Int, _ from: UnsafeMutablePointer<sockaddr_storage>,
                      _ fromLength: socklen_t, _ limits: CompiledHTTP3, _ context: QUICServerContext) {
        let t = quic
        var vc = ngtcp2_version_cid()
        let rv = ngtcp2_pkt_decode_version_cid(&vc, data, n, QUICTables.cidLength)
        if rv == NGTCP2_ERR_VERSION_NEGOTIATION {
            quicVersionNegotiation(fd, &vc, from, fromLength)
            return
        }
        guard rv == 0, let dcid = vc.dcid else { stats.http3.rejected.wrappingIncrement(ordering: .relaxed); return }
        let owner = t.lookup(dcid, vc.dcidlen)
        if owner >= 0 && socks[Int(owner)].kind == .quic {
            quicRead(owner, data, n, from, fromLength)
            return
        }
        let longHeader = data[0] & 0x80 != 0
        // An id of ours names its worker in byte 0: another worker's packet came here.
        if vc.dcidlen == QUICTables.cidLength && Int(dcid[0]) != index && Int(dcid[0]) < t.workers {
            if !longHeader || !quicIsInitial(data, n) {
                stats.http3.misrouted.wrappingIncrement(ordering: .relaxed)
                return
            }
        }
        if !longHeader {
            if vc.dcidlen == QUICTables.cidLength && Int(dcid[0]) == index { quicStatelessReset(fd, dcid, n, from, fromLength) }
            else { stats.http3.rejected.wrappingIncrement(ordering: .relaxed) }
            return
        }
        var hd = ngtcp2_pkt_hd()
        guard ngtcp2_accept(&hd, data, n) == 0, hd.type == UInt8(NGTCP2_PKT_INITIAL.rawValue) else {
            stats.http3.rejected.wrappingIncrement(ordering: .relaxed)
            return
        }
        if draining || t.connections >= limits.maxConnections || t.handshakes >= limits.maxHandshakes {
            stats.http3.refused.wrappingIncrement(ordering: .relaxed)
            return
        }
        var odcid = ngtcp2_cid()
        var retried = false
        var validatedAddress = false
        if hd.token.len > 0, let token = hd.token.base {
            let ts = Reactor.quicNowNs()
            if token[0] == UInt8(NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
                retried = from.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) {
                    ngtcp2_crypto_verify_retry_token(&odcid, token, hd.token.len, QUICSecrets.token, QUICSecrets.length, hd.version,
                                                     $0, fromLength, &hd.dcid, 10 &* edge_ngtcp2_seconds(), ts) == 0
                }
                // A bad Retry token is fatal for the attempt (RFC 9000 §8.1.2).
                if !retried { stats.http3.retryTokensInvalid.wrappingIncrement(ordering: .relaxed); return }
            } else if token[0] == UInt8(NGTCP2_CRYPTO_TOKEN_MAGIC_REGULAR) {
                // NEW_TOKEN from an earlier connection: the address is validated; a stale one only costs a Retry.
                validatedAddress = from.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) {
                    ngtcp2_crypto_verify_regular_token(token, hd.token.len, QUICSecrets.token, QUICSecrets.length,
                                                       $0, fromLength, 3600 &* edge_ngtcp2_seconds(), ts) == 0
                }
            }
            if retried || validatedAddress { stats.http3.retryTokensValid.wrappingIncrement(ordering: .relaxed) }
            else { stats.http3.retryTokensInvalid.wrappingIncrement(ordering: .relaxed) }
        }
        if !retried && !validatedAddress && (limits.retryAlways || t.handshakes >= limits.retryThreshold) {
            quicSendRetry(fd, &hd, from, fromLength)
            return
        }
        let c = retried ? quicCreate(fd, li, &hd, odcid: &odcid, from, fromLength, limits, context)
                        : quicCreate(fd, li, &hd, odcid: nil, from, fromLength, limits, context)
        if c < 0 { stats.http3.refused.wrappingIncrement(ordering: .relaxed); return }
        quicRead(c, data, n, from, fromLength)
    }

    /// Long-header type bits of QUIC v1: 00 = Initial.
    @inline(__always) private func quicIsInitial(_ data: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        n > 0 && (data[0] & 0x30) == 0
    }

    private func quicSendRetry(_ fd: Int32, _ hd: UnsafeMutablePointer<ngtcp2_pkt_hd>, _ from: UnsafeMutablePointer<sockaddr_storage>, _ fromLength: socklen_t) {
        let t = quic
        var scid = ngtcp2_cid()
        quicMakeCid(&scid, length: QUICTables.cidLength)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { token in
            guard let tp = token.baseAddress else { return }
            let tn = from.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) {
                ngtcp2_crypto_generate_retry_token(tp, QUICSecrets.token, QUICSecrets.length, hd.pointee.version, $0, fromLength,
                                                   &scid, &hd.pointee.dcid, Reactor.quicNowNs())
            }
            guard tn > 0 else { return }
            let n = ngtcp2_crypto_write_retry(t.tx.assumingMemoryBound(to: UInt8.self), QUICTables.maxDatagram, hd.pointee.version,
                                              &hd.pointee.scid, &scid, &hd.pointee.dcid, tp, Int(tn))
            guard n > 0 else { return }
            quicSend(fd, t.tx, Int(n), from, fromLength)
            stats.http3.retriesSent.wrappingIncrement(ordering: .relaxed)
        }
    }

    /// An id of this worker that no connection holds (a restart, a closed
    /// connection): tell the peer with a stateless reset, smaller than what it sent.
    private func quicStatelessReset(_ fd: Int32, _ dcid: UnsafePointer<UInt8>, _ n: Int, _ from: UnsafeMutablePointer<sockaddr_storage>, _ fromLength: socklen_t) {
        let t = quic
        // RFC 9000 §10.3: at least 21 bytes, and never as large as the trigger (no loops).
        guard n > 41 else { return }
        var cid = ngtcp2_cid()
        cid.datalen = QUICTables.cidLength
        withUnsafeMutableBytes(of: &cid.data) { b in b.baseAddress!.copyMemory(from: dcid, byteCount: QUICTables.cidLength) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16 + 64) { scratch in
            guard let token = scratch.baseAddress else { return }
            guard ngtcp2_crypto_generate_stateless_reset_token(token, QUICSecrets.reset, QUICSecrets.length, &cid) == 0 else { return }
            let randLength = min(n - 1 - 16, 40)
            let rand = token + 16
            _ = edge_gnutls_random(rand, randLength)
            let w = ngtcp2_pkt_write_stateless_reset(t.tx.assumingMemoryBound(to: UInt8.self), QUICTables.maxDatagram, token, rand, randLength)
            guard w > 0 else { return }
            quicSend(fd, t.tx, Int(w), from, fromLength)
            stats.http3.statelessResets.wrappingIncrement(ordering: .relaxed)
        }
    }

    private func quicVersionNegotiation(_ fd: Int32, _ vc: UnsafeMutablePointer<ngtcp2_version_cid>, _ from: UnsafeMutablePointer<sockaddr_storage>, _ fromLength: socklen_t) {
        let t = quic
        guard let scid = vc.pointee.scid, let dcid = vc.pointee.dcid else { return }
        var versions: UInt32 = edge_ngtcp2_proto_v1()
        var unused: UInt8 = 0
        _ = edge_gnutls_random(&unused, 1)
        let n = ngtcp2_pkt_write_version_negotiation(t.tx.assumingMemoryBound(to: UInt8.self), QUICTables.maxDatagram, unused & 0x7F,
                                                     scid, vc.pointee.scidlen, dcid, vc.pointee.dcidlen, &versions, 1)
        if n > 0 { quicSend(fd, t.tx, Int(n), from, fromLength) }
    }
}
