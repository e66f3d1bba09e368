/// `routes[].compression: { algorithms, level, min_size, content_types }`.
extension ConfigLoader {
    static let compressionFields = ["algorithms", "level", "min_size", "content_types"]
    static let compressionLevelFields = ["gzip", "br", "zstd"]

    static func parseCompression(_ node: ConfigNode) throws(ConfigError) -> CompressionConfig {
        let m = try node.mapping(allowed: compressionFields)
        var c = CompressionConfig()
        if let n = m.optional("algorithms") {
            let items = try n.list()
            guard !items.isEmpty else { throw n.error("give at least one of: br, zstd, gzip (or remove compression)") }
            var algs: [CompressionAlgorithm] = []
            for item in items {
                let a: CompressionAlgorithm
                switch try item.oneOf(["br", "zstd", "gzip"], what: "compression algorithm") {
                case "br": a = .br
                case "zstd": a = .zstd
                default: a = .gzip
                }
                guard !algs.contains(a) else { throw item.error("'\(a.token)' is listed twice") }
                algs.append(a)
            }
            c.algorithms = algs
        }
        if let n = m.optional("level") {
            let l = try n.mapping(allowed: compressionLevelFields)
            if let v = l.optional("gzip") { c.gzipLevel = try v.int(in: 1...9) }
            if let v = l.optional("br") { c.brotliLevel = try v.int(in: 0...11) }
            if let v = l.optional("zstd") { c.zstdLevel = try v.int(in: 1...19) }
        }
        if let n = m.optional("min_size") { c.minSize = try n.sizeBytes(in: 0...(1 << 30)) }
        if let n = m.optional("content_types") {
            let items = try n.list()
            guard !items.isEmpty else { throw n.error("give at least one media type like text/* or application/json") }
            var types: [String] = []
            for item in items {
                let t = try item.string().lowercased()
                guard isMediaRange(t) else {
                    throw item.error("'\(t)' is not a media type like text/html or text/* (no parameters)")
                }
                guard !types.contains(t) else { throw item.error("'\(t)' is listed twice") }
                types.append(t)
            }
            c.contentTypes = types
        }
        return c
    }

    /// `type/subtype` or `type/*`, both tokens.
    static func isMediaRange(_ t: String) -> Bool {
        let parts = t.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, parts[0] != "*" else { return false }
        return parts[0].utf8.allSatisfy(isTokenByte) && (parts[1] == "*" || parts[1].utf8.allSatisfy { isTokenByte($0) && $0 != UInt8(ascii: "*") })
    }
}
