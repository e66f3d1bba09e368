import Atomics
import Glibc
import Logging

/// The one thread per process that keeps `shared:` rate limits in step with
/// Redis. Every sync interval it scans the workers' slot tables, pushes the
/// counts admitted since the last round (INCRBY per fixed-window key, in one
/// EVAL round trip, which also refreshes this instance's membership), reads
/// the global counts back and publishes each worker's allowance: its count so
/// far plus its share of what is left (remaining / instances / workers).
/// Reactors never wait on it. When Redis is unreachable it flips
/// `SharedLimitLink.down` (workers then follow `on_failure`) and reconnects
/// with backoff (100ms doubling to 1s).
final class SharedLimitSync: @unchecked Sendable {
    private let publisher: SnapshotPublisher
    private let logger: Logger
    private let stopFlag = ManagedAtomic<Bool>(false)
    private var thread: pthread_t? = nil
    private let instanceID = String(UInt64.random(in: 1...UInt64.max), radix: 16)
    private let link = SharedLimitLink.shared
    /// Last instance count per plan (by policy name), for idle rounds.
    private var instances: [String: Int] = [:]
    private var lastPingMs: Int64 = 0

    static let script = """
    local np = tonumber(ARGV[4])
    local now = tonumber(ARGV[2])
    local ttl = tonumber(ARGV[3])
    local out = {}
    for i = 1, np do
      redis.call('ZADD', KEYS[i], now, ARGV[1])
      redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - ttl)
      redis.call('PEXPIRE', KEYS[i], ttl * 4)
      out[i] = redis.call('ZCARD', KEYS[i])
    end
    for j = np + 1, #KEYS do
      local a = 5 + (j - np - 1) * 2
      out[j] = redis.call('INCRBY', KEYS[j], ARGV[a])
      redis.call('PEXPIRE', KEYS[j], ARGV[a + 1])
    end
    return out
    """

    init(publisher: SnapshotPublisher, logger: Logger) {
        self.publisher = publisher
        self.logger = logger
    }

