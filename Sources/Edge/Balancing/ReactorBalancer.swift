/// Per-reactor, per-snapshot endpoint picking for every cluster of one
/// `RouteTable`. Owned by exactly one reactor thread (no atomics, no sharing):
/// each reactor balances its own share of traffic, which converges to the
/// configured weights overall. Everything is allocated in `init`; `pick` and
/// `random` never allocate, retain or trap.
///
/// The reactor builds one when it adopts a snapshot and calls `deallocate()`
/// when it drops that snapshot. The table must outlive the balancer (it holds
/// plain pointers into it, so reading it costs no ARC traffic).
package struct ReactorBalancer {
    // round_robin: a plain O(1) cycle when all weights are equal, otherwise the
    // same smooth WRR as weighted_round_robin (exact shares, no bursts; the
    // table's weight-expanded `endpointSlots` are not used — they burst).

    /// Per-cluster state, with endpoint ranges clamped to the table at init so
    /// `pick` needs no further bounds checks against `endpoints`.
    struct ClusterState {
        var first: Int32
        var count: Int32
        var balance: CompiledBalance
        var hashSource: CompiledHashSource
        /// All weights equal: round robin is a plain cycle.
        var uniform: Bool
        /// Rotating cursor (round_robin, consistent-hash keyless fallback).
        var cursor: Int32
        var totalWeight: Int64
        var hashName: UnsafeRawBufferPointer
        /// Valid maglev slice (start, count) or count 0 when the compiler left none.
        var maglevFirst: Int
        var maglevCount: Int
        /// Cluster health word (nil: no health checks or outlier detection).
        var health: HealthCell?
    }

    let states: UnsafeMutableBufferPointer<ClusterState>
    /// Per endpoint (indexed like `table.endpoints`): weight ≥ 1.
    let weights: UnsafeMutableBufferPointer<Int64>
    /// Per endpoint: smooth-WRR `current` weight.
    let current: UnsafeMutableBufferPointer<Int64>
    /// Per endpoint: running weight sum within its cluster, inclusive (weighted random).
    let cumulative: UnsafeMutableBufferPointer<Int64>
    let maglev: UnsafeMutableBufferPointer<Int32>
    /// Health cell per endpoint (indexed like `table.endpoints`; see HealthyPick.swift).
    let endpointHealth: UnsafeMutableBufferPointer<HealthCell>
    private var rng: UInt64
    /// least_latency: per endpoint peak-EWMA response time (µs) and when it was last updated (ms).
    let latencyUs: UnsafeMutableBufferPointer<Double>
    let latencyStampMs: UnsafeMutableBufferPointer<Int64>

    package init(table: RouteTable, seed: UInt64) {
        let clusters = table.clusters, endpoints = table.endpoints
        let ec = endpoints.count
        weights = Self.allocate(ec, 1)
        current = Self.allocate(ec, 0)
        cumulative = Self.allocate(ec, 0)
        latencyUs = Self.allocate(ec, 0)
        latencyStampMs = Self.allocate(ec, 0)
        for i in 0..<ec { weights[i] = Int64(max(1, endpoints[i].weight)) }
        maglev = table.maglev
        endpointHealth = table.endpointHealth
        // SplitMix64 state; never zero-biased, any seed works.
        rng = seed ^ 0x5DEE_CE66_D1CE_4E5B
        states = Self.allocate(clusters.count, ClusterState(
            first: 0, count: 0, balance: .roundRobin, hashSource: .clientIP, uniform: true, cursor: 0,
            totalWeight: 0, hashName: UnsafeRawBufferPointer(start: nil, count: 0), maglevFirst: 0, maglevCount: 0, health: nil))
        for c in 0..<clusters.count {
            let cl = clusters[c]
            let first = min(max(0, Int(cl.firstEndpoint)), ec)
            let count = min(max(0, Int(cl.endpointCount)), ec - first)
            var total: Int64 = 0
            var uniform = true
            for i in first..<(first + count) {
                total += weights[i]
                cumulative[i] = total
                if weights[i] != weights[first] { uniform = false }
            }
            let mf = Int(cl.firstMaglev), mc = Int(cl.maglevSize)
            let maglevOK = mc > 0 && mf >= 0 && mf <= maglev.count && mc <= maglev.count - mf
            states[c] = ClusterState(
                first: Int32(first), count: Int32(count), balance: cl.balance, hashSource: cl.hashSource,
                uniform: uniform, cursor: 0, totalWeight: total, hashName: cl.hashName.buffer,
                maglevFirst: maglevOK ? mf : 0, maglevCount: maglevOK ? mc : 0,
                health: cl.resilience.tracksHealth && c < table.clusterHealth.count && endpointHealth.count == ec ? table.clusterHealth[c] : nil)
        }
        // Start each reactor's cycles at a different endpoint so N reactors
        // do not all send their first request to endpoint 0.
        for c in 0..<clusters.count where states[c].count > 0 {
            states[c].cursor = random(states[c].count)
        }
    }

    /// Frees what `init` allocated; the balancer must not be used afterwards.
    package func deallocate() {
        states.baseAddress?.deallocate(); weights.baseAddress?.deallocate()
        current.baseAddress?.deallocate(); cumulative.baseAddress?.deallocate()
        latencyUs.baseAddress?.deallocate(); latencyStampMs.baseAddress?.deallocate()
    }

    /// `n` initialized elements (never a nil base, even for n == 0, so the
    /// hot path can use `unsafelyUnwrapped` on the base address).
    private static func allocate<T>(_ n: Int, _ value: T) -> UnsafeMutableBufferPointer<T> {
        let p = UnsafeMutableBufferPointer<T>.allocate(capacity: max(n, 1))
        p.initialize(repeating: value)
        return UnsafeMutableBufferPointer(rebasing: p[0..<n])
    }

    /// Endpoint index (into `table.endpoints`) for one request, or -1 if the
    /// cluster is unknown or empty. `request` may be nil (no HTTP view, e.g. an
    /// L4 relay): consistent_hash then falls back to round robin. `active` holds
    /// the reactor's in-flight count per endpoint, indexed like `table.endpoints`
    /// (at least `table.endpoints.count` elements); only least_connections and
    /// random_two read it.
    @inline(__always)
    package mutating func pick(cluster: Int32, request: UnsafePointer<RequestView>?, active: UnsafePointer<Int32>) -> Int32 {
        guard cluster >= 0, Int(cluster) < states.count else { return -1 }
        let s = states[Int(cluster)]
        if let h = s.health {
            switch EndpointHealth.clusterMode(h) {
            case EndpointHealth.ClusterMode.allUsable.rawValue, EndpointHealth.ClusterMode.panic.rawValue: break
            case EndpointHealth.ClusterMode.noneUsable.rawValue: return -1
            default:
                let e = pickUsable(cluster, s, request, active)
                if e >= 0 { return e }
            }
        }
        if s.count <= 1 { return s.count == 1 ? s.first : -1 }
        switch s.balance {
        case .roundRobin:
            return s.uniform ? cycle(cluster) : smooth(s)
        case .weightedRoundRobin:
            return smooth(s)
        case .leastConnections:
            return leastConnections(s, active)
        case .randomTwo:
            return randomTwo(s, active)
        case .leastLatency:
            return leastLatency(s, active, usableOnly: false)
        case .consistentHash:
            return consistentHash(cluster, s, request)
        }
    }

    /// Random in `0..<bound` (0 when `bound` ≤ 1): SplitMix64, reduced by
    /// Lemire's multiply-shift (no division, bias < 2⁻³²).
    @inline(__always)
    mutating func random(_ bound: Int32) -> Int32 {
        guard bound > 1 else { return 0 }
        return Int32(truncatingIfNeeded: ((next() >> 32) &* UInt64(bound)) >> 32)
    }

    /// Consistent-hash key hash, exposed for the reactor and tests.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 { HashKey.hash(bytes) }

    // MARK: - Algorithms

    @inline(__always)
    private mutating func next() -> UInt64 {
        rng &+= 0x9E37_79B9_7F4A_7C15
        var z = rng
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    private func cycle(_ cluster: Int32) -> Int32 {
        let s = states.baseAddress.unsafelyUnwrapped + Int(cluster)   // cluster was bounds-checked in pick
        var c = s.pointee.cursor
        if c >= s.pointee.count || c < 0 { c = 0 }
        s.pointee.cursor = c &+ 1
        return s.pointee.first &+ c
    }

    @inline(__always)
    private func smooth(_ s: ClusterState) -> Int32 {
        Int32(truncatingIfNeeded: SmoothWeighted.pick(
            first: Int(s.first), count: Int(s.count), weights: weights.baseAddress.unsafelyUnwrapped,
            current: current.baseAddress.unsafelyUnwrapped, eligible: { _ in true }))
    }

    /// nginx least_conn: fewest in-flight per weight (aᵢ/wᵢ compared as
    /// aᵢ·wⱼ < aⱼ·wᵢ), and among the endpoints tied for fewest, smooth weighted
    /// round robin — so idle equal endpoints take turns, and idle weighted ones
    /// share by weight instead of all traffic going to the first.
    @inline(__always)
    private func leastConnections(_ s: ClusterState, _ active: UnsafePointer<Int32>) -> Int32 {
        let first = Int(s.first), end = first &+ Int(s.count)
        var best = first
        var i = first &+ 1
        while i < end {
            if load(active, i) &* weights[best] < load(active, best) &* weights[i] { best = i }
            i &+= 1
        }
        let ba = load(active, best), bw = weights[best]
        let w = weights
        let picked = SmoothWeighted.pick(
            first: first, count: Int(s.count), weights: weights.baseAddress.unsafelyUnwrapped,
            current: current.baseAddress.unsafelyUnwrapped,
            eligible: { load(active, $0) &* bw == ba &* w[$0] })
        return Int32(truncatingIfNeeded: picked >= 0 ? picked : best)
    }

    /// Power of two choices: two distinct endpoints drawn at random (by weight),
    /// keep the one with fewer in-flight per weight; ties keep the first draw,
    /// so an idle cluster is spread by weight.
    @inline(__always)
    private mutating func randomTwo(_ s: ClusterState, _ active: UnsafePointer<Int32>) -> Int32 {
        let a = weightedRandom(s, excluding: -1)
        let b = weightedRandom(s, excluding: a)
        return Int32(truncatingIfNeeded: load(active, b) &* weights[a] < load(active, a) &* weights[b] ? b : a)
    }

    /// Endpoint drawn with probability wᵢ/Σw, or wᵢ/(Σw − w_excluded) with one
    /// excluded (draw in the reduced range, then step over the excluded span).
    @inline(__always)
    mutating func weightedRandom(_ s: ClusterState, excluding ex: Int) -> Int {
        let first = Int(s.first), count = Int(s.count)
        if s.uniform {
            if ex < 0 { return first &+ Int(random(s.count)) }
            let r = first &+ Int(random(s.count &- 1))
            return r >= ex ? r &+ 1 : r
        }
        var total = s.totalWeight
        var exStart: Int64 = 0
        if ex >= 0 {
            total &-= weights[ex]
            exStart = cumulative[ex] &- weights[ex]
        }
        guard total > 0 else { return first }
        // Lemire's multiply-shift when the total fits 32 bits (always, for
        // config weights ≤ 10,000): a division here costs more than the rest.
        let t = UInt64(total)
        var r = Int64(truncatingIfNeeded: t <= 0xFFFF_FFFF ? ((next() >> 32) &* t) >> 32 : next() % t)
        if ex >= 0 && r >= exStart { r &+= weights[ex] }
        // First endpoint whose inclusive running sum exceeds r: branch-free
        // lower bound (the answer stays in lo..<lo+n; a random r would make a
        // branchy search mispredict at every level).
        var lo = first, n = count
        while n > 1 {
            let half = n &>> 1
            lo = cumulative[lo &+ half &- 1] <= r ? lo &+ half : lo
            n &-= half
        }
        return lo
    }

    /// Maglev lookup of the request's key (client IP, header or cookie; a
    /// missing header/cookie falls back to the client IP, a missing IP to round robin).
    @inline(__always)
    private func consistentHash(_ cluster: Int32, _ s: ClusterState, _ request: UnsafePointer<RequestView>?) -> Int32 {
        guard let request else { return cycle(cluster) }
        let key = s.hashKey(request)
        if key.count == 0 { return cycle(cluster) }
        let h = HashKey.hash(key)
        if s.maglevCount > 0 {
            let off = Int(maglev[s.maglevFirst &+ Int(h % UInt64(s.maglevCount))])
            if off >= 0 && off < Int(s.count) { return s.first &+ Int32(truncatingIfNeeded: off) }
        }
        // No (or a malformed) Maglev table: plain modulo, still deterministic.
        return s.first &+ Int32(truncatingIfNeeded: h % UInt64(s.count))
    }
}

/// In-flight count as a non-negative Int64 (a reactor bookkeeping slip must
/// not turn into a negative load that attracts all traffic).
@inline(__always)
private func load(_ active: UnsafePointer<Int32>, _ i: Int) -> Int64 { Int64(max(0, active[i])) }

extension ReactorBalancer.ClusterState {
    /// The request's consistent-hash key: the configured header or cookie,
    /// falling back to the client IP when the request lacks it.
    @inline(__always) func hashKey(_ request: UnsafePointer<RequestView>) -> UnsafeRawBufferPointer {
        let found: UnsafeRawBufferPointer?
        switch hashSource {
        case .clientIP: found = nil
        case .header: found = HashKey.headerValue(request, lowerName: hashName)
        case .cookie: found = HashKey.cookieValue(request, name: hashName)
        }
        return found ?? request.pointee.clientIP
    }
}
