/// `routes[].compression`: response compression (Compression/).
struct CompressionConfig: Sendable, Equatable {
    static let defaultContentTypes = [
        "text/*", "application/json", "application/javascript", "application/xml", "application/xhtml+xml",
        "application/rss+xml", "application/atom+xml", "application/wasm", "application/manifest+json",
        "image/svg+xml", "font/ttf", "font/otf",
    ]
    /// Server preference, best first; the client's q-values decide first, ties go by this order.
    var algorithms: [CompressionAlgorithm] = [.br, .zstd, .gzip]
    var gzipLevel = 6
    var brotliLevel = 4
    var zstdLevel = 3
    /// Responses with a smaller Content-Length go out as they are (unknown length: always compressed).
    var minSize: UInt64 = 1024
    /// `type/subtype` or `type/*`, lower-cased.
    var contentTypes: [String] = defaultContentTypes
}
