// A cursor over a fixed, caller-owned output buffer for serialising heads and
// chunk framing. It never allocates and never traps: the first append that does
// not fit sets `overflowed`, and every later append is ignored, so the caller
// checks once at the end.

public struct HeadWriter {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    @usableFromInline var used: Int = 0
    @usableFromInline var didOverflow = false

    @inlinable
    public init(_ base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity < 0 ? 0 : capacity
    }

    /// Bytes written so far.
    @inlinable public var count: Int { used }
    /// Set once any append did not fit; further appends are ignored.
    @inlinable public var overflowed: Bool { didOverflow }

    /// Reserves `n` bytes and returns where to write them, or nil (and marks overflow).
    @inlinable @inline(__always)
    mutating func reserve(_ n: Int) -> UnsafeMutableRawPointer? {
        guard !didOverflow, n >= 0, n <= capacity - used else { didOverflow = true; return nil }
        let p = base + used
        used += n
        return p
    }

    @inlinable
    public mutating func append(_ s: StaticString) {
        s.withUTF8Buffer { src in
            guard let p = reserve(src.count), let from = src.baseAddress, src.count > 0 else { return }
            p.copyMemory(from: from, byteCount: src.count)
        }
    }

    @inlinable
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let p = reserve(bytes.count) else { return }
        if let src = bytes.baseAddress, bytes.count > 0 { p.copyMemory(from: src, byteCount: bytes.count) }
    }

    /// Appends `src[range]`; a range outside `src` counts as overflow, not a trap.
    @inlinable
    public mutating func append(_ src: UnsafeRawBufferPointer, range: ByteRange) {
        guard range.offset >= 0, range.length >= 0, range.end <= src.count else { didOverflow = true; return }
        guard let p = reserve(Int(range.length)) else { return }
        if let s = src.baseAddress, range.length > 0 {
            p.copyMemory(from: s + Int(range.offset), byteCount: Int(range.length))
        }
    }

    @inlinable
    public mutating func appendByte(_ b: UInt8) {
        guard let p = reserve(1) else { return }
        p.storeBytes(of: b, as: UInt8.self)
    }

    @inlinable
    public mutating func appendDecimal(_ v: UInt64) {
        var digits = 1
        var t = v
        while t >= 10 { t /= 10; digits += 1 }
        guard let p = reserve(digits) else { return }
        var x = v
        var k = digits
        while k > 0 {
            k -= 1
            p.storeBytes(of: UInt8(truncatingIfNeeded: x % 10) &+ 0x30, toByteOffset: k, as: UInt8.self)
            x /= 10
        }
    }

    /// Lowercase hex, zero-padded to `minDigits` (clamped to 1...16).
    @inlinable
    public mutating func appendHex(_ v: UInt64, minDigits: Int) {
        var digits = 1
        var t = v >> 4
        while t != 0 { t >>= 4; digits += 1 }
        let want = minDigits < 1 ? 1 : (minDigits > 16 ? 16 : minDigits)
        if digits < want { digits = want }
        guard let p = reserve(digits) else { return }
        var x = v
        var k = digits
        while k > 0 {
            k -= 1
            let d = UInt8(truncatingIfNeeded: x & 0xF)
            p.storeBytes(of: d < 10 ? d &+ 0x30 : d &+ 0x57, toByteOffset: k, as: UInt8.self)
            x >>= 4
        }
    }

    /// "HTTP/1.1 <status> <reason>\r\n" with `reasonPhrase(status)`.
    @inlinable
    public mutating func appendStatusLine(_ status: UInt16) {
        append("HTTP/1.1 ")
        appendDecimal(UInt64(status))
        appendByte(0x20)
        append(reasonPhrase(status))
        append("\r\n")
    }
}
