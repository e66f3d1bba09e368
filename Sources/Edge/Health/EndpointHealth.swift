import Atomics

/// Per-endpoint (and per-cluster) health words shared by the health checker
/// (the only writer of the state bits) and every reactor (readers, and
/// writers of the passive failure counters). A cell is four `UInt32` atomics
/// owned by `HealthRegistry` and keyed by cluster + endpoint address, so the
/// state survives reloads: a new snapshot's table points at the same cells.
/// Hot path: relaxed loads and stores only, no allocation, no ARC.
typealias HealthCell = UnsafeMutablePointer<UnsafeAtomic<UInt32>.Storage>

enum EndpointHealth {
    /// Endpoint cell words.
    static let stateWord = 0, consecutive5xxWord = 1, consecutiveConnectWord = 2
    static let wordsPerCell = 4
    /// State bits: failed active checks; ejected by outlier detection.
    static let checkFailed: UInt32 = 1
    static let ejected: UInt32 = 2

    /// Cluster cell word 0: how balancers treat the cluster's endpoints.
    enum ClusterMode: UInt32 {
        /// Every endpoint usable: no per-endpoint checks at all.
        case allUsable = 0
        /// Skip endpoints whose state is not 0.
        case skipUnusable = 1
        /// Too few usable endpoints (below panic_threshold): use all of them.
        case panic = 2
        /// None usable and panic disabled (threshold 0): no endpoint (503).
        case noneUsable = 3
    }

    @inline(__always) static func word(_ cell: HealthCell, _ i: Int) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic<UInt32>(at: cell + i)
    }

    @inline(__always) static func usable(_ cell: HealthCell) -> Bool {
        word(cell, stateWord).load(ordering: .relaxed) == 0
    }

    @inline(__always) static func clusterMode(_ cell: HealthCell) -> UInt32 {
        word(cell, stateWord).load(ordering: .relaxed)
    }

    /// A response below 500: the failure streak ends. Loads first so a healthy
    /// endpoint's cache line stays shared between cores (no store per request).
    @inline(__always) static func recordSuccess(_ cell: HealthCell) {
        let a = word(cell, consecutive5xxWord), b = word(cell, consecutiveConnectWord)
        if a.load(ordering: .relaxed) != 0 { a.store(0, ordering: .relaxed) }
        if b.load(ordering: .relaxed) != 0 { b.store(0, ordering: .relaxed) }
    }

    /// A 5xx answer, a reset, or a timeout.
    @inline(__always) static func record5xx(_ cell: HealthCell) {
        word(cell, consecutive5xxWord).wrappingIncrement(ordering: .relaxed)
    }

    /// Connect refused, failed or timed out (also counts as a 5xx, like Envoy).
    @inline(__always) static func recordConnectFailure(_ cell: HealthCell) {
        word(cell, consecutive5xxWord).wrappingIncrement(ordering: .relaxed)
        word(cell, consecutiveConnectWord).wrappingIncrement(ordering: .relaxed)
    }
}
