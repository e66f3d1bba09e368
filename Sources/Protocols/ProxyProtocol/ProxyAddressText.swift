// Strict address and port text for PROXY v1 (parsing) and for logs/v1 writing
// (formatting). Parsers work on a prefix of the received bytes: they stop at the
// first byte that cannot belong to the field and report `.more` only while the
// bytes seen so far are still a prefix of some valid field, so garbage is
// rejected at the first byte that proves it.

/// Result of scanning one field or literal.
@usableFromInline
enum PPScan {
    /// The field ended; the index is the first byte after it (not consumed).
    case done(Int)
    /// The buffer ended inside the field; everything so far is a valid prefix.
    case more
    case bad(StaticString)

    /// `.more`/`.bad` as a parse result (never called with `.done`).
    @inlinable var result: ProxyHeaderResult {
        switch self {
        case .more: return .incomplete
        case .bad(let r): return .invalid(r)
        case .done: return .invalid("PROXY header parser error")
        }
    }
}

/// Eight 16-bit groups of an IPv6 address, inline (no heap). Out-of-range
/// indices read 0 and ignore writes, so no input can make it trap.
@usableFromInline
struct PPGroups {
    @usableFromInline var g: (UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16) = (0, 0, 0, 0, 0, 0, 0, 0)

    @inlinable init() {}

    @inlinable init(_ a: (UInt64, UInt64)) {
        var k = 0
        while k < 4 {
            let shift = UInt64(48 &- 16 &* k)
            self[k] = UInt16(truncatingIfNeeded: a.0 >> shift)
            self[k &+ 4] = UInt16(truncatingIfNeeded: a.1 >> shift)
            k &+= 1
        }
    }

    @inlinable subscript(i: Int) -> UInt16 {
        get {
            guard i >= 0 && i < 8 else { return 0 }
            return withUnsafeBytes(of: g) { $0.load(fromByteOffset: i &* 2, as: UInt16.self) }
        }
        set {
            guard i >= 0 && i < 8 else { return }
            withUnsafeMutableBytes(of: &g) { $0.storeBytes(of: newValue, toByteOffset: i &* 2, as: UInt16.self) }
        }
    }

    /// The two big-endian halves (`ProxyAddress` layout).
    @inlinable var halves: (UInt64, UInt64) {
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        var k = 0
        while k < 4 {
            hi = hi << 16 | UInt64(self[k])
            lo = lo << 16 | UInt64(self[k &+ 4])
            k &+= 1
        }
        return (hi, lo)
    }
}

@usableFromInline
enum PPText {
    @inlinable @inline(__always)
    static func decimalDigit(_ b: UInt8) -> UInt32? {
        let d = b &- 0x30
        return d < 10 ? UInt32(d) : nil
    }

    @inlinable @inline(__always)
    static func hexDigit(_ b: UInt8) -> UInt32? {
        if b &- 0x30 < 10 { return UInt32(b &- 0x30) }
        let l = b | 0x20
        if l &- 0x61 < 6 { return UInt32(l &- 0x61 &+ 10) }
        return nil
    }

    /// Matches `literal` at `at`; `.bad(reason)` at the first differing byte.
    @inlinable
    static func match(_ b: UnsafeRawBufferPointer, _ at: Int, _ literal: StaticString, _ reason: StaticString) -> PPScan {
        literal.withUTF8Buffer { l in
            var k = 0
            var i = at
            while k < l.count {
                guard i >= 0 && i < b.count else { return .more }
                if b[i] != l[k] { return .bad(reason) }
                k &+= 1
                i &+= 1
            }
            return .done(i)
        }
    }

    /// Unsigned decimal without leading zeros ("0" itself is fine), value ≤ `max`.
    /// Stops at the first non-digit.
    @inlinable
    static func decimal(_ b: UnsafeRawBufferPointer, _ at: Int, max: UInt32, _ value: inout UInt32,
                        _ reason: StaticString) -> PPScan {
        var i = at
        var v: UInt32 = 0
        var digits = 0
        while i >= 0 && i < b.count {
            guard let d = decimalDigit(b[i]) else {
                if digits == 0 { return .bad(reason) }
                value = v
                return .done(i)
            }
            if digits > 0 && v == 0 { return .bad(reason) }  // leading zero
            v = v &* 10 &+ d                                 // v ≤ max < 2^17 before this step
            if v > max { return .bad(reason) }
            digits &+= 1
            i &+= 1
        }
        return .more
    }

