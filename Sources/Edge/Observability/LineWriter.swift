/// Formats one log line into a fixed scratch buffer: bytes, decimals,
/// JSON-escaped strings, microseconds as milliseconds. No allocation; a line
/// longer than the buffer is marked overflowed and dropped by the caller.
struct LineWriter {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    var count = 0
    var overflowed = false

    init(_ base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    @inline(__always) mutating func byte(_ b: UInt8) {
        guard count < capacity else { overflowed = true; return }
        base[count] = b
        count += 1
    }

    mutating func bytes(_ p: UnsafeRawPointer?, _ n: Int) {
        guard let p, n > 0 else { return }
        guard n <= capacity - count else { overflowed = true; return }
        (base + count).update(from: p.assumingMemoryBound(to: UInt8.self), count: n)
        count += n
    }

    mutating func text(_ s: StaticString) { bytes(UnsafeRawPointer(s.utf8Start), s.utf8CodeUnitCount) }

    mutating func decimal(_ v: UInt64, minDigits: Int = 1) {
        var digits = 1
        var p: UInt64 = 1
        while digits < 20 && v / p >= 10 { p &*= 10; digits += 1 }  // 10^19 still fits in UInt64
        var pad = minDigits - digits
        while pad > 0 { byte(48); pad -= 1 }
        var x = v
        while true {
            byte(UInt8(truncatingIfNeeded: 48 &+ x / p))
            x %= p
            if p == 1 { break }
            p /= 10
        }
    }

    /// Microseconds as milliseconds with three decimals ("12.345").
    mutating func millis(us: Int64) {
        let v = UInt64(max(0, us))
        decimal(v / 1000)
        byte(UInt8(ascii: "."))
        decimal(v % 1000, minDigits: 3)
    }

    private static let hex: StaticString = "0123456789abcdef"

    /// A JSON string body: quotes, backslashes, control and non-ASCII bytes
    /// escaped (`\u00XX`), so a line stays valid JSON whatever a client sent.
    mutating func jsonEscaped(_ p: UnsafeRawPointer?, _ n: Int) {
        guard let p, n > 0 else { return }
        let s = p.assumingMemoryBound(to: UInt8.self)
        let hex = LineWriter.hex.utf8Start
        for k in 0..<n {
            let b = s[k]
            if b == 0x22 || b == 0x5C { byte(0x5C); byte(b) }
            else if b < 0x20 || b >= 0x7F {
                text("\\u00"); byte(hex[Int(b >> 4)]); byte(hex[Int(b & 15)])
            } else { byte(b) }
        }
    }

    /// Text format: spaces and control bytes become '_' so fields stay split by spaces.
    mutating func plain(_ p: UnsafeRawPointer?, _ n: Int) {
        guard let p, n > 0 else { byte(UInt8(ascii: "-")); return }
        let s = p.assumingMemoryBound(to: UInt8.self)
        for k in 0..<n {
            let b = s[k]
            byte(b <= 0x20 || b >= 0x7F ? UInt8(ascii: "_") : b)
        }
    }

    /// RFC 3339 UTC time with milliseconds from a CLOCK_REALTIME reading.
    mutating func rfc3339(seconds: Int64, millis ms: Int64) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secs = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        decimal(UInt64(max(0, y)), minDigits: 4); byte(0x2D)
        decimal(UInt64(m), minDigits: 2); byte(0x2D)
        decimal(UInt64(d), minDigits: 2); byte(UInt8(ascii: "T"))
        decimal(UInt64(secs / 3600), minDigits: 2); byte(0x3A)
        decimal(UInt64(secs / 60 % 60), minDigits: 2); byte(0x3A)
        decimal(UInt64(secs % 60), minDigits: 2); byte(0x2E)
        decimal(UInt64(max(0, min(ms, 999))), minDigits: 3); byte(UInt8(ascii: "Z"))
    }
}
