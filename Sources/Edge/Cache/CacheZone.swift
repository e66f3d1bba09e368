import Glibc

/// One stored response. Its bytes live in one buddy block of the zone's arena:
/// `[key][vary names][head lines][body]`, so a hit points into the block and
/// copies nothing.
struct CacheEntry {
    var hash: UInt64 = 0
    var varyHash: UInt64 = 0
    var unit: Int32 = -1
    var order: Int8 = 0
    var live = false
    /// Reachable by lookups (false while filling, or after a purge of a pinned entry).
    var linked = false
    var keyLength: Int32 = 0
    var varyLength: Int32 = 0
    var headLength: Int32 = 0
    var bodyLength: Int32 = 0
    var storedMs: Int64 = 0
    var freshUntilMs: Int64 = 0
    /// Seconds the response was already old when it arrived (upstream `Age`).
    var initialAgeS: Int64 = 0
    /// ETag and Last-Modified values as offsets into the head lines (length 0: none).
    var etagOffset: Int32 = 0
    var etagLength: Int32 = 0
    var lastModifiedOffset: Int32 = 0
    var lastModifiedLength: Int32 = 0
    /// Cache-Control no-cache / must-revalidate on the response; `public` (may answer Authorization requests).
    var alwaysRevalidate = false
    var shared = false
    var status: UInt16 = 200
    /// Exchanges sending from this entry right now (it is not evicted or freed while > 0).
    var pins: Int32 = 0
    var lruPrev: Int32 = -1
    var lruNext: Int32 = -1
    var chainNext: Int32 = -1
    var nextFree: Int32 = -1
}

/// A route's response cache on one worker: an mmap'd arena split by a buddy
/// allocator (so freed space merges back for objects of any size), a chained
/// hash table and an LRU list, all in memory allocated once when the zone is
/// first used. Single-threaded (one reactor), so no locks; lookups and hits
/// never allocate.
struct CacheZone {
    /// Smallest block: 1 KiB, larger for caches over 1 GiB so the per-unit tables stay at 1M entries.
    var unitShift = 10
    static let maxOrders = 32

    var ready = false
    var arena: UnsafeMutableRawPointer? = nil
    var arenaBytes = 0
    var units: Int32 = 0
    var topOrder: Int = 0
    var freeHead = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    var freeNext = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    var freePrev = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    /// Order of the free block starting at a unit, -1 if none starts there.
    var freeOrder = UnsafeMutablePointer<Int8>.allocate(capacity: 0)
    var entries = UnsafeMutablePointer<CacheEntry>.allocate(capacity: 0)
    var entryCapacity: Int32 = 0
    var freeEntry: Int32 = -1
    var buckets = UnsafeMutablePointer<Int32>.allocate(capacity: 0)
    var bucketMask: UInt64 = 0
    var lruHead: Int32 = -1
    var lruTail: Int32 = -1
    /// Bytes held by stored entries (block sizes), and entries stored.
    var bytes = 0
    var count = 0
    /// Misses in flight that others may wait for (Cache/CacheCoalescing.swift).
    var leaders = UnsafeMutablePointer<CacheLeader>.allocate(capacity: 0)
    static let leaderSlots = 256
    /// Purge board generation this zone has applied.
    var purgeGeneration = 0
    /// Key under construction (lookups build it here, no allocation).
    var scratch = UnsafeMutableRawPointer.allocate(byteCount: 0, alignment: 16)
    static let scratchBytes = 8192

