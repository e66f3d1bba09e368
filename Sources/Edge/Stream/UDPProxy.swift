import CIOUring
import Glibc

/// UDP listeners (`protocol: udp`): a session per client address, each with its
/// own connected upstream socket, so replies find their way back; sessions stay
/// on the reactor that saw the first datagram (SO_REUSEPORT hashes the client's
/// 4-tuple to one worker) and expire after `session_timeout` of silence.
/// Datagrams are moved with non-blocking recvfrom/send in batches of up to 64
/// per readiness event (io_uring recvmsg multishot would need liburing > 2.3
/// helpers to parse its buffers).
extension Reactor {
    static let udpBatch = 64
    static let udpTableSize = 1 << 16

    func armUDPListener(_ a: Int) {
        ring.pollMultishot(acceptFd[a], events: EDGE_POLL_IN, Tag(.udpRead, acceptSlot: a))
        acceptArmed[a] = true
    }

    func onUDPListenerReadable(_ a: Int, _ res: Int32, more: Bool) {
        guard a >= 0 && a < acceptCount else { return }
        if !more {
            acceptArmed[a] = false
            if !draining && acceptFd[a] >= 0 && res != -ECANCELED { armUDPListener(a) }
        }
        guard res >= 0, acceptFd[a] >= 0, !draining else { return }
        let v = views[Int(current)]
        let li = Int(acceptListener[a])
        guard li < v.listeners.count else { return }
        let l = v.listeners[li]
        for _ in 0..<Reactor.udpBatch {
            var from = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(acceptFd[a], udpScratch, 65536, Int32(MSG_DONTWAIT), $0, &len) }
            }
            if n < 0 { break }
            stats.bump(stats.udpDatagramsIn)
            if l.isDTLS { dtlsDatagram(a, &from, len, n, l); continue }
            var s = udpLookup(a, &from, len)
            if s < 0 {
                s = udpOpenSession(a, &from, len, l)
                if s < 0 { stats.bump(stats.udpDropped); continue }
            }
            if send(socks[Int(s)].fd, udpScratch, n, Int32(MSG_DONTWAIT)) < 0 { stats.bump(stats.udpDropped) }
            scheduleTimer(s, .udpIdle, afterMs: Int64(l.udpSessionTimeoutMs))
        }
    }

    /// Replies from the upstream go back to the client from the listener's address.
    func udpSessionReadable(_ s: Int32) {
        let i = Int(s)
        let a = Int(socks[i].acceptSlot)
        guard a < acceptCount, acceptFd[a] >= 0 else { closeSock(s); return }
        if let d = dtls, d.ssl[i] != nil { dtlsUpstreamReadable(s, d); return }
        var moved = false
        for _ in 0..<Reactor.udpBatch {
            let n = recv(socks[i].fd, udpScratch, 65536, Int32(MSG_DONTWAIT))
            if n < 0 { break }
            let sent = withUnsafePointer(to: &udpClients[i]) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(acceptFd[a], udpScratch, n, Int32(MSG_DONTWAIT), $0, udpClientLengths[i]) }
            }
            if sent < 0 { stats.bump(stats.udpDropped) } else { stats.bump(stats.udpDatagramsOut) }
            moved = true
        }
        if moved { scheduleTimer(s, .udpIdle, afterMs: Int64(socks[i].relayIdleMs)) }
    }

    func udpOpenSession(_ a: Int, _ from: inout sockaddr_storage, _ len: socklen_t, _ l: CompiledListener) -> Int32 {
        guard udpSessionCount < Int(l.udpMaxSessions), udpSessionCount < Reactor.udpTableSize / 2 else { return -1 }
        let v = current
        let e = withUnsafeTemporaryAllocation(byteCount: 48, alignment: 1) { text -> Int32 in
            var req = RequestView.stream(clientIP: UnsafeRawBufferPointer(rebasing: text[0..<from.writeIPText(into: text)]))
            return pickEndpoint(v, l.streamCluster, &req)
        }
        guard e >= 0, let base = views[Int(v)].endpoints.baseAddress else { return -1 }
        let ep = base + Int(e)
        let fd = socket(ep.pointee.address.family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { return -1 }
        let addr = UnsafeMutableRawPointer(ep) + (MemoryLayout<CompiledEndpoint>.offset(of: \.address) ?? 0)
        if connect(fd, addr.assumingMemoryBound(to: sockaddr.self), ep.pointee.length) != 0 { close(fd); return -1 }
        let s = allocSlot(.udpSession, fd: fd)
        if s < 0 { close(fd); return -1 }
        socks[Int(s)].acceptSlot = UInt8(a)
        // A session needs nothing from the snapshot after connecting: it keeps
        // its timeout, not the view, so it never holds an old config alive.
        socks[Int(s)].relayIdleMs = l.udpSessionTimeoutMs
        udpClients[Int(s)] = from
        udpClientLengths[Int(s)] = len
        udpInsert(s, a)
        udpSessionCount += 1
        stats.udpSessions.store(udpSessionCount, ordering: .relaxed)
        armPollIn(s)
        return s
    }

    // MARK: Session table (open addressing, linear probing, tombstones)

    private func udpHash(_ a: Int, _ from: UnsafeRawPointer, _ len: socklen_t) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(a)
        for k in 0..<Int(min(len, 28)) { h = (h ^ UInt64(from.load(fromByteOffset: k, as: UInt8.self))) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29)) & (Reactor.udpTableSize - 1)
    }

    private func udpMatches(_ s: Int32, _ a: Int, _ from: UnsafeRawPointer, _ len: socklen_t) -> Bool {
        guard Int(socks[Int(s)].acceptSlot) == a, udpClientLengths[Int(s)] == len else { return false }
        return withUnsafePointer(to: &udpClients[Int(s)]) { memcmp($0, from, Int(len)) == 0 }
    }

    func udpLookup(_ a: Int, _ from: inout sockaddr_storage, _ len: socklen_t) -> Int32 {
        withUnsafePointer(to: &from) { p -> Int32 in
            var k = udpHash(a, p, len)
            for _ in 0..<Reactor.udpTableSize {
                let s = udpTable[k]
                if s == -1 { return -1 }
                if s >= 0 && socks[Int(s)].kind == .udpSession && !socks[Int(s)].closing && udpMatches(s, a, p, len) { return s }
                k = (k + 1) & (Reactor.udpTableSize - 1)
            }
            return -1
        }
    }

    private func udpInsert(_ s: Int32, _ a: Int) {
        var k = withUnsafePointer(to: &udpClients[Int(s)]) { udpHash(a, $0, udpClientLengths[Int(s)]) }
        while udpTable[k] >= 0 { k = (k + 1) & (Reactor.udpTableSize - 1) }
        udpTable[k] = s
    }

    /// Called when a session closes.
    func udpRemove(_ s: Int32) {
        let a = Int(socks[Int(s)].acceptSlot)
        var k = withUnsafePointer(to: &udpClients[Int(s)]) { udpHash(a, $0, udpClientLengths[Int(s)]) }
        for _ in 0..<Reactor.udpTableSize {
            let x = udpTable[k]
            if x == -1 { return }
            if x == s {
                udpTable[k] = -2
                udpSessionCount -= 1
                stats.udpSessions.store(udpSessionCount, ordering: .relaxed)
                return
            }
            k = (k + 1) & (Reactor.udpTableSize - 1)
        }
    }
}
