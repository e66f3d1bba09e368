import Protocols

/// The Cache-Control directives the cache acts on (RFC 9111 §5.2).
struct CacheDirectives {
    var noStore = false
    var noCache = false
    var isPrivate = false
    var isPublic = false
    var mustRevalidate = false
    var maxAge: Int64 = -1
    var sMaxAge: Int64 = -1

    /// Adds the directives of one Cache-Control field value; unknown ones are ignored.
    mutating func parse(_ v: UnsafeRawBufferPointer) {
        var i = 0
        let n = v.count
        while i < n {
            while i < n && (v[i] == 0x20 || v[i] == 0x09 || v[i] == 0x2C) { i += 1 }
            let nameStart = i
            while i < n && v[i] != 0x3D && v[i] != 0x2C && v[i] != 0x20 && v[i] != 0x09 { i += 1 }
            let name = UnsafeRawBufferPointer(rebasing: v[nameStart..<i])
            var value: Int64 = -1
            if i < n && v[i] == 0x3D {
                i += 1
                if i < n && v[i] == 0x22 { i += 1 }
                var num: Int64 = 0, digits = 0
                while i < n && v[i] >= 0x30 && v[i] <= 0x39 {
                    if num < 1 << 40 { num = num * 10 + Int64(v[i] - 0x30) }
                    digits += 1; i += 1
                }
                if digits > 0 { value = num }
                while i < n && v[i] != 0x2C { i += 1 }  // rest of a quoted or odd value
            }
            if CacheHeaders.equalsLower(name, "no-store") { noStore = true }
            else if CacheHeaders.equalsLower(name, "no-cache") { noCache = true }
            else if CacheHeaders.equalsLower(name, "private") { isPrivate = true }
            else if CacheHeaders.equalsLower(name, "public") { isPublic = true }
            else if CacheHeaders.equalsLower(name, "must-revalidate") || CacheHeaders.equalsLower(name, "proxy-revalidate") { mustRevalidate = true }
            else if CacheHeaders.equalsLower(name, "max-age") { maxAge = value < 0 ? 0 : value }
            else if CacheHeaders.equalsLower(name, "s-maxage") { sMaxAge = value < 0 ? 0 : value }
            if i < n && v[i] != 0x2C { i += 1 }
        }
    }
}

/// Byte helpers for cache header handling: name comparison, HTTP dates,
/// entity tags, and the key hash. No allocation, no traps on any input.
enum CacheHeaders {
    /// `a` equals the lower-case ASCII `lower`, ignoring case.
    @inline(__always) static func equalsLower(_ a: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
        guard a.count == lower.utf8CodeUnitCount else { return false }
        let p = lower.utf8Start
        for j in 0..<a.count {
            var ch = a[j]
            if ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
            if ch != p[j] { return false }
        }
        return true
    }

    @inline(__always) static func slice(_ buf: UnsafeRawBufferPointer, _ r: ByteRange) -> UnsafeRawBufferPointer {
        let o = max(0, min(Int(r.offset), buf.count))
        let e = max(o, min(o + Int(r.length), buf.count))
        return UnsafeRawBufferPointer(rebasing: buf[o..<e])
    }

    /// Same bytes ignoring ASCII case (header names).
    static func sameName(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for j in 0..<a.count where (a[j] | 0x20) != (b[j] | 0x20) { return false }
        return true
    }

    static func fnv(_ h: inout UInt64, _ b: UnsafeRawBufferPointer) {
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
    }

    /// Decimal seconds (Age), -1 if not a number.
    static func seconds(_ v: UnsafeRawBufferPointer) -> Int64 {
        var n: Int64 = 0
        guard v.count > 0 else { return -1 }
        for x in v {
            guard x >= 0x30 && x <= 0x39 else { return -1 }
            if n < 1 << 40 { n = n * 10 + Int64(x - 0x30) }
        }
        return n
    }

    /// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix seconds, nil otherwise.
    static func httpDate(_ v: UnsafeRawBufferPointer) -> Int64? {
        guard v.count == 29, v[3] == 0x2C, v[4] == 0x20, v[7] == 0x20, v[11] == 0x20, v[16] == 0x20,
              v[19] == 0x3A, v[22] == 0x3A, v[25] == 0x20 else { return nil }
        func num(_ a: Int, _ n: Int) -> Int64? {
            var x: Int64 = 0
            for k in a..<(a + n) {
                guard v[k] >= 0x30 && v[k] <= 0x39 else { return nil }
                x = x * 10 + Int64(v[k] - 0x30)
            }
            return x
        }
        guard let day = num(5, 2), let year = num(12, 4), let hh = num(17, 2), let mm = num(20, 2), let ss = num(23, 2) else { return nil }
        let months: StaticString = "janfebmaraprmayjunjulaugsepoctnovdec"
        var month: Int64 = -1
        for m in 0..<12 {
            let p = months.utf8Start + m * 3
            if (v[8] | 0x20) == p[0] && (v[9] | 0x20) == p[1] && (v[10] | 0x20) == p[2] { month = Int64(m + 1); break }
        }
        guard month > 0, day >= 1, day <= 31, hh < 24, mm < 60, ss < 61 else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return days * 86400 + hh * 3600 + mm * 60 + ss
    }

    /// Whether an If-None-Match value lists `etag` (weak comparison) or is `*`.
    static func noneMatchHits(_ list: UnsafeRawBufferPointer, _ etag: UnsafeRawBufferPointer) -> Bool {
        let tag = stripWeak(etag)
        guard tag.count > 0 else { return false }
        var i = 0
        let n = list.count
        while i < n {
            while i < n && (list[i] == 0x20 || list[i] == 0x09 || list[i] == 0x2C) { i += 1 }
            let s = i
            if i < n && list[i] == 0x2A { return true }
            if i + 1 < n && list[i] == 0x57 && list[i + 1] == 0x2F { i += 2 }  // W/
            if i < n && list[i] == 0x22 {
                i += 1
                while i < n && list[i] != 0x22 { i += 1 }
                if i < n { i += 1 }
            } else {
                while i < n && list[i] != 0x2C { i += 1 }
            }
            let one = stripWeak(UnsafeRawBufferPointer(rebasing: list[s..<i]))
            if one.count == tag.count && one.elementsEqual(tag) { return true }
        }
        return false
    }

    private static func stripWeak(_ t: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        if t.count >= 2 && t[0] == 0x57 && t[1] == 0x2F { return UnsafeRawBufferPointer(rebasing: t[2...]) }
        return t
    }
}
