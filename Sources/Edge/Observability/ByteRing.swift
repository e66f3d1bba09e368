import Atomics

/// Single-producer single-consumer ring of bytes: a reactor appends whole
/// log lines, the access-log writer thread drains them. Positions only grow
/// (wrapping into the buffer by mask); each side stores only its own. A line
/// that does not fit is dropped and counted, so a slow disk never blocks a worker.
struct ByteRing: @unchecked Sendable {
    let base: UnsafeMutablePointer<UInt8>
    let mask: Int
    /// Written by the producer (release), read by the consumer (acquire).
    let tail: UnsafeAtomic<Int>
    /// Written by the consumer, read by the producer.
    let head: UnsafeAtomic<Int>
    let written: UnsafeAtomic<Int>
    let dropped: UnsafeAtomic<Int>

    /// `bytes` is rounded up to a power of two.
    init(bytes: Int) {
        var size = 4096
        while size < bytes { size <<= 1 }
        base = .allocate(capacity: size)
        mask = size - 1
        tail = .create(0); head = .create(0); written = .create(0); dropped = .create(0)
    }

    var capacity: Int { mask + 1 }

    /// Producer: copies one complete line in, or drops it.
    func push(_ p: UnsafePointer<UInt8>, _ n: Int) {
        let t = tail.load(ordering: .relaxed)
        let free = capacity - (t - head.load(ordering: .acquiring))
        guard n > 0, n <= free else {
            dropped.store(dropped.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
            return
        }
        let at = t & mask
        let first = min(n, capacity - at)
        (base + at).update(from: p, count: first)
        if first < n { base.update(from: p + first, count: n - first) }
        tail.store(t + n, ordering: .releasing)
        written.store(written.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Consumer: hands the readable bytes (at most two pieces) to `sink`, then frees them.
    func drain(_ sink: (UnsafePointer<UInt8>, Int) -> Void) {
        let h = head.load(ordering: .relaxed)
        let t = tail.load(ordering: .acquiring)
        let n = t - h
        if n <= 0 { return }
        let at = h & mask
        let first = min(n, capacity - at)
        sink(base + at, first)
        if first < n { sink(base, n - first) }
        head.store(t, ordering: .releasing)
    }
}
