import CIOUring
import Glibc

/// Every byte buffer a reactor reads into or writes from, addressed by a small id:
/// ids `0..<ringCount` are the provided-buffer ring (the kernel picks one per
/// recv, so idle connections hold none); ids from `ringCount` on are "head"
/// buffers taken from a free list for response/request heads and for heads that
/// span several recv buffers. Each id carries a byte window (start..<end), a
/// reference count and a `next` link, so per-socket input queues are intrusive
/// lists and nothing is allocated per request.
struct BufferTable {
    let ringCount: Int32
    let ringBufferSize: Int32
    let headCount: Int32
    let headBufferSize: Int32
    let groupId: UInt16 = 1

    private let ringMemory: UnsafeMutableRawPointer
    let base: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let start: UnsafeMutablePointer<Int32>
    let end: UnsafeMutablePointer<Int32>
    let next: UnsafeMutablePointer<Int32>
    let refs: UnsafeMutablePointer<Int32>
    private let headFree: UnsafeMutablePointer<Int32>
    private var headFreeCount: Int32
    private var headAllocated: Int32 = 0

    private let ring: UnsafeMutablePointer<io_uring_buf_ring>
    private let mask: Int32
    private var pendingAdds: Int32 = 0
    /// Buffers currently handed to the kernel (for starvation checks).
    private(set) var ringAvailable: Int32

    init(uring: UnsafeMutablePointer<io_uring>, ringCount: Int, ringBufferSize: Int, headCount: Int, headBufferSize: Int) throws {
        // The ring size must be a power of two.
        var n = 1
        while n < ringCount { n <<= 1 }
        self.ringCount = Int32(min(n, 32768))
        self.ringBufferSize = Int32(ringBufferSize)
        self.headCount = Int32(headCount)
        self.headBufferSize = Int32(headBufferSize)
        let total = Int(self.ringCount) + headCount
        var err: Int32 = 0
        guard let br = edge_setup_buf_ring(uring, UInt32(self.ringCount), Int32(groupId), &err) else {
            throw ReactorError.system("provided buffer ring setup", -err)
        }
        ring = br
        mask = io_uring_buf_ring_mask(UInt32(self.ringCount))
        ringMemory = .allocate(byteCount: Int(self.ringCount) * ringBufferSize, alignment: 4096)
        base = .allocate(capacity: total); base.initialize(repeating: nil, count: total)
        start = .allocate(capacity: total); start.initialize(repeating: 0, count: total)
        end = .allocate(capacity: total); end.initialize(repeating: 0, count: total)
        next = .allocate(capacity: total); next.initialize(repeating: -1, count: total)
        refs = .allocate(capacity: total); refs.initialize(repeating: 0, count: total)
        headFree = .allocate(capacity: max(headCount, 1))
        headFreeCount = 0
        ringAvailable = 0
        for i in 0..<Int(self.ringCount) {
            base[i] = ringMemory + i * ringBufferSize
            edge_buf_ring_add(ring, base[i], UInt32(ringBufferSize), UInt16(i), mask, Int32(i))
        }
        edge_buf_ring_advance(ring, Int32(self.ringCount))
        ringAvailable = self.ringCount
    }

    @inline(__always) func isRing(_ id: Int32) -> Bool { id < ringCount }
    @inline(__always) func capacity(_ id: Int32) -> Int32 { id < ringCount ? ringBufferSize : headBufferSize }
    @inline(__always) func pointer(_ id: Int32) -> UnsafeMutableRawPointer { base[Int(id)].unsafelyUnwrapped }
    @inline(__always) func count(_ id: Int32) -> Int32 { end[Int(id)] - start[Int(id)] }
    @inline(__always) func bytes(_ id: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: pointer(id) + Int(start[Int(id)]), count: Int(count(id)))
    }

    /// A ring buffer the kernel just filled with `length` bytes: one reference.
    @inline(__always) mutating func received(_ id: Int32, length: Int32) {
        start[Int(id)] = 0; end[Int(id)] = length; next[Int(id)] = -1; refs[Int(id)] = 1
        ringAvailable -= 1
    }

    /// A head buffer with one reference, or -1 when the pool is exhausted.
    mutating func takeHead() -> Int32 {
        var id: Int32
        if headFreeCount > 0 {
            headFreeCount -= 1
            id = headFree[Int(headFreeCount)]
        } else {
            guard headAllocated < headCount else { return -1 }
            id = ringCount + headAllocated
            headAllocated += 1
            base[Int(id)] = .allocate(byteCount: Int(headBufferSize), alignment: 16)
        }
        start[Int(id)] = 0; end[Int(id)] = 0; next[Int(id)] = -1; refs[Int(id)] = 1
        return id
    }

    @inline(__always) mutating func retain(_ id: Int32) { refs[Int(id)] += 1 }

    /// Drops one reference; at zero a ring buffer goes back to the kernel (batched,
    /// published by `publish()`) and a head buffer back to the free list.
    @inline(__always) mutating func release(_ id: Int32) {
        let i = Int(id)
        refs[i] -= 1
        if refs[i] > 0 { return }
        next[i] = -1
        if id < ringCount {
            edge_buf_ring_add(ring, base[i], UInt32(ringBufferSize), UInt16(id), mask, pendingAdds)
            pendingAdds += 1
        } else {
            headFree[Int(headFreeCount)] = id
            headFreeCount += 1
        }
    }

    /// Returns a ring buffer that arrived on a completion nobody owns any more.
    @inline(__always) mutating func recycleUnowned(_ id: Int32) {
        ringAvailable -= 1
        refs[Int(id)] = 1
        release(id)
    }

    /// Makes batched ring returns visible to the kernel (one store per loop turn).
    @inline(__always) mutating func publish() {
        if pendingAdds > 0 {
            edge_buf_ring_advance(ring, pendingAdds)
            ringAvailable += pendingAdds
            pendingAdds = 0
        }
    }
}

enum ReactorError: Error, CustomStringConvertible {
    case system(String, Int32)
    var description: String {
        switch self {
        case .system(let what, let errno): return "\(what): \(String(cString: strerror(errno)))"
        }
    }
}
