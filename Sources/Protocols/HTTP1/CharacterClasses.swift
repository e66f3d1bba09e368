// Byte classes from RFC 9110/9112/3986 as 128-bit bitmasks (two UInt64 literals).
// A mask test is branch-light, needs no table in memory and no lazy global
// initialisation, so it costs nothing per call.

// Named bytes as literals (not globals) so no lazy-initialisation accessor is involved.
@usableFromInline enum ASCII {
    @inlinable static var cr: UInt8 { 0x0D }
    @inlinable static var lf: UInt8 { 0x0A }
    @inlinable static var sp: UInt8 { 0x20 }
    @inlinable static var ht: UInt8 { 0x09 }
    @inlinable static var colon: UInt8 { 0x3A }
    @inlinable static var comma: UInt8 { 0x2C }
    @inlinable static var semicolon: UInt8 { 0x3B }
    @inlinable static var equals: UInt8 { 0x3D }
    @inlinable static var dquote: UInt8 { 0x22 }
    @inlinable static var backslash: UInt8 { 0x5C }
    @inlinable static var slash: UInt8 { 0x2F }
}

/// Tests bit `b` of the 128-bit set (lo: bytes 0..63, hi: 64..127); bytes ≥ 128 are never members.
@inlinable @inline(__always)
func inMask(_ b: UInt8, _ lo: UInt64, _ hi: UInt64) -> Bool {
    if b < 64 { return (lo >> UInt64(b)) & 1 != 0 }
    if b < 128 { return (hi >> UInt64(b &- 64)) & 1 != 0 }
    return false
}

/// tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~" / DIGIT / ALPHA.
@inlinable @inline(__always)
func isTchar(_ b: UInt8) -> Bool { inMask(b, 0x03ff_6cfa_0000_0000, 0x57ff_ffff_c7ff_fffe) }

/// Characters allowed in a Host value or an authority: RFC 3986 unreserved,
/// sub-delims, ":" (port), "[" "]" (IP-literal) and "%" (pct-encoded). Excludes
/// SP, "/", "?", "#", "@" and everything that could confuse a router.
@inlinable @inline(__always)
func isAuthorityChar(_ b: UInt8) -> Bool { inMask(b, 0x2fff_7ff2_0000_0000, 0x47ff_fffe_afff_fffe) }

/// field-vchar (VCHAR / obs-text): 0x21-0x7E, 0x80-0xFF.
@inlinable @inline(__always)
func isFieldVchar(_ b: UInt8) -> Bool { b > 0x20 && b != 0x7F }

/// Visible ASCII, the only bytes allowed in a request-target.
@inlinable @inline(__always)
func isVisibleASCII(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }

@inlinable @inline(__always)
func isOWS(_ b: UInt8) -> Bool { b == ASCII.sp || b == ASCII.ht }

@inlinable @inline(__always)
func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

/// Value of a hex digit, or nil.
@inlinable @inline(__always)
func hexValue(_ b: UInt8) -> UInt64? {
    if b &- 0x30 < 10 { return UInt64(b &- 0x30) }
    let l = b | 0x20
    if l &- 0x61 < 6 { return UInt64(l &- 0x61 &+ 10) }
    return nil
}

/// ASCII lower-casing that is exact for tchar bytes (the only bytes compared with it).
@inlinable @inline(__always)
func lowerASCII(_ b: UInt8) -> UInt8 { (b &- 0x41 < 26) ? (b | 0x20) : b }