    /// Dotted quad: four decimal octets 0...255 without leading zeros.
    /// Stops at the first byte that is neither a digit nor a dot.
    @inlinable
    static func ipv4(_ b: UnsafeRawBufferPointer, _ at: Int, _ value: inout UInt32) -> PPScan {
        var i = at
        var acc: UInt32 = 0
        var octets = 0        // completed octets
        var v: UInt32 = 0
        var digits = 0
        while i >= 0 && i < b.count {
            let c = b[i]
            if let d = decimalDigit(c) {
                if digits > 0 && v == 0 { return .bad("bad IPv4 address (leading zero)") }
                v = v &* 10 &+ d
                if v > 255 { return .bad("bad IPv4 address (octet over 255)") }
                digits &+= 1
            } else if c == 0x2E {  // "."
                if digits == 0 || octets >= 3 { return .bad("bad IPv4 address") }
                acc = acc << 8 | v
                octets &+= 1
                v = 0
                digits = 0
            } else {
                if digits == 0 || octets != 3 { return .bad("bad IPv4 address") }
                value = acc << 8 | v
                return .done(i)
            }
            i &+= 1
        }
        return .more
    }

    /// IPv6 text (RFC 4291 §2.2): up to eight groups of 1-4 hex digits, at most one
    /// "::" standing for at least one zero group, optionally ending in a dotted quad
    /// (no leading zeros) for the last 32 bits. No zone ids. Stops at the first byte
    /// that is not a hex digit, ":" or ".".
    @inlinable
    static func ipv6(_ b: UnsafeRawBufferPointer, _ at: Int, _ value: inout (UInt64, UInt64)) -> PPScan {
        var groups = PPGroups()
        var count = 0           // completed explicit groups
        var gap = -1            // groups before "::", or -1
        // last token: 0 start, 1 digit, 2 ":" after a group, 3 "::", 4 ".", 5 leading ":"
        var last = 0
        var digits = 0          // digits in the current run
        var hex: UInt32 = 0
        var dec: UInt32 = 0
        var decOK = true        // current run is a valid decimal octet so far
        var inV4 = false
        var v4Octets = 0        // completed octets of the dotted-quad tail
        var v4: UInt32 = 0
        var i = at
        while i >= 0 && i < b.count {
            let c = b[i]
            if let h = hexDigit(c) {
                if inV4 {
                    guard let d = decimalDigit(c) else { return .bad("bad IPv6 address (IPv4 tail)") }
                    if digits > 0 && dec == 0 { return .bad("bad IPv6 address (IPv4 tail)") }
                    dec = dec &* 10 &+ d
                    if dec > 255 { return .bad("bad IPv6 address (IPv4 tail)") }
                    digits &+= 1
                } else {
                    if last == 5 { return .bad("bad IPv6 address (leading single \":\")") }
                    if digits == 0 && count &+ 1 &+ (gap >= 0 ? 1 : 0) > 8 {
                        return .bad("bad IPv6 address (too many groups)")
                    }
                    digits &+= 1
                    if digits > 4 { return .bad("bad IPv6 address (group over 4 digits)") }
                    hex = hex << 4 | h
                    if let d = decimalDigit(c), decOK {
                        if digits > 1 && dec == 0 { decOK = false }
                        dec = dec &* 10 &+ d
                        if dec > 255 { decOK = false }
                    } else {
                        decOK = false
                    }
                }
                last = 1
            } else if c == 0x3A {  // ":"
                if inV4 { return .bad("bad IPv6 address (IPv4 tail)") }
                switch last {
                case 1:
                    groups[count] = UInt16(truncatingIfNeeded: hex)
                    count &+= 1
                    digits = 0; hex = 0; dec = 0; decOK = true
                    // Another group (or a "::" worth at least one) must follow.
                    if count &+ 1 &+ (gap >= 0 ? 1 : 0) > 8 { return .bad("bad IPv6 address (too many groups)") }
                    last = 2
                case 2, 5:
                    if gap >= 0 { return .bad("bad IPv6 address (two \"::\")") }
                    gap = count
                    last = 3
                case 0:
                    last = 5
                default:
                    return .bad("bad IPv6 address (\":::\")")
                }
            } else if c == 0x2E {  // "."
                guard last == 1 else { return .bad("bad IPv6 address") }
                if !inV4 {
                    guard decOK && digits <= 3 else { return .bad("bad IPv6 address (IPv4 tail)") }
                    guard count > 0 || gap >= 0 else { return .bad("bad IPv6 address (bare IPv4)") }
                    if count &+ 2 &+ (gap >= 0 ? 1 : 0) > 8 { return .bad("bad IPv6 address (too many groups)") }
                    inV4 = true
                    v4 = dec
                    v4Octets = 1
                } else {
                    if v4Octets >= 3 { return .bad("bad IPv6 address (IPv4 tail)") }
                    v4 = v4 << 8 | dec
                    v4Octets &+= 1
                }
                digits = 0; dec = 0
                last = 4
            } else {
                // End of the field: check it is a whole address.
                switch last {
                case 1:
                    if inV4 {
                        if v4Octets != 3 { return .bad("bad IPv6 address (IPv4 tail)") }
                        let q = v4 << 8 | dec
                        groups[count] = UInt16(truncatingIfNeeded: q >> 16)
                        groups[count &+ 1] = UInt16(truncatingIfNeeded: q)
                        count &+= 2
                    } else {
                        groups[count] = UInt16(truncatingIfNeeded: hex)
                        count &+= 1
                    }
                case 3:
                    break
                default:
                    return .bad("bad IPv6 address")
                }
                if gap < 0 {
                    if count != 8 { return .bad("bad IPv6 address (too few groups)") }
                } else {
                    // Move the groups after "::" to the end; zeros fill the gap.
                    let tail = count &- gap
                    var k = tail
                    while k > 0 {
                        k &-= 1
                        let v = groups[gap &+ k]
                        groups[gap &+ k] = 0
                        groups[8 &- tail &+ k] = v
                    }
                }
                value = groups.halves
                return .done(i)
            }
            i &+= 1
        }
        return .more
    }
}

