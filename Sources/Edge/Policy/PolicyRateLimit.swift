/// Admission phase: local token buckets, one bounded table per limit per
/// worker (4096 buckets; a full probe window evicts its stalest bucket, so
/// client input can never grow memory). Each worker enforces the whole limit
/// for the connections it serves.
extension Reactor {
    static let nanoToken: Int64 = 1_000_000_000
    static let bucketProbe = 8

    /// nil: admitted (one token taken). Otherwise seconds until a token is
    /// back, or `sharedUnavailable` (a shared limit with Redis down and
    /// `on_failure: closed`).
    func admitRate(_ c: Int32, _ xi: Int, _ hot: PolicyHot, _ p: Int, route: Int32, _ req: RequestView) -> Int64? {
        guard p >= 0, p < hot.rateLimits.count, index < hot.workers.count else { return nil }
        let rl = hot.rateLimits[p]
        if rl.shared >= 0 && Int(rl.shared) < hot.sharedLimits.count {
            // Identity with a fixed seed so every instance names the key alike in Redis.
            let id = rateKey(c, xi, rl, route: route, req, seed: Reactor.sharedKeySeed &+ UInt64(p))
            switch admitShared(hot.sharedLimits[Int(rl.shared)], id: id, slotSeed: hot.hashSeed) {
            case .admitted(let remaining, let reset):
                noteRate(xi, p, remaining: remaining, reset: reset)
                return nil
            case .limited(let wait): return wait
            case .unavailable: return Reactor.sharedUnavailable
            case .local: break
            }
        }
        let seed = hot.hashSeed &+ UInt64(p) &* 0x9E37_79B9_7F4A_7C15
        let key = rateKey(c, xi, rl, route: route, req, seed: seed)
        return admitLocal(rl, p, xi, key: key, hot)
    }

    /// The tightest limit's numbers go into `RateLimit-*`.
    @inline(__always) func noteRate(_ xi: Int, _ p: Int, remaining: Int64, reset: Int64) {
        let st = exchanges[xi].policy
        if st.rateLimit < 0 || remaining < st.rateRemaining {
            exchanges[xi].policy.rateLimit = Int32(p)
            exchanges[xi].policy.rateRemaining = remaining
            exchanges[xi].policy.rateResetSeconds = reset
        }
    }

    /// What the limit counts by, hashed (never 0).
    @inline(__always) func rateKey(_ c: Int32, _ xi: Int, _ rl: CompiledRateLimit, route: Int32, _ req: RequestView, seed: UInt64) -> UInt64 {
        let key: UInt64
        switch rl.key {
        case .route: key = PolicyHash.value(UInt64(UInt32(bitPattern: route)), seed: seed)
        case .consumer where exchanges[xi].policy.consumer >= 0:
            key = PolicyHash.value(UInt64(exchanges[xi].policy.consumer) | 1 << 40, seed: seed)
        case .header:
            if let v = policyHeader(req, rl.header), v.count > 0 { key = PolicyHash.bytes(v, seed: seed) }
            else { key = clientKey(c, seed) }
        default:
            // No consumer (or header) to count by: the client address stands in.
            key = clientKey(c, seed)
        }
        return key
    }

    /// The per-worker token bucket.
    func admitLocal(_ rl: CompiledRateLimit, _ p: Int, _ xi: Int, key: UInt64, _ hot: PolicyHot) -> Int64? {
        let buckets = hot.workers[index].buckets + Int(rl.firstBucket)
        let mask = PolicySet.bucketsPerLimit - 1
        var slot = Int(truncatingIfNeeded: key) & mask
        var victim = slot
        var found = false
        for _ in 0..<Reactor.bucketProbe {
            let b = buckets[slot]
            if b.key == key { found = true; break }
            if b.key == 0 { victim = slot; break }
            if b.lastMs < buckets[victim].lastMs { victim = slot }
            slot = (slot + 1) & mask
        }
        if !found {
            slot = victim
            buckets[slot] = RateBucket(key: key, tokens: rl.capacity, lastMs: nowMs)
        }
        var b = buckets[slot]
        let elapsed = max(0, nowMs - b.lastMs)
        let fillMs = rl.capacity / rl.refillPerMs + 1
        b.tokens = min(rl.capacity, b.tokens + min(elapsed, fillMs) * rl.refillPerMs)
        b.lastMs = nowMs
        defer { buckets[slot] = b }
        if b.tokens >= Reactor.nanoToken {
            b.tokens -= Reactor.nanoToken
            noteRate(xi, p, remaining: b.tokens / Reactor.nanoToken, reset: ((rl.capacity - b.tokens) / rl.refillPerMs + 999) / 1000)
            return nil
        }
        let waitMs = (Reactor.nanoToken - b.tokens + rl.refillPerMs - 1) / rl.refillPerMs
        return max(1, (waitMs + 999) / 1000)
    }

    private func clientKey(_ c: Int32, _ seed: UInt64) -> UInt64 {
        guard let (hi, lo) = clientAddress128(c) else { return PolicyHash.value(0, seed: seed) }
        return PolicyHash.value(hi ^ Reactor.mix(lo), seed: seed)
    }
}
