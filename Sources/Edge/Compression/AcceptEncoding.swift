/// `Accept-Encoding` negotiation (RFC 9110 §12.5.3) over the raw header
/// value: the coding with the highest q-value among the route's algorithms
/// wins, ties go to the route's order; `q=0` excludes a coding, `*` stands
/// for every coding not named, and a client that excludes everything but
/// identity gets identity. No allocation.
enum AcceptEncoding {
    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

    /// q-values in thousandths for br, zstd, gzip and `*` (-1 = not named).
    struct Weights {
        var gzip: Int32 = -1
        var br: Int32 = -1
        var zstd: Int32 = -1
        var star: Int32 = -1
        /// Seen at least one Accept-Encoding field.
        var present = false

        func weight(_ a: CompressionAlgorithm) -> Int32 {
            let named: Int32
            switch a {
            case .none: return 0
            case .gzip: named = gzip
            case .br: named = br
            case .zstd: named = zstd
            }
            return named >= 0 ? named : max(star, 0)
        }
    }

    /// Adds one Accept-Encoding field value (fields may repeat).
    static func parse(_ v: UnsafeRawBufferPointer, into w: inout Weights) {
        w.present = true
        var i = 0
        let n = v.count
        while i < n {
            // One element: coding *( OWS ";" OWS param ) up to ','.
            while i < n && (v[i] == 0x20 || v[i] == 0x09 || v[i] == UInt8(ascii: ",")) { i += 1 }
            let start = i
            while i < n && v[i] != UInt8(ascii: ",") && v[i] != UInt8(ascii: ";") && v[i] != 0x20 && v[i] != 0x09 { i += 1 }
            let end = i
            var q: Int32 = 1000
            while i < n && v[i] != UInt8(ascii: ",") {
                if v[i] == UInt8(ascii: ";") {
                    i += 1
                    while i < n && (v[i] == 0x20 || v[i] == 0x09) { i += 1 }
                    if i + 1 < n && lower(v[i]) == UInt8(ascii: "q") && v[i + 1] == UInt8(ascii: "=") {
                        i += 2
                        q = parseQ(v, &i)
                        continue
                    }
                }
                i += 1
            }
            if end > start { set(v, start, end, q, &w) }
        }
    }

    /// "1", "1.000", "0.5", "0": thousandths; anything malformed counts as 0 (excluded).
    private static func parseQ(_ v: UnsafeRawBufferPointer, _ i: inout Int) -> Int32 {
        let n = v.count
        guard i < n else { return 0 }
        let d = v[i]
        guard d == UInt8(ascii: "0") || d == UInt8(ascii: "1") else { return 0 }
        var q = Int32(d - UInt8(ascii: "0")) * 1000
        i += 1
        if i < n && v[i] == UInt8(ascii: ".") {
            i += 1
            var scale: Int32 = 100
            var digits = 0
            while i < n && v[i] >= UInt8(ascii: "0") && v[i] <= UInt8(ascii: "9") {
                if digits < 3 { q += Int32(v[i] - UInt8(ascii: "0")) * scale; scale /= 10 }
                digits += 1
                i += 1
            }
        }
        return min(q, 1000)
    }

    private static func set(_ v: UnsafeRawBufferPointer, _ s: Int, _ e: Int, _ q: Int32, _ w: inout Weights) {
        func named(_ word: StaticString) -> Bool {
            guard word.utf8CodeUnitCount == e - s else { return false }
            let p = word.utf8Start
            for k in 0..<(e - s) where lower(v[s + k]) != p[k] { return false }
            return true
        }
        // A repeated coding keeps its highest q (lenient to odd clients).
        if named("gzip") || named("x-gzip") { w.gzip = max(w.gzip, q) }
        else if named("br") { w.br = max(w.br, q) }
        else if named("zstd") { w.zstd = max(w.zstd, q) }
        else if named("*") { w.star = max(w.star, q) }
    }

    /// The route's algorithm the client weighs highest (ties: route order), or `.none`.
    static func choose(_ w: Weights, _ c: CompiledCompression) -> CompressionAlgorithm {
        guard w.present else { return .none }
        var best = CompressionAlgorithm.none
        var bestQ: Int32 = 0
        for i in 0..<3 {
            let a = c.algorithm(at: i)
            if a == .none { break }
            let q = w.weight(a)
            if q > bestQ { best = a; bestQ = q }
        }
        return best
    }
}
