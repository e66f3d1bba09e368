import Glibc

/// least_latency: Finagle/Linkerd's peak EWMA. Each endpoint's cost is a
/// moving average of its response times that jumps up at once on a slower
/// answer ("peak") and decays towards faster ones with time constant
/// `decayMs`; a pick draws two endpoints (power of two choices) and keeps the
/// one with the lower cost × (in-flight + 1). Per reactor, like all balancer
/// state; an endpoint never measured costs 0, so it gets tried.
extension ReactorBalancer {
    static let latencyDecayMs: Double = 10_000

    @inline(__always)
    mutating func leastLatency(_ s: ClusterState, _ active: UnsafePointer<Int32>, usableOnly: Bool) -> Int32 {
        var a = weightedRandom(s, excluding: -1)
        if usableOnly {
            var k = 0
            while k < 4 && !usable(a) { a = weightedRandom(s, excluding: -1); k &+= 1 }
            if !usable(a) { return -1 }
        }
        if s.count < 2 { return Int32(truncatingIfNeeded: a) }
        var b = weightedRandom(s, excluding: a)
        if usableOnly {
            var k = 0
            while k < 4 && !usable(b) { b = weightedRandom(s, excluding: a); k &+= 1 }
            if !usable(b) { return Int32(truncatingIfNeeded: a) }
        }
        return Int32(truncatingIfNeeded: latencyScore(b, active) < latencyScore(a, active) ? b : a)
    }

    @inline(__always)
    private func latencyScore(_ i: Int, _ active: UnsafePointer<Int32>) -> Double {
        (latencyUs[i] + 1) * Double(max(0, active[i]) &+ 1)
    }

    /// Records one response time of endpoint `e` (index into the table's endpoints).
    @inline(__always)
    func observeLatency(endpoint e: Int32, rttUs: Int64, nowMs: Int64) {
        let i = Int(e)
        guard i >= 0, i < latencyUs.count else { return }
        let rtt = Double(max(rttUs, 0))
        let old = latencyUs[i]
        if rtt > old {
            latencyUs[i] = rtt   // peak: a slowdown counts immediately
        } else {
            let dt = Double(max(nowMs &- latencyStampMs[i], 0))
            let w = exp(-dt / Self.latencyDecayMs)
            latencyUs[i] = old * w + rtt * (1 - w)
        }
        latencyStampMs[i] = nowMs
    }
}
