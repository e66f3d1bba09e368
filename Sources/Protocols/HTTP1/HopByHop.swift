// Connection-listed header names (RFC 9110 §7.6.1): any field named in a
// Connection header is hop-by-hop and must not be forwarded.

extension HTTP1Parser {
    /// True if the header name `buf[name]` is listed as a token in any Connection
    /// field among `headers[0..<count]` (case-insensitive). Ranges outside `buf`
    /// are ignored rather than trusted.
    public static func isListedInConnection(_ buf: UnsafeRawBufferPointer, headers: UnsafeBufferPointer<HeaderField>,
                                            count: Int, name: ByteRange) -> Bool {
        guard rangeIsInside(name, buf.count), name.length > 0 else { return false }
        let nameStart = Int(name.offset), nameLen = Int(name.length)
        let total = min(max(count, 0), headers.count)
        var k = 0
        while k < total {
            let f = headers[k]
            k += 1
            guard f.kind == .connection, rangeIsInside(f.value, buf.count) else { continue }
            var pos = Int(f.value.offset)
            while let el = nextListElement(buf, pos: &pos, end: f.value.end) {
                guard el.end - el.start == nameLen else { continue }
                var j = 0
                while j < nameLen && lowerASCII(buf[el.start + j]) == lowerASCII(buf[nameStart + j]) { j += 1 }
                if j == nameLen { return true }
            }
        }
        return false
    }
}

/// True if `r` is a well-formed range inside a buffer of `count` bytes.
@usableFromInline
func rangeIsInside(_ r: ByteRange, _ count: Int) -> Bool {
    r.offset >= 0 && r.length >= 0 && r.end <= count
}
