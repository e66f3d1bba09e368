import Atomics
import Glibc

/// Memory that reactors and the shared-limit sync thread both touch, and
/// nothing else. Each word has one writer: a reactor writes its own slots'
/// `key/window/used`; the sync thread writes `allowance/grantWindow/pushed*`
/// and the per-limit and process words. All accesses are relaxed or
/// acquire/release loads and stores (plain `mov` on x86-64): no read-modify-
/// write and no lock on the request path.

/// Word offsets inside one 64-byte slot (one key of one limit in one worker's table).
enum SharedSlot {
    static let key = 0          // identity hash (0 = empty), reactor
    static let window = 1       // fixed window index (wall ms / period), reactor
    static let used = 2         // admitted in `window` by this worker, reactor
    static let allowance = 3    // may admit while used < allowance, sync
    static let grantWindow = 4  // window `allowance` is for, sync
    static let pushed = 5       // part of `used` already added in Redis, sync only
    static let pushedWindow = 6 // window `pushed` is for, sync only
    static let words = 8
    static let probe = 8
}

/// Word offsets of a limit's control block (written by the sync thread).
enum SharedLimitWord {
    /// Per-worker allowance for a key a worker meets in the first sync interval of a window.
    static let freshShare = 0
    /// ... and later in the window (rate x interval / (instances x workers), at least 1).
    static let trickleShare = 1
    static let words = 8
}

typealias AtomicWord = UnsafeAtomic<Int>.Storage

@inline(__always) func atomicWord(_ p: UnsafeMutablePointer<AtomicWord>) -> UnsafeAtomic<Int> { UnsafeAtomic(at: p) }

func allocateWords(_ count: Int) -> UnsafeMutablePointer<AtomicWord> {
    let p = UnsafeMutablePointer<AtomicWord>.allocate(capacity: max(count, 1))
    for i in 0..<max(count, 1) { (p + i).initialize(to: AtomicWord(0)) }
    return p
}

/// One `shared:` limit, compiled. `slots` holds `workers x maxKeys` slots.
struct CompiledSharedLimit {
    var limit: Int
    var periodMs: Int64
    var intervalMs: Int64
    var maxKeys: Int
    var closedOnFailure: Bool
    var slots: UnsafeMutablePointer<AtomicWord>
    var control: UnsafeMutablePointer<AtomicWord>

    @inline(__always) func slot(worker: Int, _ i: Int) -> UnsafeMutablePointer<AtomicWord> {
        slots + (worker &* maxKeys &+ i) &* SharedSlot.words
    }
}

/// What the sync thread needs about a limit besides the hot struct.
struct SharedLimitPlan: Sendable {
    var policyName: String
    var redis: RedisConfig
    var syncIntervalMs: Int
}

/// Process-wide words: Redis health, live instance estimate, wall-clock
/// offset, and per-worker decision counters. Allocated once, never freed
/// (snapshots come and go, the link and its Redis connection stay). A struct
/// around one pointer, so reactors reach it without reference counting.
struct SharedLimitLink: @unchecked Sendable {
    static let shared = SharedLimitLink()
    static let maxWorkers = 256

    enum Word {
        /// 0: up (or not tried yet), 1: down.
        static let down = 0
        static let wallOffsetMs = 1
        static let syncs = 2
        static let syncErrors = 3
        static let connects = 4
    }
    /// Per-worker counters (a 64-byte line each).
    enum Counter {
        static let admitted = 0
        static let limited = 1
        /// Decided by the local bucket: Redis down with on_failure: open, or key table full.
        static let local = 2
        /// Refused with 503: Redis down with on_failure: closed.
        static let unavailable = 3
        static let all = ["admitted", "limited", "local", "unavailable"]
    }

    let words: UnsafeMutablePointer<AtomicWord>

    private init() {
        words = allocateWords(8 * (SharedLimitLink.maxWorkers + 1))
        refreshWallOffset()
    }

    @inline(__always) var isDown: Bool { atomicWord(words + Word.down).load(ordering: .relaxed) != 0 }
    @inline(__always) var wallOffsetMs: Int64 { Int64(atomicWord(words + Word.wallOffsetMs).load(ordering: .relaxed)) }

    /// Reactor: its own counter (single writer, so load + store, not an atomic add).
    @inline(__always) func count(worker: Int, _ c: Int) {
        guard worker >= 0, worker < SharedLimitLink.maxWorkers else { return }
        let w = atomicWord(words + (8 &* (worker &+ 1) &+ c))
        w.store(w.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    func counter(worker: Int, _ c: Int) -> Int { atomicWord(words + 8 * (worker + 1) + c).load(ordering: .relaxed) }
    func word(_ i: Int) -> Int { atomicWord(words + i).load(ordering: .relaxed) }
    func set(_ i: Int, _ v: Int) { atomicWord(words + i).store(v, ordering: .relaxed) }
    func bump(_ i: Int) { set(i, word(i) &+ 1) }

    /// Wall clock minus the reactors' coarse monotonic clock, so windows line up across hosts.
    func refreshWallOffset() {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let wall = Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
        set(Word.wallOffsetMs, Int(wall - Reactor.monotonicMs()))
    }

    /// Prometheus text for the shared-limit counters.
    func renderMetrics(workers: Int) -> String {
        var out = "# HELP edge_shared_rate_limit_decisions_total Shared (Redis) rate-limit decisions by outcome.\n"
        out += "# TYPE edge_shared_rate_limit_decisions_total counter\n"
        for w in 0..<min(workers, SharedLimitLink.maxWorkers) {
            for (i, name) in Counter.all.enumerated() {
                out += "edge_shared_rate_limit_decisions_total{worker=\"\(w)\",outcome=\"\(name)\"} \(counter(worker: w, i))\n"
            }
        }
        out += "# HELP edge_shared_rate_limit_redis_up Whether the shared rate-limit Redis connection is up.\n# TYPE edge_shared_rate_limit_redis_up gauge\n"
        out += "edge_shared_rate_limit_redis_up \(isDown ? 0 : 1)\n"
        out += "# HELP edge_shared_rate_limit_syncs_total Sync rounds with Redis (push local counts, read global counts).\n# TYPE edge_shared_rate_limit_syncs_total counter\n"
        out += "edge_shared_rate_limit_syncs_total \(word(Word.syncs))\n"
        out += "# HELP edge_shared_rate_limit_redis_errors_total Failed Redis connects or sync rounds.\n# TYPE edge_shared_rate_limit_redis_errors_total counter\n"
        out += "edge_shared_rate_limit_redis_errors_total \(word(Word.syncErrors))\n"
        return out
    }
}
