import FuzzSupport
import Protocols

// libFuzzer target: ProxyProtocolParser.parse (v1 text and v2 binary).
// The whole input is the buffer (an exact-size copy). Checks: a complete
// header lies inside the buffer within the spec's size limits and carries a
// well-formed address; results are monotonic over prefixes (a prefix of an
// incomplete buffer is incomplete, an invalid prefix stays invalid, a complete
// prefix stays complete with the same header, every proper prefix of a header
// is incomplete); a parsed address written back by ProxyProtocolWriter (v1 and
// v2) parses to the same address.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyProtocol(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    let buf = ExactBytes(FuzzInput(data, size).all)
    withExtendedLifetime(buf) { check(buf) }
    return 0
}

/// Parses an exact-size copy, keeping it alive for the call.
func parse(_ e: ExactBytes) -> ProxyHeaderResult {
    withExtendedLifetime(e) { ProxyProtocolParser.parse(e.buffer) }
}

func check(_ buf: ExactBytes) {
    let b = buf.buffer
    let n = buf.count
    let result = ProxyProtocolParser.parse(b)

    // Monotonic over prefixes.
    for k in Set([n - 1, n / 2, n / 3, 13, 16]) where k >= 0 && k < n {
        let p = parse(buf.prefix(k))
        switch (p, result) {
        case (.incomplete, _): break
        case (.invalid, .invalid): break
        case (.complete, _): require(p == result, "prefix \(k) is \(p) but the whole buffer is \(result)")
        default: require(false, "prefix \(k) is \(p) but the whole buffer is \(result)")
        }
    }

    guard case .complete(let length, let version, let address) = result else { return }
    require(length >= 1 && length <= n, "length \(length) of \(n)")
    switch version {
    case .v1:
        require(b[0] == UInt8(ascii: "P") && length >= 15 && length <= ProxyProtocolParser.maxV1Length,
                "v1 header of \(length) bytes")
        require(b[length - 2] == 0x0D && b[length - 1] == 0x0A, "v1 header does not end in CRLF")
        for i in 0..<(length - 2) { require(b[i] >= 0x20 && b[i] <= 0x7E, "v1 header byte \(b[i]) at \(i)") }
    case .v2:
        require(length >= 16 && length <= ProxyProtocolParser.maxV2Length, "v2 header of \(length) bytes")
        require(length == 16 + (Int(b[14]) << 8 | Int(b[15])), "v2 length \(length) is not 16 + the declared block")
        require(b[12] >> 4 == 2, "v2 version nibble")
        if address.family == 4 { require(length >= 28, "v2 IPv4 header of \(length) bytes") }
        if address.family == 6 { require(length >= 52, "v2 IPv6 header of \(length) bytes") }
    }
    switch address.family {
    case 0:
        require(address == .unspecified, "family 0 with an address")
    case 4:
        require(address.source.0 == 0 && address.source.1 <= 0xFFFF_FFFF
                && address.destination.0 == 0 && address.destination.1 <= 0xFFFF_FFFF, "IPv4 address out of range")
    case 6:
        break
    default:
        require(false, "address family \(address.family)")
    }
    // Every proper prefix of the header is incomplete.
    for k in Set([length - 1, length / 2, 12]) where k < length {
        let p = parse(buf.prefix(k))
        require(p == .incomplete, "prefix \(k) of a \(length)-byte header is \(p)")
    }
    require(parse(buf.prefix(length)) == result, "the header alone parses differently")

    // Round trip through the writer, both versions.
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: ProxyProtocolWriter.maxHeaderLength, alignment: 1)
    defer { out.deallocate() }
    for v in [ProxyProtocolVersion.v1, .v2] {
        let w = ProxyProtocolWriter.write(v, address, into: out)
        require(w > 0 && w <= out.count, "writer wrote \(w) bytes for \(v)")
        let again = parse(ExactBytes(UnsafeRawBufferPointer(rebasing: out[0..<w])))
        require(again == .complete(length: w, version: v, address: address), "\(v) round trip gives \(again)")
    }
    let text = UnsafeMutableRawBufferPointer.allocate(byteCount: ProxyProtocolWriter.maxAddressTextLength, alignment: 1)
    defer { text.deallocate() }
    let s = ProxyProtocolWriter.sourceText(address, into: text)
    let d = ProxyProtocolWriter.destinationText(address, into: text)
    require(s <= text.count && d <= text.count && (address.family == 0) == (s == 0) && (s == 0) == (d == 0),
            "address text lengths \(s), \(d)")
}
