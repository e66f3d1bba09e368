import FuzzSupport
import Protocols

// libFuzzer target: ClientHelloPeek.parse (TLS records → ClientHello → SNI/ALPN).
// The whole input is the stream (an exact-size copy); byte 0 of the input also
// picks a scratch size, so the "too large for the scratch" paths are fuzzed.
// Checks: returned ranges lie inside the scratch and the message; a host name
// is 1...255 printable bytes; the ALPN list is a well-formed list; needMore's
// bound lies past the input; results are monotonic over prefixes (a prefix of
// a complete answer is needMore or the same answer, never a different one,
// and a prefix shorter than a needMore bound gives needMore).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientHello(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let scratchSize = size > 0 && input.all[0] & 1 == 1 ? 512 : 16384
    let buf = ExactBytes(input.all)
    withExtendedLifetime(buf) { check(buf, scratchSize) }
    return 0
}

func peek(_ e: ExactBytes, _ scratchSize: Int) -> (ClientHelloPeekResult, [UInt8]) {
    var copy = [UInt8](repeating: 0, count: scratchSize)
    let r = copy.withUnsafeMutableBytes { scratch in
        withExtendedLifetime(e) { ClientHelloPeek.parse(e.buffer, scratch: scratch) }
    }
    return (r, copy)
}

func check(_ buf: ExactBytes, _ scratchSize: Int) {
    let n = buf.count
    let (result, scratch) = peek(buf, scratchSize)
    switch result {
    case .needMore(let atLeast):
        require(atLeast > n, "needMore(\(atLeast)) for \(n) bytes")
    case .sni(let name, let alpn):
        require(inside(name, scratch.count) && name.length >= 1 && name.length <= 255, "name \(name)")
        for i in Int(name.offset)..<name.end { require(scratch[i] > 0x20 && scratch[i] < 0x7F, "name byte \(scratch[i])") }
        checkALPN(alpn, scratch)
    case .noSNI(let alpn):
        checkALPN(alpn, scratch)
    case .notTLS, .malformed:
        break
    }
    for k in Set([n - 1, n / 2, n / 3, 5, 9]) where k >= 0 && k < n {
        let (p, _) = peek(buf.prefix(k), scratchSize)
        switch (p, result) {
        case (.needMore(let bound), .needMore(let whole)):
            require(bound <= whole, "prefix \(k) bound \(bound) past the whole input's \(whole)")
        case (.needMore(let bound), _):
            require(bound <= n, "prefix \(k) says needMore(\(bound)) but \(n) bytes answer \(result)")
        default:
            require(sameKind(p, result), "prefix \(k) is \(p) but the whole input is \(result)")
        }
    }
}

func sameKind(_ a: ClientHelloPeekResult, _ b: ClientHelloPeekResult) -> Bool {
    switch (a, b) {
    case (.notTLS, .notTLS), (.malformed, .malformed): return true
    case (.sni(let x, let y), .sni(let u, let v)): return x == u && y == v
    case (.noSNI(let x), .noSNI(let y)): return x == y
    default: return false
    }
}

func checkALPN(_ alpn: ByteRange, _ scratch: [UInt8]) {
    require(inside(alpn, scratch.count), "alpn \(alpn)")
    var i = Int(alpn.offset)
    while i < alpn.end {
        let len = Int(scratch[i])
        require(len >= 1 && i + 1 + len <= alpn.end, "alpn entry of \(len) at \(i)")
        i += 1 + len
    }
}