    /// Maps the arena (lazily backed by the kernel) and the tables; false if mmap failed.
    mutating func setUp(maxSize: UInt64, maxObject: UInt64) -> Bool {
        // A top block holds the largest object plus its key and head (larger heads are not stored).
        let need = Int(maxObject) + 16 << 10
        while (Int(maxSize) >> unitShift) > 1 << 20 { unitShift += 1 }
        var order = 0
        while (1 << (unitShift + order)) < need && order < Self.maxOrders - 1 { order += 1 }
        let top = 1 << (unitShift + order)
        let topBlocks = max(1, Int(maxSize) / top)
        arenaBytes = topBlocks * top
        guard let p = mmap(nil, arenaBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              p != MAP_FAILED else { return false }
        arena = p
        topOrder = order
        units = Int32(arenaBytes >> unitShift)
        let n = Int(units)
        freeHead.deallocate(); freeNext.deallocate(); freePrev.deallocate(); freeOrder.deallocate()
        entries.deallocate(); buckets.deallocate(); scratch.deallocate(); leaders.deallocate()
        leaders = .allocate(capacity: Self.leaderSlots)
        leaders.initialize(repeating: CacheLeader(), count: Self.leaderSlots)
        freeHead = .allocate(capacity: Self.maxOrders); freeHead.initialize(repeating: -1, count: Self.maxOrders)
        freeNext = .allocate(capacity: n); freeNext.initialize(repeating: -1, count: n)
        freePrev = .allocate(capacity: n); freePrev.initialize(repeating: -1, count: n)
        freeOrder = .allocate(capacity: n); freeOrder.initialize(repeating: -1, count: n)
        for b in 0..<topBlocks { pushFree(Int32(b << order), order) }
        // One entry per 4 KiB of arena on average; beyond that LRU entries make room.
        entryCapacity = Int32(max(64, min(n, Int(maxSize) >> 12)))
        entries = .allocate(capacity: Int(entryCapacity))
        entries.initialize(repeating: CacheEntry(), count: Int(entryCapacity))
        for i in stride(from: Int(entryCapacity) - 1, through: 0, by: -1) { entries[i].nextFree = freeEntry; freeEntry = Int32(i) }
        var b = 1
        while b < Int(entryCapacity) { b <<= 1 }
        buckets = .allocate(capacity: b); buckets.initialize(repeating: -1, count: b)
        bucketMask = UInt64(b - 1)
        scratch = .allocate(byteCount: Self.scratchBytes, alignment: 16)
        purgeGeneration = CachePurge.generation.load(ordering: .acquiring)
        ready = true
        return true
    }

    /// Frees everything (the placeholders too when the zone was never used).
    mutating func tearDown() {
        if ready, let arena { munmap(arena, arenaBytes) }
        freeHead.deallocate(); freeNext.deallocate(); freePrev.deallocate(); freeOrder.deallocate()
        entries.deallocate(); buckets.deallocate(); scratch.deallocate(); leaders.deallocate()
        ready = false
    }

    @inline(__always) func blockBytes(_ order: Int8) -> Int { 1 << (unitShift + Int(order)) }
    @inline(__always) func base(_ e: Int32) -> UnsafeMutableRawPointer {
        arena.unsafelyUnwrapped + (Int(entries[Int(e)].unit) << unitShift)
    }
    @inline(__always) func key(_ e: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base(e), count: Int(entries[Int(e)].keyLength))
    }
    @inline(__always) func varyNames(_ e: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base(e) + Int(entries[Int(e)].keyLength), count: Int(entries[Int(e)].varyLength))
    }
    @inline(__always) func headStart(_ e: Int32) -> UnsafeMutableRawPointer {
        base(e) + Int(entries[Int(e)].keyLength) + Int(entries[Int(e)].varyLength)
    }
    @inline(__always) func bodyStart(_ e: Int32) -> UnsafeMutableRawPointer {
        headStart(e) + Int(entries[Int(e)].headLength)
    }

    // MARK: Buddy allocator

    private mutating func pushFree(_ u: Int32, _ order: Int) {
        freeOrder[Int(u)] = Int8(order)
        freePrev[Int(u)] = -1
        freeNext[Int(u)] = freeHead[order]
        if freeHead[order] >= 0 { freePrev[Int(freeHead[order])] = u }
        freeHead[order] = u
    }

    private mutating func unlinkFree(_ u: Int32) {
        let o = Int(freeOrder[Int(u)])
        let p = freePrev[Int(u)], n = freeNext[Int(u)]
        if p >= 0 { freeNext[Int(p)] = n } else { freeHead[o] = n }
        if n >= 0 { freePrev[Int(n)] = p }
        freeOrder[Int(u)] = -1
    }

    private mutating func buddyAlloc(_ order: Int) -> Int32 {
        var o = order
        while o <= topOrder && freeHead[o] < 0 { o += 1 }
        if o > topOrder { return -1 }
        let u = freeHead[o]
        unlinkFree(u)
        while o > order {
            o -= 1
            pushFree(u + Int32(1 << o), o)
        }
        return u
    }

    private mutating func buddyFree(_ unit: Int32, _ order: Int) {
        var u = unit, o = order
        while o < topOrder {
            let buddy = u ^ Int32(1 << o)
            guard buddy < units, freeOrder[Int(buddy)] == Int8(o) else { break }
            unlinkFree(buddy)
            u = min(u, buddy)
            o += 1
        }
        pushFree(u, o)
    }

    // MARK: Entries

    /// A new (unlinked) entry with a block of at least `bytes`, evicting LRU
    /// entries as needed; -1 when it cannot be made (too big, all pinned).
    mutating func reserve(bytes need: Int, stats: CacheStats) -> Int32 {
        guard ready, freeEntry >= 0 || lruTail >= 0 else { return -1 }
        var order = 0
        while blockBytes(Int8(order)) < need { order += 1; if order > topOrder { return -1 } }
        var unit = buddyAlloc(order)
        var guardSteps = 0
        while unit < 0 || freeEntry < 0 {
            if unit >= 0 { buddyFree(unit, order); unit = -1 }
            guard evictOne(stats) else { return -1 }
            guardSteps += 1
            if guardSteps > 1 << 20 { return -1 }
            unit = buddyAlloc(order)
        }
        let e = freeEntry
        freeEntry = entries[Int(e)].nextFree
        entries[Int(e)] = CacheEntry()
        entries[Int(e)].unit = unit
        entries[Int(e)].order = Int8(order)
        entries[Int(e)].live = true
        bytes += blockBytes(Int8(order))
        return e
    }

    /// Evicts the least recently used unpinned entry.
    private mutating func evictOne(_ stats: CacheStats) -> Bool {
        var e = lruTail
        while e >= 0 && entries[Int(e)].pins > 0 { e = entries[Int(e)].lruPrev }
        guard e >= 0 else { return false }
        unlinkEntry(e)
        release(e)
        stats.bump(stats.evictions)
        return true
    }

    /// Frees an entry's block once it is unlinked and unpinned.
    mutating func release(_ e: Int32) {
        let i = Int(e)
        guard entries[i].live, !entries[i].linked, entries[i].pins == 0 else { return }
        buddyFree(entries[i].unit, Int(entries[i].order))
        bytes -= blockBytes(entries[i].order)
        entries[i].live = false
        entries[i].nextFree = freeEntry
        freeEntry = e
    }

    /// Makes a filled entry visible, replacing the same key and variant.
    mutating func link(_ e: Int32) {
        let i = Int(e)
        let b = Int(entries[i].hash & bucketMask)
        var prev: Int32 = -1
        var x = buckets[b]
        while x >= 0 {
            let next = entries[Int(x)].chainNext
            if entries[Int(x)].hash == entries[i].hash && entries[Int(x)].varyHash == entries[i].varyHash
                && sameBytes(key(x), key(e)) && sameBytes(varyNames(x), varyNames(e)) {
                unlinkEntry(x)
                release(x)
                x = prev >= 0 ? entries[Int(prev)].chainNext : buckets[b]
                continue
            }
            prev = x
            x = next
        }
        entries[i].chainNext = buckets[b]
        buckets[b] = e
        entries[i].linked = true
        lruPush(e)
        count += 1
    }

    /// Removes an entry from lookups (its block stays while it is pinned).
    mutating func unlinkEntry(_ e: Int32) {
        let i = Int(e)
        guard entries[i].linked else { return }
        let b = Int(entries[i].hash & bucketMask)
        if buckets[b] == e { buckets[b] = entries[i].chainNext } else {
            var x = buckets[b]
            while x >= 0 && entries[Int(x)].chainNext != e { x = entries[Int(x)].chainNext }
            if x >= 0 { entries[Int(x)].chainNext = entries[i].chainNext }
        }
        lruRemove(e)
        entries[i].linked = false
        count -= 1
    }

    @inline(__always) mutating func touch(_ e: Int32) {
        if lruHead == e { return }
        lruRemove(e)
        lruPush(e)
    }

    private mutating func lruPush(_ e: Int32) {
        entries[Int(e)].lruPrev = -1
        entries[Int(e)].lruNext = lruHead
        if lruHead >= 0 { entries[Int(lruHead)].lruPrev = e }
        lruHead = e
        if lruTail < 0 { lruTail = e }
    }

    private mutating func lruRemove(_ e: Int32) {
        let p = entries[Int(e)].lruPrev, n = entries[Int(e)].lruNext
        if p >= 0 { entries[Int(p)].lruNext = n } else if lruHead == e { lruHead = n }
        if n >= 0 { entries[Int(n)].lruPrev = p } else if lruTail == e { lruTail = p }
        entries[Int(e)].lruPrev = -1
        entries[Int(e)].lruNext = -1
    }

    /// First entry of this key in the chain (any variant), -1 if none.
    func first(hash: UInt64, key k: UnsafeRawBufferPointer) -> Int32 {
        guard ready else { return -1 }
        var x = buckets[Int(hash & bucketMask)]
        while x >= 0 {
            if entries[Int(x)].hash == hash && sameBytes(key(x), k) { return x }
            x = entries[Int(x)].chainNext
        }
        return -1
    }

    /// The next entry after `e` with the same key.
    func next(after e: Int32, hash: UInt64, key k: UnsafeRawBufferPointer) -> Int32 {
        var x = entries[Int(e)].chainNext
        while x >= 0 {
            if entries[Int(x)].hash == hash && sameBytes(key(x), k) { return x }
            x = entries[Int(x)].chainNext
        }
        return -1
    }

    /// Unlinks every entry whose key starts with `prefix` (all when empty).
    mutating func purge(prefix: [UInt8], exact: Bool) -> Int {
        guard ready else { return 0 }
        var n = 0
        var e = lruHead
        while e >= 0 {
            let next = entries[Int(e)].lruNext
            let k = key(e)
            // Keys are "<target> <host>": compare the target part.
            var targetLength = k.count
            if let sp = k.firstIndex(of: 0x20) { targetLength = sp }
            var hit = prefix.isEmpty
            if !hit && prefix.count <= targetLength && (!exact || prefix.count == targetLength) {
                hit = true
                for j in 0..<prefix.count where k[j] != prefix[j] { hit = false; break }
            }
            if hit { unlinkEntry(e); release(e); n += 1 }
            e = next
        }
        return n
    }

    @inline(__always) func sameBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard a.count > 0, let x = a.baseAddress, let y = b.baseAddress else { return true }
        return memcmp(x, y, a.count) == 0
    }
}

