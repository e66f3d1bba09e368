import CIOUring
import Glibc

/// Per-reactor keep-alive pools of upstream connections (a stack of idle
/// sockets per endpoint) and endpoint picking. Nothing is shared between
/// reactors, so no locks.
extension Reactor {
    /// Round robin over the cluster's weight-expanded endpoint slots; -1 if none.
    func pickEndpoint(_ cluster: Int32) -> Int32 {
        guard cluster >= 0, Int(cluster) < table.clusters.count else { return -1 }
        let cl = table.clusters[Int(cluster)]
        if cl.slotCount <= 0 { return -1 }
        var k = roundRobin[Int(cluster)]
        if k >= cl.slotCount || k < 0 { k = 0 }
        roundRobin[Int(cluster)] = k + 1 >= cl.slotCount ? 0 : k + 1
        return table.endpointSlots[Int(cl.firstSlot + k)]
    }

    /// An idle pooled connection to endpoint `e`, or a new connecting one; -1 on failure.
    func acquireUpstream(_ e: Int32) -> Int32 {
        let base = Int(e) * Int(poolCapacity)
        while poolCounts[Int(e)] > 0 {
            poolCounts[Int(e)] -= 1
            let u = poolSlots[base + Int(poolCounts[Int(e)])]
            let s = socks[Int(u)]
            if s.kind == .upstream && s.pooled && !s.closing && !s.eof {
                socks[Int(u)].pooled = false
                socks[Int(u)].reused = true
                cancelTimer(u)
                return u
            }
        }
        return connectUpstream(e)
    }

    func connectUpstream(_ e: Int32) -> Int32 {
        let ep = table.endpoints.baseAddress.unsafelyUnwrapped + Int(e)
        let family = Int32(ep.pointee.address.ss_family)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { return -1 }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let u = allocSlot(.upstream, fd: fd)
        if u < 0 { close(fd); return -1 }
        socks[Int(u)].endpoint = e
        let s = sqe()
        let addr = UnsafeMutableRawPointer(ep) + (MemoryLayout<CompiledEndpoint>.offset(of: \.address) ?? 0)
        io_uring_prep_connect(s, fd, addr.assumingMemoryBound(to: sockaddr.self), ep.pointee.length)
        io_uring_sqe_set_data64(s, UserData.make(.connect, u, socks[Int(u)].gen))
        socks[Int(u)].ops += 1
        let cluster = table.clusters[Int(ep.pointee.cluster)]
        scheduleTimer(u, .upstreamConnect, afterMs: Int64(cluster.connectTimeoutMs))
        return u
    }

    /// Parks a finished upstream connection for reuse, or closes it when the pool is full.
    func poolRelease(_ u: Int32) {
        let ui = Int(u)
        let e = Int(socks[ui].endpoint)
        let cluster = table.clusters[Int(table.endpoints[e].cluster)]
        let limit = min(cluster.maxIdlePerEndpoint, poolCapacity)
        if draining || poolCounts[e] >= limit {
            closeSock(u)
            return
        }
        if socks[ui].outBuf >= 0 && buffers.refs[Int(socks[ui].outBuf)] == 1 {
            buffers.release(socks[ui].outBuf)
            socks[ui].outBuf = -1
        }
        socks[ui].peer = -1
        socks[ui].pooled = true
        poolSlots[e * Int(poolCapacity) + Int(poolCounts[e])] = u
        poolCounts[e] += 1
        scheduleTimer(u, .upstreamIdle, afterMs: Int64(cluster.idleTimeoutMs))
        updateRecv(u)
    }

    func poolRemove(_ u: Int32) {
        let e = Int(socks[Int(u)].endpoint)
        socks[Int(u)].pooled = false
        guard e >= 0 else { return }
        let base = e * Int(poolCapacity)
        let n = Int(poolCounts[e])
        for k in 0..<n where poolSlots[base + k] == u {
            poolSlots[base + k] = poolSlots[base + n - 1]
            poolCounts[e] -= 1
            return
        }
    }
}
