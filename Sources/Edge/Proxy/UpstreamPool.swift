import CIOUring
import Glibc

/// Per-reactor keep-alive pools of upstream connections (a stack of idle
/// sockets per endpoint) and endpoint picking. Nothing is shared between
/// reactors, so no locks.
extension Reactor {
    /// Endpoint for a request via the cluster's balancer; -1 if the cluster has none.
    @inline(__always) func pickEndpoint(_ v: Int32, _ cluster: Int32, _ req: inout RequestView) -> Int32 {
        let view = views[Int(v)]
        guard cluster >= 0, Int(cluster) < view.clusters.count, let active = view.active else { return -1 }
        return withUnsafePointer(to: &req) { r in views[Int(v)].balancer?.pick(cluster: cluster, request: r, active: active) ?? -1 }
    }

    /// Cluster of a weighted split (canary): arm chosen in proportion to weights.
    @inline(__always) func pickSplit(_ v: Int32, _ route: CompiledRoute) -> Int32 {
        let total = route.splitTotalWeight
        guard total > 0, route.splitCount > 0 else { return -1 }
        let x = views[Int(v)].balancer?.random(total) ?? 0
        let first = Int(route.firstSplit)
        for k in first..<(first + Int(route.splitCount)) {
            let s = views[Int(v)].splits[k]
            if x < s.cumulativeWeight { return s.cluster }
        }
        return views[Int(v)].splits[first + Int(route.splitCount) - 1].cluster
    }

    /// An idle pooled connection to endpoint `e` of view `v`, or a new connecting one; -1 on failure.
    func acquireUpstream(_ v: Int32, _ e: Int32) -> Int32 {
        let view = views[Int(v)]
        if let slots = view.poolSlots, let counts = view.poolCounts {
            let base = Int(e) * Int(view.poolCapacity)
            while counts[Int(e)] > 0 {
                counts[Int(e)] -= 1
                let u = slots[base + Int(counts[Int(e)])]
                let s = socks[Int(u)]
                if s.kind == .upstream && s.pooled && !s.closing && !s.eof {
                    socks[Int(u)].pooled = false
                    socks[Int(u)].reused = true
                    cancelTimer(u)
                    return u
                }
            }
        }
        return connectUpstream(v, e)
    }

    /// A new upstream socket to endpoint `e`, connecting now or, for a retry's
    /// backoff, after `delayMs` (the `.upstreamBackoff` timer starts it); -1 on failure.
    func connectUpstream(_ v: Int32, _ e: Int32, delayMs: Int64 = 0) -> Int32 {
        guard v >= 0, let base = views[Int(v)].endpoints.baseAddress, e >= 0, Int(e) < views[Int(v)].endpoints.count else { return -1 }
        let ep = base + Int(e)
        let family = ep.pointee.address.family
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { return -1 }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let u = allocSlot(.upstream, fd: fd)
        if u < 0 { close(fd); return -1 }
        socks[Int(u)].endpoint = e
        socks[Int(u)].view = v
        retainView(ViewID(raw: v))
        countConnection(v, e)
        if delayMs > 0 { scheduleTimer(u, .upstreamBackoff, afterMs: delayMs) } else { submitConnect(u) }
        return u
    }

    /// Starts the connect of a socket made by `connectUpstream`.
    func submitConnect(_ u: Int32) {
        let v = socks[Int(u)].view, e = socks[Int(u)].endpoint
        guard v >= 0, let base = views[Int(v)].endpoints.baseAddress, e >= 0, Int(e) < views[Int(v)].endpoints.count else { return }
        let ep = base + Int(e)
        let addr = UnsafeMutableRawPointer(ep) + (MemoryLayout<CompiledEndpoint>.offset(of: \.address) ?? 0)
        ring.connect(socks[Int(u)].fd, addr.assumingMemoryBound(to: sockaddr.self), ep.pointee.length, tag(.connect, u))
        socks[Int(u)].ops += 1
        let cluster = views[Int(v)].clusters[Int(ep.pointee.cluster)]
        scheduleTimer(u, .upstreamConnect, afterMs: Int64(cluster.connectTimeoutMs))
    }

    /// Parks a finished upstream connection for reuse, or closes it when the
    /// pool is full or its snapshot is no longer the current one.
    func poolRelease(_ u: Int32) {
        let ui = Int(u)
        let v = socks[ui].view
        let e = Int(socks[ui].endpoint)
        guard v == current, let slots = views[Int(v)].poolSlots, let counts = views[Int(v)].poolCounts else {
            closeSock(u)
            return
        }
        let view = views[Int(v)]
        let cluster = view.clusters[Int(view.endpoints[e].cluster)]
        let limit = min(cluster.maxIdlePerEndpoint, view.poolCapacity)
        // A connection that carried a PROXY header speaks for one client only.
        if draining || counts[e] >= limit || cluster.sendProxyProtocol != 0 {
            closeSock(u)
            return
        }
        if socks[ui].outBuf >= 0 && buffers.refs[Int(socks[ui].outBuf)] == 1 {
            buffers.release(socks[ui].outBuf)
            socks[ui].outBuf = -1
        }
        socks[ui].exchange = -1
        socks[ui].pooled = true
        slots[e * Int(view.poolCapacity) + Int(counts[e])] = u
        counts[e] += 1
        scheduleTimer(u, .upstreamIdle, afterMs: Int64(cluster.idleTimeoutMs))
        updateRecv(u)
    }

    func poolRemove(_ u: Int32) {
        let e = Int(socks[Int(u)].endpoint)
        let v = socks[Int(u)].view
        socks[Int(u)].pooled = false
        guard e >= 0, v >= 0, let slots = views[Int(v)].poolSlots, let counts = views[Int(v)].poolCounts else { return }
        let base = e * Int(views[Int(v)].poolCapacity)
        let n = Int(counts[e])
        for k in 0..<n where slots[base + k] == u {
            slots[base + k] = slots[base + n - 1]
            counts[e] -= 1
            return
        }
    }
}
