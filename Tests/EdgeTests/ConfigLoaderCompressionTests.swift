import XCTest
@testable import Edge

/// `routes[].compression`: values land in the model and the compiled route,
/// every field's bad value fails with `file:line: field: problem`.
final class ConfigLoaderCompressionTests: XCTestCase {
    /// `compression` is the route's field on line 6.
    static func yaml(_ compression: String, direct: Bool = false) -> String {
        """
        listeners:
          - name: web
            address: 127.0.0.1:8080
            routes:
              - \(direct ? "direct_response: { status: 200, body: hi }" : "cluster: api")
                compression: \(compression)
        clusters:
          - name: api
            endpoints: ["127.0.0.1:9000"]
        """
    }

    func testFullConfig() throws {
        let c = try ConfigLoader.parse(yaml: Self.yaml(
            "{ algorithms: [gzip, br], level: { gzip: 1, br: 11, zstd: 19 }, min_size: 2KiB, content_types: [text/*, Application/JSON] }"), file: "edge.yaml")
        let z = try XCTUnwrap(c.listeners[0].routes[0].compression)
        XCTAssertEqual(z.algorithms, [.gzip, .br])
        XCTAssertEqual(z.gzipLevel, 1)
        XCTAssertEqual(z.brotliLevel, 11)
        XCTAssertEqual(z.zstdLevel, 19)
        XCTAssertEqual(z.minSize, 2048)
        XCTAssertEqual(z.contentTypes, ["text/*", "application/json"])

        let arena = ByteArena()  // owns the compiled type list; kept alive to the end
        defer { withExtendedLifetime(arena) {} }
        let compiled = CompiledCompression(z, arena: arena)
        XCTAssertTrue(compiled.enabled)
        XCTAssertEqual(compiled.algorithm(at: 0), .gzip)
        XCTAssertEqual(compiled.algorithm(at: 1), .br)
        XCTAssertEqual(compiled.algorithm(at: 2), .none)
        XCTAssertEqual(compiled.level(.br), 11)
        func matches(_ s: String) -> Bool { Array(s.utf8).withUnsafeBytes { compiled.matchesType($0) } }
        XCTAssertTrue(matches("text/html; charset=utf-8"))
        XCTAssertTrue(matches("TEXT/plain"))
        XCTAssertTrue(matches("application/json"))
        XCTAssertTrue(matches("application/json;charset=utf-8"))
        XCTAssertFalse(matches("application/jsonx"))
        XCTAssertFalse(matches("text/"))
        XCTAssertFalse(matches("image/png"))
        XCTAssertFalse(matches(""))
    }

    func testDefaults() throws {
        let c = try ConfigLoader.parse(yaml: Self.yaml("{}"), file: "edge.yaml")
        let z = try XCTUnwrap(c.listeners[0].routes[0].compression)
        XCTAssertEqual(z, CompressionConfig())
        XCTAssertEqual(z.algorithms, [.br, .zstd, .gzip])
        XCTAssertEqual(z.minSize, 1024)
        XCTAssertTrue(z.contentTypes.contains("image/svg+xml"))
        let none = try ConfigLoader.parse(yaml: Self.yaml("{}").replacingOccurrences(of: "        compression: {}\n", with: ""), file: "edge.yaml")
        XCTAssertNil(none.listeners[0].routes[0].compression)
    }

    /// Accept-Encoding parsing against a br, zstd, gzip route.
    func testNegotiation() {
        let compiled = CompiledCompression(CompressionConfig(), arena: ByteArena())
        func pick(_ values: [String]) -> CompressionAlgorithm {
            var w = AcceptEncoding.Weights()
            for v in values { Array(v.utf8).withUnsafeBytes { AcceptEncoding.parse($0, into: &w) } }
            return AcceptEncoding.choose(w, compiled)
        }
        XCTAssertEqual(pick(["gzip"]), .gzip)
        XCTAssertEqual(pick(["gzip", "br"]), .br, "repeated fields add up")
        XCTAssertEqual(pick(["br;q=0.4, zstd;q=0.6"]), .zstd)
        XCTAssertEqual(pick(["br;q=0, *"]), .zstd)
        XCTAssertEqual(pick(["*;q=0"]), .none)
        XCTAssertEqual(pick(["gzip;q=1.5"]), .gzip, "q above 1 is capped")
        XCTAssertEqual(pick(["gzip;Q=0.5"]), .gzip)
        XCTAssertEqual(pick(["gzip;q="]), .none)
        XCTAssertEqual(pick([",,, ;;"]), .none)
        XCTAssertEqual(pick([]), .none)
    }