/// A route's `cache` settings, flattened into the compiled route.
struct CompiledCacheSettings {
    var enabled = false
    var maxSize: UInt64 = 0
    var maxObject: UInt64 = 0
    var defaultTtlMs: Int = 0
    var coalesce = false
    var coalesceTimeoutMs: Int = 0
    var allowSetCookie = false

    init() {}
    init(_ c: CacheConfig) {
        enabled = true
        maxSize = c.maxSize; maxObject = c.maxObject; defaultTtlMs = c.defaultTtlMs
        coalesce = c.coalesce; coalesceTimeoutMs = c.coalesceTimeoutMs; allowSetCookie = c.allowSetCookie
    }
}

extension Reactor {
    /// One (not yet set up) zone per route when any route of the snapshot caches; nil otherwise.
    /// A reload starts with empty caches: zones belong to the snapshot view.
    static func makeCacheZones(_ routes: UnsafeMutableBufferPointer<CompiledRoute>) -> UnsafeMutablePointer<CacheZone>? {
        guard routes.contains(where: { $0.cache.enabled }) else { return nil }
        let z = UnsafeMutablePointer<CacheZone>.allocate(capacity: routes.count)
        // One CacheZone() each: every zone owns its (empty) placeholder tables.
        for i in 0..<routes.count { (z + i).initialize(to: CacheZone()) }
        return z
    }

    func freeCacheZones(_ z: UnsafeMutablePointer<CacheZone>?, count: Int) {
        guard let z else { return }
        for i in 0..<count {
            stats.cache.bump(stats.cache.bytes, -z[i].bytes)
            stats.cache.bump(stats.cache.entries, -z[i].count)
            z[i].tearDown()
        }
        z.deinitialize(count: count)
        z.deallocate()
    }
}
