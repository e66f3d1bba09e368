import Protocols

/// A miss in flight: the exchange fetching a key, and the exchanges waiting for it.
struct CacheLeader {
    var hash: UInt64 = 0
    /// Leading exchange, -1 when the slot is free.
    var exchange: Int32 = -1
    var firstWaiter: Int32 = -1
}

/// Request coalescing (per worker): the first miss of a key goes upstream; later
/// misses of the same key park (phase `.cacheWait`, request head left in the
/// input) until that response is stored, then look up again and are served
/// from it. A waiter whose leader fails, answers something uncacheable, or
/// takes longer than `coalesce_timeout` goes upstream itself.
extension Reactor {
    /// Parks exchange of `c` behind a leader of the same key (true), or makes it the leader (false: go upstream).
    func cacheCoalesce(_ c: Int32, _ zp: UnsafeMutablePointer<CacheZone>, _ headLength: Int) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        let st = exchanges[xi].cache
        guard st.keyBuf >= 0 else { return false }
        let key = buffers.bytes(st.keyBuf)
        var free = -1
        for s in 0..<CacheZone.leaderSlots {
            let l = zp.pointee.leaders[s]
            if l.exchange < 0 { if free < 0 { free = s }; continue }
            guard l.hash == st.hash else { continue }
            let lk = exchanges[Int(l.exchange)].cache.keyBuf
            guard lk >= 0, zp.pointee.sameBytes(buffers.bytes(lk), key) else { continue }
            // Wait behind this leader.
            exchanges[xi].cache.waitingOn = Int32(s)
            exchanges[xi].cache.nextWaiter = l.firstWaiter
            zp.pointee.leaders[s].firstWaiter = Int32(xi)
            exchanges[xi].phase = .cacheWait
            stats.cache.bump(stats.cache.coalesced)
            let route = views[Int(exchanges[xi].view)].routes[Int(exchanges[xi].route)]
            scheduleTimer(c, .cacheWait, afterMs: Int64(route.cache.coalesceTimeoutMs))
            return true
        }
        if free >= 0 {
            zp.pointee.leaders[free] = CacheLeader(hash: st.hash, exchange: Int32(xi), firstWaiter: -1)
            exchanges[xi].cache.leader = true
            exchanges[xi].cache.waitingOn = -1
            exchanges[xi].cache.nextWaiter = Int32(free)  // a leader keeps its slot here
        }
        return false
    }

    /// The leader stored its entry, answered something uncacheable, or ended:
    /// its waiters wake on their next timer tick (never re-entered from here).
    func cacheLeaderEnded(_ xi: Int) {
        guard exchanges[xi].cache.leader, let zp = cacheZone(exchanges[xi].view, exchanges[xi].route) else { return }
        let s = Int(exchanges[xi].cache.nextWaiter)
        exchanges[xi].cache.leader = false
        exchanges[xi].cache.nextWaiter = -1
        guard s >= 0, s < CacheZone.leaderSlots, zp.pointee.leaders[s].exchange == Int32(xi) else { return }
        var w = zp.pointee.leaders[s].firstWaiter
        zp.pointee.leaders[s] = CacheLeader()
        while w >= 0 {
            let next = exchanges[Int(w)].cache.nextWaiter
            exchanges[Int(w)].cache.waitingOn = -1
            exchanges[Int(w)].cache.nextWaiter = -1
            let wc = exchanges[Int(w)].client
            if wc >= 0 && !socks[Int(wc)].closing { scheduleTimer(wc, .cacheWait, afterMs: 0) }
            w = next
        }
    }

    /// The entry of a leader is stored: wake the waiters now.
    func cacheFillDone(_ xi: Int, _ zp: UnsafeMutablePointer<CacheZone>, _ e: Int32) {
        if exchanges[xi].cache.leader { cacheLeaderEnded(xi) }
    }

    /// A waiting exchange ends (client gone): leave the leader's list.
    func cacheStopWaiting(_ xi: Int) {
        let s = Int(exchanges[xi].cache.waitingOn)
        exchanges[xi].cache.waitingOn = -1
        guard s >= 0, s < CacheZone.leaderSlots, let zp = cacheZone(exchanges[xi].view, exchanges[xi].route) else { return }
        var prev: Int32 = -1
        var w = zp.pointee.leaders[s].firstWaiter
        while w >= 0 {
            let next = exchanges[Int(w)].cache.nextWaiter
            if Int(w) == xi {
                if prev >= 0 { exchanges[Int(prev)].cache.nextWaiter = next } else { zp.pointee.leaders[s].firstWaiter = next }
                break
            }
            prev = w
            w = next
        }
        exchanges[xi].cache.nextWaiter = -1
    }

    /// `.cacheWait` timer: woken by the leader, or waited `coalesce_timeout`.
    /// The request head is parsed again from the input; the cache is asked
    /// again (a hit now, normally) and otherwise the request goes upstream.
    func cacheWaitFired(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        guard xi >= 0, exchanges[xi].phase == .cacheWait else { return }
        if exchanges[xi].cache.waitingOn >= 0 { cacheStopWaiting(xi) }
        exchanges[xi].phase = .readingHead
        guard linearizeInput(c), socks[Int(c)].inHead >= 0 else {
            respondError(c, 503, "no buffer for the request head", cause: "overloaded", consume: -1)
            return
        }
        let buf = buffers.bytes(socks[Int(c)].inHead)
        var head = RequestHead()
        var scan = HeadScanState()
        guard case .complete = HTTP1Parser.parseRequest(buf, limits: listenerSettings(c).limits, state: &scan, head: &head, headers: headerTable) else {
            respondError(c, 400, "request head changed while waiting", cause: nil, consume: -1)
            return
        }
        let v = exchanges[xi].view, r = exchanges[xi].route
        guard v >= 0, r >= 0 else { closeSock(c); return }
        let route = views[Int(v)].routes[Int(r)]
        // Ask again without coalescing (a second wait would only add latency).
        if exchanges[xi].cache.keyBuf >= 0 { buffers.release(exchanges[xi].cache.keyBuf) }
        exchanges[xi].cache = CacheExchangeState()
        var once = route
        once.cache.coalesce = false
        if cacheLookup(c, once, &head, buf) { return }
        let request = NeutralRequestHead(h1: head, bytes: buf, fields: UnsafeBufferPointer(headerTable), scheme: .http)
        var req = RequestView.make(request, clientIP: clientAddressText(c))
        startProxy(c, route, &head, buf, &req)
    }
}
