/// Seeded 64-bit hashing and constant-time comparison for policy lookups
/// (API keys, usernames, rate-limit keys). Allocation-free; used on the hot
/// path and by the compiler so both agree on slot positions.
enum PolicyHash {
    /// Eight bytes at a time (multiply-rotate per word, FNV-1a for the tail),
    /// then a splitmix finaliser with the seed. Never 0 (0 marks an empty
    /// slot). Not a MAC: equality is always confirmed on the bytes themselves.
    @inline(__always)
    static func bytes(_ p: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed ^ UInt64(p.count)
        var i = 0
        if let base = p.baseAddress {
            while i + 8 <= p.count {
                let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                h = (h ^ (w &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9
                h = (h << 27) | (h >> 37)
                i += 8
            }
        }
        while i < p.count { h = (h ^ UInt64(p[i])) &* 0x0000_0100_0000_01B3; i += 1 }
        let m = Reactor.mix(h)
        return m == 0 ? 1 : m
    }

    @inline(__always)
    static func value(_ v: UInt64, seed: UInt64) -> UInt64 {
        let m = Reactor.mix(v ^ seed)
        return m == 0 ? 1 : m
    }

    /// Equal length and bytes, in time that depends only on the length.
    @inline(__always)
    static func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// `v` starts with `lowerPrefix` (ASCII letters compared case-insensitively).
    @inline(__always)
    static func hasPrefixIgnoringCase(_ v: UnsafeRawBufferPointer, _ lowerPrefix: StaticString) -> Bool {
        let n = lowerPrefix.utf8CodeUnitCount
        guard v.count >= n else { return false }
        let p = lowerPrefix.utf8Start
        for k in 0..<n {
            var ch = v[k]
            if ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
            if ch != p[k] { return false }
        }
        return true
    }

    /// Finds `key` in an open-addressed credential table (power-of-two size).
    @inline(__always)
    static func lookup(_ slots: UnsafeMutableBufferPointer<CredentialSlot>, _ key: UnsafeRawBufferPointer, seed: UInt64) -> Int32 {
        let n = slots.count
        guard n > 0, key.count > 0 else { return -1 }
        let h = bytes(key, seed: seed)
        var i = Int(truncatingIfNeeded: h) & (n - 1)
        for _ in 0..<n {
            let s = slots[i]
            if s.hash == 0 { return -1 }
            if s.hash == h && constantTimeEqual(s.bytes.buffer, key) { return s.consumer }
            i = (i + 1) & (n - 1)
        }
        return -1
    }
}
