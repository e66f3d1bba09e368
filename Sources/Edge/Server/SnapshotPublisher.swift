import Atomics
import Synchronization

/// One published configuration: the compiled table plus, for every worker, the
/// listening socket of each of the table's listeners (same order).
final class Publication: @unchecked Sendable {
    let generation: Int
    let table: RouteTable
    let listenerFds: [[Int32]]
    /// QUIC (http3) UDP sockets per worker, by listener index (-1: none).
    let quicFds: [[Int32]]
    init(generation: Int, table: RouteTable, listenerFds: [[Int32]], quicFds: [[Int32]] = []) {
        self.generation = generation
        self.table = table
        self.listenerFds = listenerFds
        self.quicFds = quicFds
    }
}

/// Publishes snapshots to reactors with one atomic pointer store (RCU style).
/// Reactors poll the pointer once per loop turn, take a strong reference, then
/// record the generation they adopted; the control side drops its own
/// reference to a publication only once every reactor has moved past it, so a
/// reactor never dereferences a freed publication. Reactors keep an old table
/// alive themselves while requests that started on it are still running.
///
/// `publish` runs on whichever thread reloads (SIGHUP: control thread; `POST
/// /reload`: admin thread) and `collect` on the control thread, so the list of
/// held publications sits behind a mutex. Reactors never take it: they only
/// load `latest`.
final class SnapshotPublisher: @unchecked Sendable {
    private let latest = UnsafeAtomic<UnsafeMutableRawPointer?>.create(nil)
    /// Generation of `latest` and when it was stored (monotonic ms), for lag reports.
    private let latestGeneration = UnsafeAtomic<Int>.create(0)
    private let latestPublishedMs = UnsafeAtomic<Int>.create(0)
    /// Publications still held (oldest first).
    private let held = Mutex<[Publication]>([])

    /// Makes `p` the current snapshot.
    func publish(_ p: Publication) {
        held.withLock { list in
            list.append(p)
            latest.store(Unmanaged.passUnretained(p).toOpaque(), ordering: .releasing)
            latestGeneration.store(p.generation, ordering: .releasing)
            latestPublishedMs.store(Int(Reactor.monotonicMs()), ordering: .releasing)
        }
    }

    /// Reactor: the latest publication pointer (compare with the last one adopted).
    @inline(__always) func load() -> UnsafeMutableRawPointer? { latest.load(ordering: .acquiring) }

    /// Drops publications every worker has moved past.
    func collect(workers: [WorkerStats]) {
        guard let minSeen = workers.map({ $0.adoptedGeneration.load(ordering: .acquiring) }).min() else { return }
        held.withLock { list in
            guard let newest = list.last else { return }
            list.removeAll { $0.generation < minSeen && $0 !== newest }
        }
    }

    var heldCount: Int { held.withLock { $0.count } }
    var current: Publication? { held.withLock { $0.last } }
    /// Generation of the latest publication (0 before the first).
    var generation: Int { latestGeneration.load(ordering: .acquiring) }
    /// Monotonic ms when the latest publication was stored.
    var publishedAtMs: Int64 { Int64(latestPublishedMs.load(ordering: .acquiring)) }

    /// Publications worker `w` has not adopted yet (0 when it serves the latest).
    func lag(of w: WorkerStats) -> Int {
        max(0, generation - w.adoptedGeneration.load(ordering: .acquiring))
    }
}
