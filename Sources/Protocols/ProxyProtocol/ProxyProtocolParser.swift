// PROXY protocol v1/v2 header parser (HAProxy proxy-protocol.txt). Stateless and
// I/O-free: call it with everything received so far; it rescans from the start
// (a header is at most 107 bytes in v1, and v2 is checked in O(header) with the
// TLV walk), never allocates and never traps. Garbage is rejected at the first
// byte that cannot start a valid header, so a listener that requires PROXY can
// drop a plain HTTP client after its first byte.

public enum ProxyProtocolParser {
    /// Longest v1 line including CRLF (spec §2.1).
    public static let maxV1Length = 107
    /// Largest v2 header accepted: 16-byte fixed part + address block + TLVs.
    public static let maxV2Length = 16384

    /// Parses a PROXY header at the start of `buf`.
    ///
    /// v1: `PROXY TCP4|TCP6 src dst sport dport\r\n` with strict fields (dotted quad
    /// without leading zeros, RFC 4291 IPv6 text, ports 0...65535 without leading
    /// zeros, single spaces, CRLF), or `PROXY UNKNOWN` followed by CRLF or by a space
    /// and printable ASCII up to CRLF (ignored, per spec). At most 107 bytes.
    ///
    /// v2: signature, version 2, command LOCAL or PROXY; family/transport byte one
    /// of the spec's values (PROXY: UNSPEC, TCP4, UDP4, TCP6, UDP6; LOCAL: also the
    /// UNIX ones). LOCAL and PROXY/UNSPEC report family 0 and skip the block
    /// unread. PROXY over INET/INET6 requires the whole address block inside the
    /// declared length, and the rest of the block must be a sequence of TLVs that
    /// exactly fills it (TLV contents are not interpreted). Total ≤ 16 KiB.
    public static func parse(_ buf: UnsafeRawBufferPointer) -> ProxyHeaderResult {
        guard buf.count > 0 else { return .incomplete }
        switch buf[0] {
        case 0x50: return parseV1(buf)  // "P"
        case 0x0D: return parseV2(buf)  // "\r"
        default: return .invalid("not a PROXY protocol header")
        }
    }

    // MARK: v1

    @usableFromInline
    static func parseV1(_ b: UnsafeRawBufferPointer) -> ProxyHeaderResult {
        var s = PPText.match(b, 0, "PROXY ", "not a PROXY protocol header")
        guard case .done(let afterSig) = s else { return s.result }
        guard afterSig < b.count else { return .incomplete }
        let family: UInt8
        if b[afterSig] == 0x55 {  // "U"
            s = PPText.match(b, afterSig, "UNKNOWN", "unsupported PROXY v1 protocol")
            guard case .done(let e) = s else { return s.result }
            return parseV1Unknown(b, e)
        }
        s = PPText.match(b, afterSig, "TCP", "unsupported PROXY v1 protocol")
        guard case .done(let e) = s else { return s.result }
        guard e < b.count else { return .incomplete }
        switch b[e] {
        case 0x34: family = 4
        case 0x36: family = 6
        default: return .invalid("unsupported PROXY v1 protocol")
        }
        var i = e &+ 1

        var address = ProxyAddress.unspecified
        address.family = family
        var port: UInt32 = 0
        // src SP dst SP sport SP dport CRLF
        var field = 0
        while field < 4 {
            s = space(b, i)
            guard case .done(let start) = s else { return s.result }
            switch field {
            case 0, 1:
                var a: (UInt64, UInt64) = (0, 0)
                if family == 4 {
                    var v: UInt32 = 0
                    s = PPText.ipv4(b, start, &v)
                    a = (0, UInt64(v))
                } else {
                    s = PPText.ipv6(b, start, &a)
                }
                if field == 0 { address.source = a } else { address.destination = a }
            default:
                s = PPText.decimal(b, start, max: 65535, &port, "bad PROXY v1 port")
                if field == 2 {
                    address.sourcePort = UInt16(truncatingIfNeeded: port)
                } else {
                    address.destinationPort = UInt16(truncatingIfNeeded: port)
                }
            }
            guard case .done(let end) = s else { return s.result }
            i = end
            field &+= 1
        }
        s = crlf(b, i)
        guard case .done(let end) = s else { return s.result }
        // Strict fields cannot exceed 104 bytes; kept as a guard for the limit.
        guard end <= maxV1Length else { return .invalid("PROXY v1 header too long") }
        return .complete(length: end, version: .v1, address: address)
    }

    /// One SP at `at`, not followed by another.
    @inlinable
    static func space(_ b: UnsafeRawBufferPointer, _ at: Int) -> PPScan {
        guard at >= 0 && at < b.count else { return .more }
        guard b[at] == 0x20 else {
            return b[at] == 0x0D || b[at] == 0x0A ? .bad("PROXY v1 header has too few fields")
                                                  : .bad("bad PROXY v1 field")
        }
        let next = at &+ 1
        if next < b.count && b[next] == 0x20 { return .bad("PROXY v1 fields need single spaces") }
        return .done(next)
    }

    @inlinable
    static func crlf(_ b: UnsafeRawBufferPointer, _ at: Int) -> PPScan {
        guard at >= 0 && at < b.count else { return .more }
        switch b[at] {
        case 0x0D:
            let next = at &+ 1
            guard next < b.count else { return .more }
            return b[next] == 0x0A ? .done(next &+ 1) : .bad("PROXY v1 CR without LF")
        case 0x0A:
            return .bad("PROXY v1 line ends in bare LF")
        case 0x20:
            return .bad("PROXY v1 header has too many fields")
        default:
            return .bad("bad PROXY v1 field")
        }
    }

