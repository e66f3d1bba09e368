import Protocols

/// Key hashing and key extraction for `consistent_hash`. Everything here reads
/// request bytes in place: no copies, no allocation, no trapping arithmetic.
enum HashKey {
    /// A fast, deterministic 64-bit hash (xxHash64's short-input path: 8-byte
    /// lanes, then 4/1-byte tails, then its avalanche). Deterministic across
    /// processes and reactors — unlike `Hasher`, which is seeded per process — so
    /// every reactor and every restart sends a key to the same endpoint.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
        let p3: UInt64 = 0x1656_67B1_9E37_79F9, p4: UInt64 = 0x85EB_CA77_C2B2_AE63
        let p5: UInt64 = 0x27D4_EB2F_1656_67C5
        let n = bytes.count
        var h = seed &+ p5 &+ UInt64(truncatingIfNeeded: n)
        guard let base = bytes.baseAddress, n > 0 else { return avalanche(h) }
        var i = 0
        while i &+ 8 <= n {
            var k = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            k = rotl(k &* p2, 31) &* p1
            h = rotl(h ^ k, 27) &* p1 &+ p4
            i &+= 8
        }
        if i &+ 4 <= n {
            let k = UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
            h = rotl(h ^ (k &* p1), 23) &* p2 &+ p3
            i &+= 4
        }
        while i < n {
            h = rotl(h ^ (UInt64(base.load(fromByteOffset: i, as: UInt8.self)) &* p5), 11) &* p1
            i &+= 1
        }
        return avalanche(h)
    }

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 &- r)) }

    /// xxHash64's final mix: every input bit affects every output bit, so
    /// `hash % maglevSize` is uniform even for keys that differ in one byte.
    @inline(__always) static func avalanche(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33; h = h &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29; h = h &* 0x1656_67B1_9E37_79F9
        h ^= h >> 32
        return h
    }

    /// The bytes `field` names in `head`, or nil if the range does not lie
    /// inside it (parser ranges are trusted, but a bad one must not trap).
    @inline(__always)
    static func slice(_ head: UnsafeRawBufferPointer, _ r: ByteRange) -> UnsafeRawBufferPointer? {
        let start = Int(r.offset), count = Int(r.length)
        guard start >= 0, count >= 0, start <= head.count, count <= head.count &- start, let base = head.baseAddress else { return nil }
        return UnsafeRawBufferPointer(start: base + start, count: count)
    }

    /// ASCII case-insensitive equality (`lower` is normally lower-cased already;
    /// folding it too costs nothing and survives a compiler that forgot).
    @inline(__always)
    static func equalsLowercased(_ have: UnsafeRawBufferPointer, _ lower: UnsafeRawBufferPointer) -> Bool {
        guard have.count == lower.count else { return false }
        var i = 0
        while i < have.count {
            var c = have[i], d = lower[i]
            if c &- 0x41 < 26 { c |= 0x20 }
            if d &- 0x41 < 26 { d |= 0x20 }
            if c != d { return false }
            i &+= 1
        }
        return true
    }

    /// Value of the first header named `lowerName` (case-insensitive), or nil
    /// when absent or empty.
    static func headerValue(_ req: UnsafePointer<RequestView>, lowerName: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let head = req.pointee.head
        for f in req.pointee.headers {
            guard let name = slice(head, f.name), equalsLowercased(name, lowerName),
                  let value = slice(head, f.value), value.count > 0 else { continue }
            return value
        }
        return nil
    }

    private static let cookieName: StaticString = "cookie"

    /// Value of cookie `name` (case-sensitive, RFC 6265) from any `Cookie:`
    /// header, surrounding quotes removed; nil when absent or empty.
    static func cookieValue(_ req: UnsafePointer<RequestView>, name: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let head = req.pointee.head
        let cookie = UnsafeRawBufferPointer(start: cookieName.utf8Start, count: cookieName.utf8CodeUnitCount)
        for f in req.pointee.headers {
            guard let n = slice(head, f.name), equalsLowercased(n, cookie),
                  let v = slice(head, f.value) else { continue }
            if let found = findCookie(in: v, name: name) { return found }
        }
        return nil
    }

    /// Scans one `Cookie` value (`a=b; c=d`) for `name`. Pairs without '=' are skipped.
    static func findCookie(in v: UnsafeRawBufferPointer, name: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let base = v.baseAddress else { return nil }
        let n = v.count
        var i = 0
        while i < n {
            // Skip separators and optional whitespace before a pair.
            while i < n, v[i] == 0x3B || v[i] == 0x20 || v[i] == 0x09 { i &+= 1 }
            let pairStart = i
            while i < n, v[i] != 0x3B { i &+= 1 }
            var pairEnd = i
            while pairEnd > pairStart, v[pairEnd &- 1] == 0x20 || v[pairEnd &- 1] == 0x09 { pairEnd &-= 1 }
            var eq = pairStart
            while eq < pairEnd, v[eq] != 0x3D { eq &+= 1 }
            guard eq < pairEnd else { continue }
            var nameEnd = eq
            while nameEnd > pairStart, v[nameEnd &- 1] == 0x20 || v[nameEnd &- 1] == 0x09 { nameEnd &-= 1 }
            guard nameEnd &- pairStart == name.count,
                  memcmpBytes(base + pairStart, name) else { continue }
            var vs = eq &+ 1, ve = pairEnd
            while vs < ve, v[vs] == 0x20 || v[vs] == 0x09 { vs &+= 1 }
            if ve &- vs >= 2, v[vs] == 0x22, v[ve &- 1] == 0x22 { vs &+= 1; ve &-= 1 }
            guard ve > vs else { return nil }
            return UnsafeRawBufferPointer(start: base + vs, count: ve &- vs)
        }
        return nil
    }

    @inline(__always)
    private static func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < b.count {
            if a.load(fromByteOffset: i, as: UInt8.self) != b[i] { return false }
            i &+= 1
        }
        return true
    }
}
