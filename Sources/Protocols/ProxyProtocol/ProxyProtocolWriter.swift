// PROXY protocol v1/v2 header writer and address text for logs. Writes into a
// caller-owned buffer; never allocates, never traps. A header always fits in
// `ProxyProtocolWriter.maxHeaderLength` bytes.

public enum ProxyProtocolWriter {
    /// Enough room for any header this writer produces (v2 IPv6: 52; v1 TCP6: ≤ 104).
    public static let maxHeaderLength = 108
    /// Enough room for any `sourceText`/`destinationText` (IPv6: 39).
    public static let maxAddressTextLength = 46

    /// Writes a v1 or v2 header for `address` into `out`; returns bytes written, or 0
    /// if `out` is too small (or `address.family` is not 0, 4 or 6). v2 writes the
    /// PROXY command over STREAM with no TLVs; family 0 writes LOCAL (v2) or
    /// "PROXY UNKNOWN\r\n" (v1). IPv6 in v1 is written in RFC 5952 form.
    public static func write(_ version: ProxyProtocolVersion, _ address: ProxyAddress,
                             into out: UnsafeMutableRawBufferPointer) -> Int {
        guard address.family == 0 || address.family == 4 || address.family == 6 else { return 0 }
        var w = PPOut(out)
        switch version {
        case .v1:
            switch address.family {
            case 4:
                w.literal("PROXY TCP4 ")
                w.ipv4(UInt32(truncatingIfNeeded: address.source.1)); w.byte(0x20)
                w.ipv4(UInt32(truncatingIfNeeded: address.destination.1))
            case 6:
                w.literal("PROXY TCP6 ")
                w.ipv6(address.source); w.byte(0x20)
                w.ipv6(address.destination)
            default:
                w.literal("PROXY UNKNOWN\r\n")
                return w.result
            }
            w.byte(0x20); w.decimal(UInt32(address.sourcePort))
            w.byte(0x20); w.decimal(UInt32(address.destinationPort))
            w.literal("\r\n")
        case .v2:
            var k = 0
            while k < 12 { w.byte(ProxyProtocolParser.v2Signature(k)); k &+= 1 }
            switch address.family {
            case 4:
                w.byte(0x21); w.byte(0x11); w.be16(12)
                w.be64(address.source.1, bytes: 4)
                w.be64(address.destination.1, bytes: 4)
            case 6:
                w.byte(0x21); w.byte(0x21); w.be16(36)
                w.be64(address.source.0, bytes: 8); w.be64(address.source.1, bytes: 8)
                w.be64(address.destination.0, bytes: 8); w.be64(address.destination.1, bytes: 8)
            default:
                w.byte(0x20); w.byte(0x00); w.be16(0)
                return w.result
            }
            w.be16(address.sourcePort)
            w.be16(address.destinationPort)
        }
        return w.result
    }

    /// Builds a `ProxyAddress` from raw network-order addresses (4 bytes IPv4 or
    /// 16 bytes IPv6, e.g. `sin_addr` / `sin6_addr`) and host-order ports. If one
    /// side is IPv4 and the other IPv6 (dual-stack socket), the IPv4 one is mapped
    /// to `::ffff:a.b.c.d` and the result is family 6. Other sizes give nil.
    public static func address(source: UnsafeRawBufferPointer, sourcePort: UInt16,
                               destination: UnsafeRawBufferPointer, destinationPort: UInt16) -> ProxyAddress? {
        guard let s = raw(source), let d = raw(destination) else { return nil }
        var a = ProxyAddress(family: 4, source: s.value, destination: d.value,
                             sourcePort: sourcePort, destinationPort: destinationPort)
        if s.v6 || d.v6 {
            a.family = 6
            if !s.v6 { a.source = (0, 0xFFFF_0000_0000 | s.value.1) }
            if !d.v6 { a.destination = (0, 0xFFFF_0000_0000 | d.value.1) }
        }
        return a
    }

    @inlinable
    static func raw(_ b: UnsafeRawBufferPointer) -> (v6: Bool, value: (UInt64, UInt64))? {
        switch b.count {
        case 4:
            return (false, (0, UInt64(ProxyProtocolParser.load32(b, 0))))
        case 16:
            return (true, (ProxyProtocolParser.load64(b, 0), ProxyProtocolParser.load64(b, 8)))
        default:
            return nil
        }
    }

    /// Writes the source address as text ("203.0.113.7", or "2001:db8::1" in RFC 5952
    /// form, "::ffff:192.0.2.1" for IPv4-mapped) into `out`; returns the length, or 0
    /// if `out` is too small or the family is not 4 or 6. No port, no brackets.
    public static func sourceText(_ address: ProxyAddress, into out: UnsafeMutableRawBufferPointer) -> Int {
        text(address.family, address.source, into: out)
    }

    /// Same as `sourceText` for the destination address.
    public static func destinationText(_ address: ProxyAddress, into out: UnsafeMutableRawBufferPointer) -> Int {
        text(address.family, address.destination, into: out)
    }

    @inlinable
    static func text(_ family: UInt8, _ a: (UInt64, UInt64), into out: UnsafeMutableRawBufferPointer) -> Int {
        var w = PPOut(out)
        switch family {
        case 4: w.ipv4(UInt32(truncatingIfNeeded: a.1))
        case 6: w.ipv6(a)
        default: return 0
        }
        return w.result
    }
}