    func start() {
        thread = WorkerThread.spawn(name: "edge-ratelimit") { [self] in run() }
    }

    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        if let t = thread { pthread_join(t, nil) }
        thread = nil
    }

    private var stopped: Bool { stopFlag.load(ordering: .relaxed) }

    private func currentSet() -> PolicySet? {
        guard let set = publisher.current?.table.policySet, !set.sharedPlans.isEmpty else { return nil }
        return set
    }

    private func nap(_ ms: Int) {
        var left = ms
        while left > 0 && !stopped {
            let step = min(left, 100)
            usleep(UInt32(step * 1000))
            left -= step
        }
    }

    private func run() {
        var backoffMs = 100
        var reported = false
        while !stopped {
            guard let set = currentSet() else { nap(100); continue }
            let redis = set.sharedPlans[0].redis
            var error = "bad address"
            if let (host, port) = RedisConnection.split(redis.address.text),
               let conn = RedisConnection(host: host, port: port, timeoutMs: redis.timeoutMs, error: &error) {
                link.bump(SharedLimitLink.Word.connects)
                link.set(SharedLimitLink.Word.down, 0)
                if reported { logger.info("shared rate limits: Redis reachable again", metadata: ["address": "\(redis.address.text)"]) }
                reported = false
                backoffMs = 100
                let why = serve(conn, address: redis.address.text)
                if let why {
                    link.set(SharedLimitLink.Word.down, 1)
                    link.bump(SharedLimitLink.Word.syncErrors)
                    logger.warning("shared rate limits: Redis failed; following on_failure", metadata: ["address": "\(redis.address.text)", "error": "\(why)"])
                    reported = true
                }
                // Reconnect at once after a config change, after a short pause after a failure.
                if why != nil { nap(backoffMs) }
            } else {
                link.set(SharedLimitLink.Word.down, 1)
                link.bump(SharedLimitLink.Word.syncErrors)
                if !reported {
                    logger.warning("shared rate limits: cannot reach Redis; following on_failure", metadata: ["address": "\(redis.address.text)", "error": "\(error)"])
                    reported = true
                }
                nap(backoffMs)
                backoffMs = min(backoffMs * 2, 1_000)
            }
        }
    }

    /// Sync rounds on one connection; returns why it stopped (nil: stop, or the config moved away).
    private func serve(_ conn: borrowing RedisConnection, address: String) -> String? {
        while !stopped {
            guard let set = currentSet(), set.sharedPlans[0].redis.address.text == address else { return nil }
            link.refreshWallOffset()
            let started = Reactor.monotonicMs()
            if let err = round(set, conn) { return err }
            link.bump(SharedLimitLink.Word.syncs)
            let interval = set.sharedPlans.map(\.syncIntervalMs).min() ?? SharedLimitConfig.defaultSyncIntervalMs
            let spent = Int(Reactor.monotonicMs() - started)
            if interval > spent { usleep(UInt32((interval - spent) * 1000)) }
        }
        return nil
    }

    private struct Member {
        var worker: Int
        var slot: UnsafeMutablePointer<AtomicWord>
        var used: Int
    }
    private struct Entry {
        var plan: Int
        var key: Int
        var window: Int
        var delta = 0
        var members: [Member] = []
    }
    private struct EntryKey: Hashable {
        var plan: Int, key: Int, window: Int
    }

    /// One push-and-read round; returns an error text when Redis failed.
    private func round(_ set: PolicySet, _ conn: borrowing RedisConnection) -> String? {
        let plans = set.sharedPlans
        let limits = set.hot.pointee.sharedLimits
        let workers = set.workerCount
        let wall = Reactor.monotonicMs() + link.wallOffsetMs
        var index: [EntryKey: Int] = [:]
        var entries: [Entry] = []
        var active = [Bool](repeating: false, count: plans.count)
        for p in 0..<min(plans.count, limits.count) {
            let sl = limits[p]
            guard sl.periodMs > 0 else { continue }
            let win = Int(wall / sl.periodMs)
            for w in 0..<workers {
                for i in 0..<sl.maxKeys {
                    let s = sl.slot(worker: w, i)
                    let k1 = atomicWord(s + SharedSlot.key).load(ordering: .acquiring)
                    if k1 == 0 { continue }
                    let w1 = atomicWord(s + SharedSlot.window).load(ordering: .acquiring)
                    if w1 < win - 1 { continue }
                    let used = atomicWord(s + SharedSlot.used).load(ordering: .acquiring)
                    let w2 = atomicWord(s + SharedSlot.window).load(ordering: .acquiring)
                    let k2 = atomicWord(s + SharedSlot.key).load(ordering: .acquiring)
                    guard k1 == k2, w1 == w2 else { continue }  // the worker re-used the slot meanwhile
                    let pushed = atomicWord(s + SharedSlot.pushedWindow).load(ordering: .relaxed) == w1
                        ? atomicWord(s + SharedSlot.pushed).load(ordering: .relaxed) : 0
                    let delta = max(0, used - pushed)
                    if delta == 0 && w1 != win { continue }
                    let ek = EntryKey(plan: p, key: k1, window: w1)
                    let e: Int
                    if let found = index[ek] { e = found } else {
                        e = entries.count
                        index[ek] = e
                        entries.append(Entry(plan: p, key: k1, window: w1))
                    }
                    entries[e].delta += delta
                    entries[e].members.append(Member(worker: w, slot: s, used: used))
                    if w1 == win { active[p] = true }
                }
            }
        }
        let now = Reactor.monotonicMs()
        let activePlans = active.indices.filter { active[$0] }
        if entries.isEmpty {
            // Idle: a cheap PING now and then keeps the health flag honest.
            guard now - lastPingMs >= 500 else { return nil }
            lastPingMs = now
            guard let r = conn.command(["PING"]) else { return conn.lastError }
            if case .error(let e) = r { return e }
            return nil
        }
        let interval = plans.map(\.syncIntervalMs).min() ?? SharedLimitConfig.defaultSyncIntervalMs
        let memberTTL = max(500, 10 * interval)
        var args = ["EVAL", SharedLimitSync.script, String(activePlans.count + entries.count)]
        for p in activePlans { args.append("edge:rl:\(plans[p].policyName):instances") }
        for e in entries {
            args.append("edge:rl:\(plans[e.plan].policyName):\(String(UInt(bitPattern: e.key), radix: 16)):\(e.window)")
        }
        args += [instanceID, String(wall), String(memberTTL), String(activePlans.count)]
        for e in entries {
            args.append(String(e.delta))
            args.append(String(max(2_000, Int(limits[e.plan].periodMs) * 2)))
        }
        guard let reply = conn.command(args) else { return conn.lastError.isEmpty ? "no reply" : conn.lastError }
        guard case .array(let items) = reply, items.count == activePlans.count + entries.count else {
            if case .error(let e) = reply { return e }
            return "unexpected reply to the sync script"
        }
        for (i, p) in activePlans.enumerated() {
            if case .integer(let n) = items[i] { instances[plans[p].policyName] = max(1, n) }
        }
        for p in 0..<min(plans.count, limits.count) {
            let sl = limits[p]
            let n = instances[plans[p].policyName] ?? 1
            let shares = max(1, n * workers)
            atomicWord(sl.control + SharedLimitWord.freshShare).store((sl.limit + shares - 1) / shares, ordering: .relaxed)
            let trickle = Int(Int64(sl.limit) * sl.intervalMs / max(1, sl.periodMs)) / shares
            atomicWord(sl.control + SharedLimitWord.trickleShare).store(max(1, trickle), ordering: .relaxed)
        }
        for (j, e) in entries.enumerated() {
            guard case .integer(let global) = items[activePlans.count + j] else { continue }
            let sl = limits[e.plan]
            let win = Int(wall / sl.periodMs)
            let n = instances[plans[e.plan].policyName] ?? 1
            let perInstance = (max(0, sl.limit - global) + n - 1) / n
            let base = perInstance / workers, extra = perInstance % workers
            for m in e.members {
                atomicWord(m.slot + SharedSlot.pushed).store(m.used, ordering: .relaxed)
                atomicWord(m.slot + SharedSlot.pushedWindow).store(e.window, ordering: .relaxed)
                guard e.window == win else { continue }
                let share = base + (m.worker < extra ? 1 : 0)
                atomicWord(m.slot + SharedSlot.allowance).store(m.used + share, ordering: .relaxed)
                atomicWord(m.slot + SharedSlot.grantWindow).store(e.window, ordering: .releasing)
            }
        }
        return nil
    }
}