    /// After "PROXY UNKNOWN": CRLF, or SP + printable ASCII up to CRLF, within 107 bytes.
    @usableFromInline
    static func parseV1Unknown(_ b: UnsafeRawBufferPointer, _ at: Int) -> ProxyHeaderResult {
        // The CR must sit at index ≤ 105 so that CRLF ends by byte 107.
        let crLimit = maxV1Length &- 2
        var i = at
        while i < b.count && i <= crLimit {
            let c = b[i]
            if c == 0x0D {
                let next = i &+ 1
                guard next < b.count else { return .incomplete }
                guard b[next] == 0x0A else { return .invalid("PROXY v1 CR without LF") }
                return .complete(length: next &+ 1, version: .v1, address: .unspecified)
            }
            if c == 0x0A { return .invalid("PROXY v1 line ends in bare LF") }
            if i == at && c != 0x20 { return .invalid("unsupported PROXY v1 protocol") }
            if c < 0x20 || c > 0x7E { return .invalid("PROXY v1 header has a control byte") }
            i &+= 1
        }
        return i > crLimit ? .invalid("PROXY v1 header too long") : .incomplete
    }

    // MARK: v2

    /// Byte `k` of the 12-byte v2 signature "\r\n\r\n\0\r\nQUIT\n".
    @inlinable @inline(__always)
    static func v2Signature(_ k: Int) -> UInt8 {
        switch k {
        case 0, 2, 5: return 0x0D
        case 1, 3, 6, 11: return 0x0A
        case 4: return 0x00
        case 7: return 0x51
        case 8: return 0x55
        case 9: return 0x49
        default: return 0x54
        }
    }

    @usableFromInline
    static func parseV2(_ b: UnsafeRawBufferPointer) -> ProxyHeaderResult {
        let n = b.count
        var k = 0
        while k < 12 {
            guard k < n else { return .incomplete }
            if b[k] != v2Signature(k) { return .invalid("not a PROXY protocol header") }
            k &+= 1
        }
        guard n > 12 else { return .incomplete }
        let verCmd = b[12]
        guard verCmd >> 4 == 2 else { return .invalid("unsupported PROXY v2 version") }
        let isProxy: Bool
        switch verCmd & 0x0F {
        case 0: isProxy = false
        case 1: isProxy = true
        default: return .invalid("unsupported PROXY v2 command")
        }
        guard n > 13 else { return .incomplete }
        let famByte = b[13]
        // Address block size for PROXY over INET/INET6; 0 = block skipped unread.
        var addrLen = 0
        var family: UInt8 = 0
        switch famByte {
        case 0x00:
            break
        case 0x11, 0x12:
            if isProxy { family = 4; addrLen = 12 }
        case 0x21, 0x22:
            if isProxy { family = 6; addrLen = 36 }
        case 0x31, 0x32:
            if isProxy { return .invalid("unsupported PROXY v2 address family (AF_UNIX)") }
        default:
            return .invalid("bad PROXY v2 address family or transport")
        }
        guard n >= 16 else { return .incomplete }
        let blockLen = Int(b[14]) << 8 | Int(b[15])
        let total = 16 &+ blockLen
        guard total <= maxV2Length else { return .invalid("PROXY v2 header too long") }
        guard blockLen >= addrLen else { return .invalid("PROXY v2 address block truncated") }

        if addrLen > 0 {
            // TLVs after the addresses must exactly fill the block; check the ones
            // already received so a bad length is refused without waiting for bytes.
            var t = 16 &+ addrLen
            while t < total {
                guard t &+ 3 <= total else { return .invalid("PROXY v2 TLV truncated") }
                guard t &+ 3 <= n else { break }
                let vlen = Int(b[t &+ 1]) << 8 | Int(b[t &+ 2])
                t = t &+ 3 &+ vlen
                guard t <= total else { return .invalid("PROXY v2 TLV exceeds header length") }
            }
        }
        guard n >= total else { return .incomplete }

        var address = ProxyAddress.unspecified
        if family == 4 {
            address.family = 4
            address.source = (0, UInt64(load32(b, 16)))
            address.destination = (0, UInt64(load32(b, 20)))
            address.sourcePort = load16(b, 24)
            address.destinationPort = load16(b, 26)
        } else if family == 6 {
            address.family = 6
            address.source = (load64(b, 16), load64(b, 24))
            address.destination = (load64(b, 32), load64(b, 40))
            address.sourcePort = load16(b, 48)
            address.destinationPort = load16(b, 50)
        }
        return .complete(length: total, version: .v2, address: address)
    }

    // Big-endian loads; callers have checked `at + size <= b.count`, and the
    // guards below turn any mistake into zeros rather than a trap.
    @inlinable @inline(__always)
    static func load16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        guard at >= 0 && at <= b.count &- 2 else { return 0 }
        return UInt16(b[at]) << 8 | UInt16(b[at &+ 1])
    }

    @inlinable @inline(__always)
    static func load32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        guard at >= 0 && at <= b.count &- 4 else { return 0 }
        return UInt32(load16(b, at)) << 16 | UInt32(load16(b, at &+ 2))
    }

    @inlinable @inline(__always)
    static func load64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        guard at >= 0 && at <= b.count &- 8 else { return 0 }
        return UInt64(load32(b, at)) << 32 | UInt64(load32(b, at &+ 4))
    }
}
