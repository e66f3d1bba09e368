/// A hashed timing wheel over socket slots: each slot has at most one deadline.
/// Scheduling and cancelling are O(1) (intrusive doubly linked lists), so every
/// read/write can push its timeout forward without allocating.
struct TimerWheel {
    static let tickMs: Int64 = 10
    static let slotCount = 4096
    private let next: UnsafeMutablePointer<Int32>
    private let prev: UnsafeMutablePointer<Int32>
    private let deadline: UnsafeMutablePointer<Int64>
    private let heads: UnsafeMutablePointer<Int32>
    /// Expired ids collected before firing, so a handler may cancel others safely.
    private let expired: UnsafeMutablePointer<Int32>
    /// Behind a pointer so every method is non-mutating: handlers called from
    /// `advance` re-arm and cancel timers on the same wheel.
    private let currentTick: UnsafeMutablePointer<Int64>
    let capacity: Int

    init(capacity: Int, nowMs: Int64) {
        self.capacity = capacity
        next = .allocate(capacity: capacity); next.initialize(repeating: -1, count: capacity)
        prev = .allocate(capacity: capacity); prev.initialize(repeating: -1, count: capacity)
        deadline = .allocate(capacity: capacity); deadline.initialize(repeating: 0, count: capacity)
        heads = .allocate(capacity: TimerWheel.slotCount); heads.initialize(repeating: -1, count: TimerWheel.slotCount)
        expired = .allocate(capacity: capacity)
        currentTick = .allocate(capacity: 1)
        currentTick.initialize(to: nowMs / TimerWheel.tickMs)
    }

    @inline(__always) func isScheduled(_ id: Int32) -> Bool { deadline[Int(id)] != 0 }

    /// Arms (or re-arms) the timer of `id` to fire at `atMs`.
    func schedule(_ id: Int32, atMs: Int64) {
        cancel(id)
        var tick = atMs / TimerWheel.tickMs
        if tick <= currentTick.pointee { tick = currentTick.pointee + 1 }
        deadline[Int(id)] = tick
        let s = Int(tick & Int64(TimerWheel.slotCount - 1))
        let h = heads[s]
        next[Int(id)] = h
        prev[Int(id)] = -1
        if h >= 0 { prev[Int(h)] = id }
        heads[s] = id
    }

    func cancel(_ id: Int32) {
        let i = Int(id)
        guard deadline[i] != 0 else { return }
        let s = Int(deadline[i] & Int64(TimerWheel.slotCount - 1))
        let n = next[i], p = prev[i]
        if p >= 0 { next[Int(p)] = n } else { heads[s] = n }
        if n >= 0 { prev[Int(n)] = p }
        next[i] = -1; prev[i] = -1; deadline[i] = 0
    }

    /// Moves time forward to `nowMs`, calling `fire` for every expired id.
    func advance(nowMs: Int64, _ fire: (Int32) -> Void) {
        let target = nowMs / TimerWheel.tickMs
        var steps = 0
        while currentTick.pointee < target && steps < TimerWheel.slotCount {
            currentTick.pointee += 1; steps += 1
            let now = currentTick.pointee
            let s = Int(now & Int64(TimerWheel.slotCount - 1))
            var id = heads[s]
            var count = 0
            while id >= 0 {
                let n = next[Int(id)]
                if deadline[Int(id)] <= now { cancel(id); expired[count] = id; count += 1 }
                id = n
            }
            for k in 0..<count { fire(expired[k]) }
        }
        if currentTick.pointee < target { currentTick.pointee = target }
    }
}