/// A cursor over a caller-owned output buffer. Never traps: the first write that
/// does not fit sets `overflowed` and later writes are ignored.
@usableFromInline
struct PPOut {
    @usableFromInline let base: UnsafeMutableRawPointer?
    @usableFromInline let capacity: Int
    @usableFromInline var used = 0
    @usableFromInline var overflowed = false

    @inlinable init(_ out: UnsafeMutableRawBufferPointer) {
        base = out.baseAddress
        capacity = out.baseAddress == nil ? 0 : out.count
    }

    /// Bytes written, or 0 after an overflow.
    @inlinable var result: Int { overflowed ? 0 : used }

    @inlinable @inline(__always)
    mutating func byte(_ v: UInt8) {
        guard !overflowed, used < capacity, let p = base else { overflowed = true; return }
        p.storeBytes(of: v, toByteOffset: used, as: UInt8.self)
        used &+= 1
    }

    @inlinable
    mutating func literal(_ s: StaticString) {
        s.withUTF8Buffer { src in
            var k = 0
            while k < src.count { byte(src[k]); k &+= 1 }
        }
    }

    @inlinable
    mutating func be16(_ v: UInt16) {
        byte(UInt8(truncatingIfNeeded: v >> 8)); byte(UInt8(truncatingIfNeeded: v))
    }

    @inlinable
    mutating func be64(_ v: UInt64, bytes: Int) {
        var k = bytes
        while k > 0 {
            k &-= 1
            byte(UInt8(truncatingIfNeeded: v >> UInt64(8 &* k)))
        }
    }

    @inlinable
    mutating func decimal(_ v: UInt32) {
        var div: UInt32 = 1
        while div <= v / 10 { div &*= 10 }
        var x = v
        while true {
            byte(UInt8(truncatingIfNeeded: x / div) &+ 0x30)
            x %= div
            if div == 1 { break }
            div /= 10
        }
    }

    /// Lowercase hex without leading zeros.
    @inlinable
    mutating func hex(_ v: UInt16) {
        var shift = 12
        while shift > 0 && (v >> UInt16(shift)) == 0 { shift &-= 4 }
        while shift >= 0 {
            let n = UInt8(truncatingIfNeeded: v >> UInt16(shift)) & 0xF
            byte(n < 10 ? n &+ 0x30 : n &+ 0x57)
            shift &-= 4
        }
    }

    @inlinable
    mutating func ipv4(_ v: UInt32) {
        decimal(v >> 24); byte(0x2E)
        decimal(v >> 16 & 0xFF); byte(0x2E)
        decimal(v >> 8 & 0xFF); byte(0x2E)
        decimal(v & 0xFF)
    }

    /// RFC 5952: lowercase, no leading zeros, the longest run (first on ties) of two
    /// or more zero groups as "::"; IPv4-mapped addresses as "::ffff:a.b.c.d" (§5).
    @inlinable
    mutating func ipv6(_ a: (UInt64, UInt64)) {
        if a.0 == 0 && a.1 >> 32 == 0xFFFF {
            literal("::ffff:")
            ipv4(UInt32(truncatingIfNeeded: a.1))
            return
        }
        let g = PPGroups(a)
        var bestStart = -1, bestLen = 1
        var k = 0
        while k < 8 {
            if g[k] == 0 {
                var e = k
                while e < 8 && g[e] == 0 { e &+= 1 }
                if e &- k > bestLen { bestStart = k; bestLen = e &- k }
                k = e
            } else {
                k &+= 1
            }
        }
        k = 0
        while k < 8 {
            if k == bestStart {
                literal("::")
                k &+= bestLen
                continue
            }
            if k > 0 && k != bestStart &+ bestLen { byte(0x3A) }
            hex(g[k])
            k &+= 1
        }
    }
}
