/// Seeded 64-bit hashing and constant-time comparison for policy lookups
/// (API keys, usernames, rate-limit keys). Allocation-free; used on the hot
/// path and by the compiler so both agree on slot positions.
enum PolicyHash {
    /// FNV-1a over the bytes, then a splitmix finaliser with the seed. Never 0
    /// (0 marks an empty slot).
    @inline(__always)
    static func bytes(_ p: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for b in p { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
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
