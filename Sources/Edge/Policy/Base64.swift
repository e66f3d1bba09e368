/// RFC 4648 base64 decoding into caller memory (no allocation): the standard
/// alphabet with optional padding (Basic credentials, HMAC signatures) and
/// unpadded base64url (JWT, RFC 7515 §2).
enum Base64 {
    @inline(__always) static func value(_ c: UInt8, url: Bool) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+") where !url, UInt8(ascii: "-") where url: return 62
        case UInt8(ascii: "/") where !url, UInt8(ascii: "_") where url: return 63
        default: return nil
        }
    }

    /// Standard alphabet, padding optional. Decoded length, or nil for bad
    /// input or output that would not fit.
    static func decode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int? {
        var n = src.count
        while n > 0 && src[n - 1] == UInt8(ascii: "=") { n -= 1 }
        guard src.count - n <= 2 else { return nil }
        return decodeSymbols(src, count: n, url: false, into: dst)
    }

    /// The `count` leading symbols of `src`, no padding among them.
    static func decodeSymbols(_ src: UnsafeRawBufferPointer, count n: Int, url: Bool, into dst: UnsafeMutableRawBufferPointer) -> Int? {
        guard n % 4 != 1 else { return nil }
        var acc: UInt32 = 0, bits = 0, out = 0
        for i in 0..<n {
            guard let v = value(src[i], url: url) else { return nil }
            acc = (acc << 6 | UInt32(v)) & 0xFFFFFF
            bits += 6
            if bits >= 8 {
                bits -= 8
                guard out < dst.count else { return nil }
                dst[out] = UInt8(truncatingIfNeeded: acc >> UInt32(bits))
                out += 1
            }
        }
        return out
    }
}

enum Base64URL {
    /// Unpadded base64url. nil on bad characters (padding included) or overflow.
    @inline(__always) static func decode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int? {
        Base64.decodeSymbols(src, count: src.count, url: true, into: dst)
    }
}
