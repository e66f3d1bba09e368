/// A route's compression settings as the hot path reads them: plain values
/// and arena bytes inside `CompiledRoute` (no ARC when the route is copied).
/// Built on the control thread by `CompiledCompression.init(_:arena:)`.
struct CompiledCompression {
    var enabled = false
    /// Algorithm raw values in server preference order; 0 ends the list.
    var order: (UInt8, UInt8, UInt8) = (0, 0, 0)
    var gzipLevel: Int8 = 6
    var brotliLevel: Int8 = 4
    var zstdLevel: Int8 = 3
    var minSize: UInt64 = 1024
    /// Media ranges, each as one length byte then the lower-cased bytes
    /// (`type/*` ranges keep the `*`).
    var types: StaticBytes = .empty

    init() {}

    init(_ c: CompressionConfig, arena: ByteArena) {
        enabled = true
        var o: [UInt8] = c.algorithms.map(\.rawValue)
        while o.count < 3 { o.append(0) }
        order = (o[0], o[1], o[2])
        gzipLevel = Int8(c.gzipLevel)
        brotliLevel = Int8(c.brotliLevel)
        zstdLevel = Int8(c.zstdLevel)
        minSize = c.minSize
        var bytes: [UInt8] = []
        for t in c.contentTypes {
            let u = Array(t.utf8.prefix(255))
            bytes.append(UInt8(u.count))
            bytes += u
        }
        types = arena.intern(bytes)
    }

    @inline(__always) func algorithm(at i: Int) -> CompressionAlgorithm {
        let raw: UInt8
        switch i {
        case 0: raw = order.0
        case 1: raw = order.1
        case 2: raw = order.2
        default: raw = 0
        }
        return CompressionAlgorithm(rawValue: raw) ?? .none
    }

    @inline(__always) func level(_ a: CompressionAlgorithm) -> Int32 {
        switch a {
        case .none: return 0
        case .gzip: return Int32(gzipLevel)
        case .br: return Int32(brotliLevel)
        case .zstd: return Int32(zstdLevel)
        }
    }

    /// Whether the media type of a Content-Type value (`text/html; charset=utf-8`) is listed.
    func matchesType(_ value: UnsafeRawBufferPointer) -> Bool {
        // The media type: up to ';' or whitespace.
        var n = 0
        while n < value.count, value[n] != UInt8(ascii: ";"), value[n] != 0x20, value[n] != 0x09 { n += 1 }
        if n == 0 { return false }
        let list = types.buffer
        var i = 0
        while i < list.count {
            let len = Int(list[i])
            let start = i + 1
            i = start + len
            guard i <= list.count, len >= 2 else { break }
            let wildcard = list[start + len - 1] == UInt8(ascii: "*")
            let want = wildcard ? len - 1 : len  // "text/*" compares "text/"
            if wildcard ? n <= want : n != want { continue }
            var same = true
            for k in 0..<want where AcceptEncoding.lower(value[k]) != list[start + k] { same = false; break }
            if same { return true }
        }
        return false
    }
}