    static let errorCases: [(String, String)] = [
        ("{ bogus: 1 }", "edge.yaml:6: listeners[0].routes[0].compression.bogus: unknown field 'bogus', expected one of: algorithms, level, min_size, content_types"),
        ("{ algorithms: [] }", "edge.yaml:6: listeners[0].routes[0].compression.algorithms: give at least one of: br, zstd, gzip (or remove compression)"),
        ("{ algorithms: [deflate] }", "edge.yaml:6: listeners[0].routes[0].compression.algorithms[0]: unknown compression algorithm 'deflate', expected one of: br, zstd, gzip"),
        ("{ algorithms: [gzip, gzip] }", "edge.yaml:6: listeners[0].routes[0].compression.algorithms[1]: 'gzip' is listed twice"),
        ("{ algorithms: gzip }", "edge.yaml:6: listeners[0].routes[0].compression.algorithms: expected a list, got a scalar ('gzip')"),
        ("{ level: { gzip: 0 } }", "edge.yaml:6: listeners[0].routes[0].compression.level.gzip: must be between 1 and 9, got 0"),
        ("{ level: { br: 12 } }", "edge.yaml:6: listeners[0].routes[0].compression.level.br: must be between 0 and 11, got 12"),
        ("{ level: { zstd: 22 } }", "edge.yaml:6: listeners[0].routes[0].compression.level.zstd: must be between 1 and 19, got 22"),
        ("{ level: { lz4: 1 } }", "edge.yaml:6: listeners[0].routes[0].compression.level.lz4: unknown field 'lz4', expected one of: gzip, br, zstd"),
        ("{ min_size: lots }", "edge.yaml:6: listeners[0].routes[0].compression.min_size: expected a size like 64KiB (units: B, KiB, MiB, GiB; a bare number is bytes), got 'lots'"),
        ("{ min_size: 2GiB }", "edge.yaml:6: listeners[0].routes[0].compression.min_size: must be between 0B and 1GiB, got '2GiB'"),
        ("{ content_types: [] }", "edge.yaml:6: listeners[0].routes[0].compression.content_types: give at least one media type like text/* or application/json"),
        ("{ content_types: [text] }", "edge.yaml:6: listeners[0].routes[0].compression.content_types[0]: 'text' is not a media type like text/html or text/* (no parameters)"),
        ("{ content_types: [\"*/*\"] }", "edge.yaml:6: listeners[0].routes[0].compression.content_types[0]: '*/*' is not a media type like text/html or text/* (no parameters)"),
        ("{ content_types: [\"text/html; charset=utf-8\"] }", "edge.yaml:6: listeners[0].routes[0].compression.content_types[0]: 'text/html; charset=utf-8' is not a media type like text/html or text/* (no parameters)"),
        ("{ content_types: [text/html, TEXT/HTML] }", "edge.yaml:6: listeners[0].routes[0].compression.content_types[1]: 'text/html' is listed twice"),
        ("yes", "edge.yaml:6: listeners[0].routes[0].compression: expected a mapping with fields: algorithms, level, min_size, content_types"),
    ]

    func testErrors() {
        for (value, expected) in Self.errorCases {
            do {
                _ = try ConfigLoader.parse(yaml: Self.yaml(value), file: "edge.yaml")
                XCTFail("\(value): expected an error, config was accepted")
            } catch {
                XCTAssertEqual(error.description, expected, value)
            }
        }
        do {
            _ = try ConfigLoader.parse(yaml: Self.yaml("{}", direct: true), file: "edge.yaml")
            XCTFail("compression on a direct_response route was accepted")
        } catch {
            XCTAssertEqual(error.description, "edge.yaml:6: listeners[0].routes[0].compression: a direct_response route has no upstream response to compress")
        }
    }
}
