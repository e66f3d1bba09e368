/// Picking when some endpoints of a cluster are unusable (failed health
/// checks or ejected): every policy keeps its own shape but skips them.
/// Only reached when the cluster's health word says so; returns -1 when no
/// usable endpoint was found (the caller then falls back to the plain pick).
extension ReactorBalancer {
    @inline(__always)
    func usable(_ i: Int) -> Bool {
        i >= 0 && i < endpointHealth.count && EndpointHealth.usable(endpointHealth[i])
    }

    mutating func pickUsable(_ cluster: Int32, _ s: ClusterState, _ request: UnsafePointer<RequestView>?,
                             _ active: UnsafePointer<Int32>) -> Int32 {
        let first = Int(s.first), count = Int(s.count)
        guard count > 0 else { return -1 }
        switch s.balance {
        case .roundRobin where s.uniform:
            // Advance the shared cursor past unusable endpoints.
            let st = states.baseAddress.unsafelyUnwrapped + Int(cluster)
            var k = 0
            while k < count {
                var c = st.pointee.cursor
                if c >= st.pointee.count || c < 0 { c = 0 }
                st.pointee.cursor = c &+ 1
                if usable(first &+ Int(c)) { return s.first &+ c }
                k &+= 1
            }
            return -1
        case .roundRobin, .weightedRoundRobin:
            let picked = SmoothWeighted.pick(
                first: first, count: count, weights: weights.baseAddress.unsafelyUnwrapped,
                current: current.baseAddress.unsafelyUnwrapped, eligible: { usable($0) })
            return Int32(truncatingIfNeeded: picked)
        case .leastConnections:
            var best = -1
            var i = first
            while i < first &+ count {
                if usable(i) && (best < 0 || inFlight(active, i) &* weights[best] < inFlight(active, best) &* weights[i]) { best = i }
                i &+= 1
            }
            if best < 0 { return -1 }
            // Usable endpoints tied for fewest take turns (smooth WRR), as in the plain pick.
            let ba = inFlight(active, best), bw = weights[best]
            let w = weights
            let picked = SmoothWeighted.pick(
                first: first, count: count, weights: weights.baseAddress.unsafelyUnwrapped,
                current: current.baseAddress.unsafelyUnwrapped,
                eligible: { usable($0) && inFlight(active, $0) &* bw == ba &* w[$0] })
            return Int32(truncatingIfNeeded: picked >= 0 ? picked : best)
        case .randomTwo:
            // Two usable draws (a few tries each), keep the less loaded one.
            var a = -1, b = -1
            for _ in 0..<4 where a < 0 { let x = weightedRandom(s, excluding: -1); if usable(x) { a = x } }
            if a < 0 { return scanUsable(first, count, from: Int(random(s.count))) }
            for _ in 0..<4 where b < 0 { let x = weightedRandom(s, excluding: a); if usable(x) { b = x } }
            if b < 0 { return Int32(truncatingIfNeeded: a) }
            return Int32(truncatingIfNeeded: inFlight(active, b) &* weights[a] < inFlight(active, a) &* weights[b] ? b : a)
        case .consistentHash:
            return consistentHashUsable(cluster, s, request)
        case .leastLatency:
            return leastLatency(s, active, usableOnly: true)
        }
    }

    /// Maglev with unusable endpoints: probe the following table entries, which
    /// belong to other endpoints in proportion to their weights, so a key whose
    /// endpoint is out moves to a deterministic usable one and keys of usable
    /// endpoints do not move at all.
    private mutating func consistentHashUsable(_ cluster: Int32, _ s: ClusterState, _ request: UnsafePointer<RequestView>?) -> Int32 {
        let first = Int(s.first), count = Int(s.count)
        guard let request else { return scanUsable(first, count, from: Int(random(s.count))) }
        let key = s.hashKey(request)
        if key.count == 0 { return scanUsable(first, count, from: Int(random(s.count))) }
        let h = HashKey.hash(key)
        if s.maglevCount > 0 {
            var slot = Int(h % UInt64(s.maglevCount))
            var k = 0
            while k < 256 {
                let off = Int(maglev[s.maglevFirst &+ slot])
                if off >= 0 && off < count && usable(first &+ off) { return Int32(truncatingIfNeeded: first &+ off) }
                slot &+= 1
                if slot >= s.maglevCount { slot = 0 }
                k &+= 1
            }
        }
        return scanUsable(first, count, from: Int(h % UInt64(count)))
    }

    /// First usable endpoint at or after `from` (wrapping), -1 if none.
    @inline(__always)
    private func scanUsable(_ first: Int, _ count: Int, from: Int) -> Int32 {
        var k = 0
        while k < count {
            let i = first &+ ((from &+ k) % count)
            if usable(i) { return Int32(truncatingIfNeeded: i) }
            k &+= 1
        }
        return -1
    }

    /// Another usable endpoint of the cluster than `previous` for a retry:
    /// the next usable one after it (deterministic, spreads retries in order),
    /// `previous` itself when it is the only one.
    func retryEndpoint(cluster: Int32, previous: Int32) -> Int32 {
        guard cluster >= 0, Int(cluster) < states.count else { return -1 }
        let s = states[Int(cluster)]
        let first = Int(s.first), count = Int(s.count)
        guard count > 1 else { return count == 1 ? s.first : -1 }
        let prevOff = Int(previous) - first
        let start = prevOff >= 0 && prevOff < count ? prevOff + 1 : 0
        let checks = s.health != nil
        var k = 0
        while k < count - 1 || (prevOff < 0 && k < count) {
            let i = first &+ ((start &+ k) % count)
            if i != Int(previous) && (!checks || usable(i)) { return Int32(truncatingIfNeeded: i) }
            k &+= 1
        }
        // No other usable one: any other endpoint beats the one that just failed.
        return Int32(truncatingIfNeeded: first &+ (start % count))
    }
}

@inline(__always)
private func inFlight(_ active: UnsafePointer<Int32>, _ i: Int) -> Int64 { Int64(max(0, active[i])) }
