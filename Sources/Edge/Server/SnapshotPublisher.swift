import Atomics

/// One published configuration: the compiled table plus, for every worker, the
/// listening socket of each of the table's listeners (same order).
final class Publication: @unchecked Sendable {
    let generation: Int
    let table: RouteTable
    let listenerFds: [[Int32]]
    init(generation: Int, table: RouteTable, listenerFds: [[Int32]]) {
        self.generation = generation
        self.table = table
        self.listenerFds = listenerFds
    }
}

/// Publishes snapshots to reactors with one atomic pointer store (RCU style).
/// Reactors poll the pointer once per loop turn, take a strong reference, then
/// record the generation they adopted; the control thread drops its own
/// reference to a publication only once every reactor has moved past it, so a
/// reactor never dereferences a freed publication. Reactors keep an old table
/// alive themselves while requests that started on it are still running.
final class SnapshotPublisher: @unchecked Sendable {
    private let latest = UnsafeAtomic<UnsafeMutableRawPointer?>.create(nil)
    /// Publications the control thread still holds (oldest first). Control thread only.
    private var held: [Publication] = []

    /// Control thread: makes `p` the current snapshot.
    func publish(_ p: Publication) {
        held.append(p)
        latest.store(Unmanaged.passUnretained(p).toOpaque(), ordering: .releasing)
    }

    /// Reactor: the latest publication pointer (compare with the last one adopted).
    @inline(__always) func load() -> UnsafeMutableRawPointer? { latest.load(ordering: .acquiring) }

    /// Control thread: drops publications every worker has moved past.
    func collect(workers: [WorkerStats]) {
        guard let minSeen = workers.map({ $0.adoptedGeneration.load(ordering: .acquiring) }).min() else { return }
        held.removeAll { $0.generation < minSeen && $0 !== held.last }
    }

    var heldCount: Int { held.count }
    var current: Publication? { held.last }
}
