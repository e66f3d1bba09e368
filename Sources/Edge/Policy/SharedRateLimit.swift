import Atomics

/// Admission against a `shared:` (Redis) limit, on the reactor. Never waits
/// on Redis: the worker counts in its own slot table and admits while its
/// count in the current fixed window is under the allowance the sync thread
/// (SharedLimitSync.swift) last published for that key. A key the worker has
/// no allowance for yet gets the limit's fresh share (the first sync interval
/// of a window) or a trickle share (later). See README "Shared rate limits"
/// for the over-admission bound.
enum SharedVerdict {
    case admitted(remaining: Int64, reset: Int64)
    case limited(wait: Int64)
    /// Decide with the local bucket (Redis down and on_failure: open, or the key table is full here).
    case local
    /// Redis down and on_failure: closed.
    case unavailable
}

extension Reactor {
    /// `admitRate`'s "refuse with 503" answer.
    static let sharedUnavailable: Int64 = -1
    /// Fixed so that every instance hashes a key to the same Redis name.
    static let sharedKeySeed: UInt64 = 0x4544_4745_524C_4D54

    func admitShared(_ sl: CompiledSharedLimit, id: UInt64, slotSeed: UInt64) -> SharedVerdict {
        let link = SharedLimitLink.shared
        if link.isDown {
            if sl.closedOnFailure {
                link.count(worker: index, SharedLimitLink.Counter.unavailable)
                return .unavailable
            }
            link.count(worker: index, SharedLimitLink.Counter.local)
            return .local
        }
        guard sl.periodMs > 0, sl.maxKeys > 0 else { return .local }
        let wall = nowMs &+ link.wallOffsetMs
        let win = Int(wall / sl.periodMs)
        let mask = sl.maxKeys - 1
        var i = Int(truncatingIfNeeded: PolicyHash.value(id, seed: slotSeed)) & mask
        var slot: UnsafeMutablePointer<AtomicWord>? = nil
        var free: UnsafeMutablePointer<AtomicWord>? = nil
        for _ in 0..<SharedSlot.probe {
            let s = sl.slot(worker: index, i)
            let k = atomicWord(s + SharedSlot.key).load(ordering: .relaxed)
            if k == Int(truncatingIfNeeded: id) { slot = s; break }
            // Empty, or last used two windows ago (its final counts are pushed by now).
            if free == nil && (k == 0 || atomicWord(s + SharedSlot.window).load(ordering: .relaxed) < win &- 1) { free = s }
            i = (i &+ 1) & mask
        }
        if slot == nil, let s = free {
            // Claim: count first, then window, then key, so the sync thread never pairs an old count with the new key.
            atomicWord(s + SharedSlot.used).store(0, ordering: .releasing)
            atomicWord(s + SharedSlot.window).store(win, ordering: .releasing)
            atomicWord(s + SharedSlot.key).store(Int(truncatingIfNeeded: id), ordering: .releasing)
            slot = s
        }
        guard let s = slot else {
            // More live keys than max_keys in this probe window: the local bucket decides.
            link.count(worker: index, SharedLimitLink.Counter.local)
            return .local
        }
        let windowWord = atomicWord(s + SharedSlot.window)
        let usedWord = atomicWord(s + SharedSlot.used)
        if windowWord.load(ordering: .relaxed) != win {
            usedWord.store(0, ordering: .releasing)
            windowWord.store(win, ordering: .releasing)
        }
        let used = usedWord.load(ordering: .relaxed)
        let allowance: Int
        if atomicWord(s + SharedSlot.grantWindow).load(ordering: .acquiring) == win {
            allowance = atomicWord(s + SharedSlot.allowance).load(ordering: .relaxed)
        } else {
            let age = wall &- Int64(win) &* sl.periodMs
            let w = age < sl.intervalMs ? SharedLimitWord.freshShare : SharedLimitWord.trickleShare
            allowance = atomicWord(sl.control + w).load(ordering: .relaxed)
        }
        let resetMs = (Int64(win) &+ 1) &* sl.periodMs &- wall
        let reset = max(1, (resetMs + 999) / 1000)
        if used < allowance {
            usedWord.store(used &+ 1, ordering: .releasing)
            link.count(worker: index, SharedLimitLink.Counter.admitted)
            return .admitted(remaining: Int64(allowance &- used &- 1), reset: reset)
        }
        link.count(worker: index, SharedLimitLink.Counter.limited)
        return .limited(wait: reset)
    }
}
