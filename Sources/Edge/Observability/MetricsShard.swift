import Atomics

/// Fixed latency buckets (upper bounds in microseconds; one more slot for +Inf).
enum LatencyBuckets {
    static let boundsUs: [Int64] = [500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
                                    250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000]
    static let count = 15
    /// Words per histogram: buckets, then sum (µs), then count.
    static let words = count + 2

    @inline(__always) static func index(_ us: Int64) -> Int {
        // Unrolled compare chain: the array is not touched per request.
        if us <= 500 { return 0 }
        if us <= 1_000 { return 1 }
        if us <= 2_500 { return 2 }
        if us <= 5_000 { return 3 }
        if us <= 10_000 { return 4 }
        if us <= 25_000 { return 5 }
        if us <= 50_000 { return 6 }
        if us <= 100_000 { return 7 }
        if us <= 250_000 { return 8 }
        if us <= 500_000 { return 9 }
        if us <= 1_000_000 { return 10 }
        if us <= 2_500_000 { return 11 }
        if us <= 5_000_000 { return 12 }
        if us <= 10_000_000 { return 13 }
        return 14
    }
}

/// Status classes counted: 0 (no response sent), 1xx ... 5xx.
enum StatusClass {
    static let count = 6
    @inline(__always) static func of(_ status: UInt16) -> Int {
        let c = Int(status / 100)
        return c >= 1 && c <= 5 ? c : 0
    }
}

/// One worker's metrics: plain counters written only by that worker's reactor
/// (relaxed load + store, never a shared read-modify-write), read by the
/// scrape on the admin thread and summed over workers. Memory is mmap'd once
/// for the configured caps and untouched pages cost nothing.
struct MetricsShard: @unchecked Sendable {
    typealias Word = UnsafeAtomic<UInt64>.Storage
    static let routeCountWords = StatusClass.count
    static let histogramsPerId = 2  // request total, upstream first byte
    let routeCounts: UnsafeMutablePointer<Word>
    let routeHistograms: UnsafeMutablePointer<Word>
    let clusterCounts: UnsafeMutablePointer<Word>
    let clusterHistograms: UnsafeMutablePointer<Word>
    /// Per cluster: new upstream connections, pooled connections reused, retries, requests in flight (signed as wrapping).
    let clusterConnects: UnsafeMutablePointer<Word>
    let clusterPoolHits: UnsafeMutablePointer<Word>
    let clusterRetries: UnsafeMutablePointer<Word>
    let clusterStarted: UnsafeMutablePointer<Word>
    let clusterFinished: UnsafeMutablePointer<Word>
    let histograms: Bool

    init(histograms: Bool) {
        let r = MetricLabels.maxRoutes, c = MetricLabels.maxClusters
        let h = LatencyBuckets.words * Self.histogramsPerId
        routeCounts = lazyArray(r * StatusClass.count)
        routeHistograms = lazyArray(r * h)
        clusterCounts = lazyArray(c * StatusClass.count)
        clusterHistograms = lazyArray(c * h)
        clusterConnects = lazyArray(c)
        clusterPoolHits = lazyArray(c)
        clusterRetries = lazyArray(c)
        clusterStarted = lazyArray(c)
        clusterFinished = lazyArray(c)
        self.histograms = histograms
    }

    @inline(__always) static func add(_ p: UnsafeMutablePointer<Word>, _ i: Int, _ by: UInt64 = 1) {
        let a = UnsafeAtomic<UInt64>(at: p + i)
        a.store(a.load(ordering: .relaxed) &+ by, ordering: .relaxed)
    }

    @inline(__always) static func read(_ p: UnsafeMutablePointer<Word>, _ i: Int) -> UInt64 {
        UnsafeAtomic<UInt64>(at: p + i).load(ordering: .relaxed)
    }

    /// `kind` 0 = request total, 1 = upstream first byte.
    @inline(__always) static func observe(_ p: UnsafeMutablePointer<Word>, id: Int, kind: Int, us: Int64) {
        let base = (id * histogramsPerId + kind) * LatencyBuckets.words
        add(p, base + LatencyBuckets.index(us))
        add(p, base + LatencyBuckets.count, UInt64(max(0, us)))
        add(p, base + LatencyBuckets.count + 1)
    }

    /// One finished request. Ids are in range by construction (registry caps); checked anyway.
    @inline(__always) func record(route: Int32, cluster: Int32, status: UInt16, totalUs: Int64, firstByteUs: Int64) {
        let cls = StatusClass.of(status)
        if route >= 0 && Int(route) < MetricLabels.maxRoutes {
            let r = Int(route)
            MetricsShard.add(routeCounts, r * StatusClass.count + cls)
            if histograms {
                MetricsShard.observe(routeHistograms, id: r, kind: 0, us: totalUs)
                if firstByteUs >= 0 { MetricsShard.observe(routeHistograms, id: r, kind: 1, us: firstByteUs) }
            }
        }
        if cluster >= 0 && Int(cluster) < MetricLabels.maxClusters {
            let k = Int(cluster)
            MetricsShard.add(clusterCounts, k * StatusClass.count + cls)
            MetricsShard.add(clusterFinished, k)
            if histograms {
                MetricsShard.observe(clusterHistograms, id: k, kind: 0, us: totalUs)
                if firstByteUs >= 0 { MetricsShard.observe(clusterHistograms, id: k, kind: 1, us: firstByteUs) }
            }
        }
    }

    @inline(__always) func bump(_ p: UnsafeMutablePointer<Word>, cluster: Int32) {
        if cluster >= 0 && Int(cluster) < MetricLabels.maxClusters { MetricsShard.add(p, Int(cluster)) }
    }
}
