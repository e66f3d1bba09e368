/// The rules an HTTP/2 (or HTTP/3) field must pass before Edge writes it as
/// HTTP/1.1 to an upstream (RFC 9113 §8.2, §8.3; the downgrade smuggling of
/// CVE-2021-33193 and CVE-2023-40225). nghttp2's own messaging checks stay on;
/// these run again on every field so that no byte reaches the HTTP/1.1 writer
/// that could end a line or a head early. I/O-free and allocation-free.
public enum H2FieldRules {
    /// What one decoded field is, once checked.
    public enum Verdict: Sendable {
        case regular
        /// `host`: becomes the HTTP/1.1 Host (must agree with `:authority`).
        case host
        case contentLength
        /// `te: trailers` (the only TE HTTP/2 allows); dropped as hop-by-hop towards HTTP/1.1.
        case te
        case cookie
        case pseudo(Pseudo)
        /// Refused: the stream is reset (or answered 400).
        case malformed(StaticString)

        public var isCookie: Bool { if case .cookie = self { return true } else { return false } }
    }

    public enum Pseudo: UInt8, Sendable { case method, scheme, authority, path, `protocol` }

    /// tchar of RFC 9110 §5.6.2, lower-case letters only (HTTP/2 field names are lower case).
    @inline(__always) static func isLowerTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case 0x61...0x7A, 0x30...0x39: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }

    /// tchar of RFC 9110 (methods are case-sensitive tokens).
    @inline(__always) public static func isTokenByte(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || isLowerTokenByte(c)
    }

    @inline(__always) static func equals(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        guard b.count == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for i in 0..<b.count where b[i] != p[i] { return false }
        return true
    }

    /// Case-insensitive ASCII equality (for `te: Trailers`, host comparisons).
    @inline(__always) public static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count {
            var x = a[i], y = b[i]
            if x >= 0x41 && x <= 0x5A { x |= 0x20 }
            if y >= 0x41 && y <= 0x5A { y |= 0x20 }
            if x != y { return false }
        }
        return true
    }

    /// No CR, LF or NUL anywhere (they would end an HTTP/1.1 line), and no
    /// other control bytes but HTAB. Leading/trailing whitespace is trimmed by
    /// the HTTP/1.1 re-parse, never passed into a new line.
    @inline(__always) public static func isSafeValue(_ v: UnsafeRawBufferPointer) -> Bool {
        for c in v where (c < 0x20 && c != 0x09) || c == 0x7F { return false }
        return true
    }

    public static func classify(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Verdict {
        guard name.count > 0 else { return .malformed("empty field name") }
        guard isSafeValue(value) else { return .malformed("control character in a field value") }
        if name[0] == UInt8(ascii: ":") {
            let rest = UnsafeRawBufferPointer(rebasing: name[1...])
            if equals(rest, "method") {
                guard value.count > 0, value.allSatisfy(isTokenByte) else { return .malformed(":method is not a token") }
                return .pseudo(.method)
            }
            if equals(rest, "scheme") {
                guard equals(value, "http") || equals(value, "https") else { return .malformed(":scheme is not http or https") }
                return .pseudo(.scheme)
            }
            if equals(rest, "authority") {
                for c in value where c == 0x20 || c == 0x09 || c == UInt8(ascii: "/") || c == UInt8(ascii: "?") || c == UInt8(ascii: "#") || c == UInt8(ascii: "@") {
                    return .malformed(":authority is not host[:port]")
                }
                return .pseudo(.authority)
            }
            if equals(rest, "path") {
                guard value.count > 0 else { return .malformed("empty :path") }
                guard value[0] == UInt8(ascii: "/") || (value.count == 1 && value[0] == UInt8(ascii: "*")) else {
                    return .malformed(":path must start with /")
                }
                for c in value where c <= 0x20 || c == 0x7F { return .malformed("whitespace in :path") }
                return .pseudo(.path)
            }
            if equals(rest, "protocol") { return .pseudo(.protocol) }
            return .malformed("unknown pseudo-header")
        }
        for c in name where !isLowerTokenByte(c) { return .malformed("field name not a lower-case token") }
        // Connection-specific fields (RFC 9113 §8.2.2) have no meaning on a stream.
        if equals(name, "connection") || equals(name, "keep-alive") || equals(name, "proxy-connection")
            || equals(name, "transfer-encoding") || equals(name, "upgrade") || equals(name, "http2-settings") {
            return .malformed("connection-specific field")
        }
        if equals(name, "te") {
            let trailers: StaticString = "trailers"
            let t = UnsafeRawBufferPointer(start: trailers.utf8Start, count: trailers.utf8CodeUnitCount)
            return equalsIgnoringCase(value, t) ? .te : .malformed("te other than trailers")
        }
        if equals(name, "host") { return .host }
        if equals(name, "cookie") { return .cookie }
        if equals(name, "content-length") {
            guard parseContentLength(value) != nil else { return .malformed("content-length is not a number") }
            return .contentLength
        }
        return .regular
    }

    /// 1 to 19 decimal digits (no sign, no list), or nil.
    public static func parseContentLength(_ v: UnsafeRawBufferPointer) -> UInt64? {
        guard v.count > 0, v.count <= 18 else { return nil }
        var n: UInt64 = 0
        for c in v {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            n = n * 10 + UInt64(c - 0x30)
        }
        return n
    }
}
