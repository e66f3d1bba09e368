import CIOUring
import Glibc

/// One slot of an open-addressing table keyed by bytes. Keys live in the
/// `RouteTable` arena; `first`/`count` name a run in `RouteTable.candidates`
/// (or, for host tables, `first` is a host-bucket index). `count == 0` = empty.
struct HashSlot {
    var key: UnsafeRawPointer?
    var keyLength: Int32
    var hash: UInt32
    var first: Int32
    var count: Int32
}

/// A hash table over a run of `RouteTable.hashSlots`: linear probing, capacity
/// a power of two at most half full, so a miss ends at an empty slot quickly.
/// `minKey`/`maxKey` let a lookup skip keys whose length cannot be present.
struct ByteHashTable {
    var firstSlot: Int32
    /// 0 = empty table (no slots).
    var capacity: Int32
    var minKey: Int32
    var maxKey: Int32
    static let empty = ByteHashTable(firstSlot: 0, capacity: 0, minKey: 0, maxKey: -1)
}

/// Word-at-a-time hash over bytes (8 bytes per multiply, overlapping loads for
/// the tail, murmur3's finalizer), optionally ASCII-case-folded with SWAR so a
/// host needs no lower-cased copy. Byte-at-a-time FNV was the largest cost of
/// a match: its multiply chain is serial. Wrapping arithmetic (`&*`, `&+`) is
/// the hash's definition, not an overflow.
enum ByteHash {
    static let seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    static let multiplier: UInt64 = 0xFF51_AFD7_ED55_8CCD
    static let emptyHash: UInt32 = finish(seed)

    @inline(__always)
    static func hash(_ p: UnsafeRawPointer, _ count: Int, foldCase: Bool) -> UInt32 {
        // The length is mixed in first, so overlapping tail loads cannot make
        // keys of different lengths collide systematically.
        var h = seed ^ UInt64(truncatingIfNeeded: count)
        @inline(__always) func mix(_ w: UInt64) {
            h = (h ^ (foldCase ? lower8(w) : w)) &* multiplier
            h ^= h >> 29
        }
        if count >= 8 {
            var i = 0
            while i + 8 <= count {
                mix(p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                i += 8
            }
            if i < count { mix(p.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)) }
        } else if count >= 4 {
            let lo = UInt64(p.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            let hi = UInt64(p.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self))
            mix(lo | hi << 32)
        } else if count > 0 {
            var w: UInt64 = 0
            var i = 0
            while i < count {
                w |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << UInt64(i * 8)
                i += 1
            }
            mix(w)
        }
        return finish(h)
    }

    @inline(__always)
    static func finish(_ x: UInt64) -> UInt32 {
        var h = x
        h ^= h >> 33
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return UInt32(truncatingIfNeeded: h)
    }

    /// ASCII 'A'...'Z' → 'a'...'z' in all 8 bytes at once; other bytes (incl.
    /// ≥ 0x80) unchanged. Per byte b (7 low bits): b+0x3F sets bit 7 iff b ≥ 'A',
    /// b+0x25 sets it iff b > 'Z'; no sum exceeds 0xFF, so no carry crosses bytes.
    @inline(__always)
    static func lower8(_ x: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low7 = x & (0x7F &* ones)
        let geA = low7 &+ (0x3F &* ones)
        let gtZ = low7 &+ (0x25 &* ones)
        let upper = geA & ~gtZ & ~x & (0x80 &* ones)
        return x | (upper >> 2)
    }

    @inline(__always)
    static func hash(_ b: [UInt8]) -> UInt32 {
        b.withUnsafeBytes { $0.baseAddress.map { hash($0, b.count, foldCase: false) } ?? emptyHash }
    }

    /// `have` (request bytes, any case when `foldCase`) equals `want` (stored,
    /// already lower-cased when `foldCase`).
    @inline(__always)
    static func equal(_ have: UnsafeRawPointer, _ want: UnsafeRawPointer, _ count: Int, foldCase: Bool) -> Bool {
        if !foldCase { return memcmp(have, want, count) == 0 }
        var i = 0
        while i + 8 <= count {
            if lower8(have.loadUnaligned(fromByteOffset: i, as: UInt64.self)) != want.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < count {
            var c = have.load(fromByteOffset: i, as: UInt8.self)
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            if c != want.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }
}

extension ByteHashTable {
    /// Index into `slots` of the entry for `key`, or -1. No allocation.
    @inline(__always)
    func find(_ key: UnsafeRawPointer?, _ count: Int, foldCase: Bool,
              in slots: UnsafeMutableBufferPointer<HashSlot>) -> Int {
        guard capacity > 0, count >= Int(minKey), count <= Int(maxKey) else { return -1 }
        let p = key ?? UnsafeRawPointer(Regex.emptySubject)
        let h = ByteHash.hash(p, count, foldCase: foldCase)
        let mask = Int(capacity) - 1
        let base = Int(firstSlot)
        var i = Int(h) & mask
        var probes = 0
        while probes < Int(capacity) {
            let s = slots[base + i]
            if s.count == 0 { return -1 }
            if s.hash == h && Int(s.keyLength) == count,
               count == 0 || (s.key.map { ByteHash.equal(p, $0, count, foldCase: foldCase) } ?? false) {
                return base + i
            }
            i = (i + 1) & mask
            probes += 1
        }
        return -1
    }
}

/// Compile-time builder: appends one table's slots to a shared slot array.
/// Keys must already be interned (and lower-cased for case-insensitive tables).
struct ByteHashTableBuilder {
    struct Entry { var key: StaticBytes; var first: Int32; var count: Int32 }

    static func build(_ entries: [Entry], into slots: inout [HashSlot]) -> ByteHashTable {
        guard !entries.isEmpty else { return .empty }
        var cap = 4
        while cap < entries.count * 2 { cap <<= 1 }
        let first = slots.count
        slots.append(contentsOf: repeatElement(HashSlot(key: nil, keyLength: 0, hash: 0, first: 0, count: 0), count: cap))
        var minKey = Int.max, maxKey = 0
        for e in entries {
            let h = e.key.base.map { ByteHash.hash($0, e.key.count, foldCase: false) } ?? ByteHash.emptyHash
            var i = Int(h) & (cap - 1)
            while slots[first + i].count != 0 { i = (i + 1) & (cap - 1) }
            slots[first + i] = HashSlot(key: e.key.base, keyLength: Int32(e.key.count), hash: h,
                                        first: e.first, count: max(e.count, 1))
            minKey = min(minKey, e.key.count)
            maxKey = max(maxKey, e.key.count)
        }
        return ByteHashTable(firstSlot: Int32(first), capacity: Int32(cap), minKey: Int32(minKey), maxKey: Int32(maxKey))
    }
}
