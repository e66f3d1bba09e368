/// `grpc-timeout` (gRPC over HTTP/2 spec): 1-8 ASCII digits and a unit
/// (H, M, S, m, u, n). Edge takes it as the stream's deadline, capped by the
/// route's timeout, so an upstream never works past what the client waits for.
enum GRPCTimeout {
    @inline(__always) static func isName(_ name: UnsafeRawBufferPointer) -> Bool {
        let want: StaticString = "grpc-timeout"
        guard name.count == want.utf8CodeUnitCount else { return false }
        for k in 0..<name.count where name[k] | 0x20 != want.utf8Start[k] | 0x20 { return false }
        return true
    }

    /// Milliseconds (at least 1 for any positive value), nil when malformed.
    static func parseMs(_ v: UnsafeRawBufferPointer) -> Int64? {
        guard v.count >= 2, v.count <= 9 else { return nil }
        var n: Int64 = 0
        for k in 0..<(v.count - 1) {
            let d = v[k]
            guard d >= 0x30 && d <= 0x39 else { return nil }
            n = n * 10 + Int64(d - 0x30)
        }
        let ms: Int64
        switch v[v.count - 1] {
        case UInt8(ascii: "H"): ms = n * 3_600_000
        case UInt8(ascii: "M"): ms = n * 60_000
        case UInt8(ascii: "S"): ms = n * 1_000
        case UInt8(ascii: "m"): ms = n
        case UInt8(ascii: "u"): ms = (n + 999) / 1_000
        case UInt8(ascii: "n"): ms = (n + 999_999) / 1_000_000
        default: return nil
        }
        return n == 0 ? 1 : max(ms, 1)
    }
}

extension Reactor {
    /// The upstream timeout of stream `x`: the route's, shortened by grpc-timeout.
    func h2StreamTimeoutMs(_ x: Int32, _ route: CompiledRoute) -> Int32 {
        let g = http2.streams[Int(x)].up.grpcTimeoutMs
        guard g > 0 else { return route.timeoutMs }
        if route.timeoutMs <= 0 { return Int32(clamping: g) }
        return Int32(clamping: min(Int64(route.timeoutMs), g))
    }
}
