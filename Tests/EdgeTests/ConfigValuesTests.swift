import XCTest
@testable import Edge

/// Unit syntaxes on their own: durations, sizes, integers, booleans, addresses.
final class ConfigValuesTests: XCTestCase {
    func testDurations() throws {
        let ok: [(String, Int)] = [("250ms", 250), ("0ms", 0), ("5s", 5000), ("2m", 120_000), ("1h", 3_600_000),
                                   (" 10s ", 10_000), ("596h", 596 * 3_600_000)]
        for (text, ms) in ok { XCTAssertEqual(try ConfigValues.durationMs(text), ms, text) }
        let bad: [(String, String)] = [
            ("abc", "expected a duration like 5s, got 'abc'"),
            ("", "expected a duration like 5s, got ''"),
            ("30", "duration needs a unit: ms, s, m, h (e.g. '30s'), got '30'"),
            ("5sec", "expected a duration like 5s (units: ms, s, m, h), got '5sec'"),
            ("1.5s", "expected a duration like 5s (units: ms, s, m, h), got '1.5s'"),
            ("-5s", "expected a duration like 5s, got '-5s'"),
            ("597h", "duration '597h' is too large (at most 596h)"),
            ("99999999999999999999999h", "duration '99999999999999999999999h' is too large"),
        ]
        for (text, message) in bad {
            XCTAssertThrowsError(try ConfigValues.durationMs(text), text) { XCTAssertEqual($0 as? ValueError, ValueError(message)) }
        }
    }

    func testSizes() throws {
        let ok: [(String, UInt64)] = [("512B", 512), ("512", 512), ("0", 0), ("64KiB", 65536), ("1MiB", 1 << 20), ("2GiB", 2 << 30)]
        for (text, n) in ok { XCTAssertEqual(try ConfigValues.sizeBytes(text), n, text) }
        for text in ["64KB", "1mib", "1M", "k", "1.5MiB", "-1"] {
            XCTAssertThrowsError(try ConfigValues.sizeBytes(text), text) {
                XCTAssertEqual($0 as? ValueError,
                               ValueError("expected a size like 64KiB (units: B, KiB, MiB, GiB; a bare number is bytes), got '\(text)'"))
            }
        }
        XCTAssertThrowsError(try ConfigValues.sizeBytes("99999999999GiB"))
    }

    func testIntegersAndBools() throws {
        XCTAssertEqual(try ConfigValues.integer("42"), 42)
        XCTAssertEqual(try ConfigValues.integer("-3"), -3)
        XCTAssertThrowsError(try ConfigValues.integer("0x10"))
        XCTAssertThrowsError(try ConfigValues.integer("99999999999999999999"))
        XCTAssertEqual(try ConfigValues.bool("true"), true)
        XCTAssertEqual(try ConfigValues.bool("False"), false)
        XCTAssertThrowsError(try ConfigValues.bool("yes"))
    }

    func testIPv4Address() throws {
        let a = try ConfigValues.socketAddress("192.168.1.2:8080")
        XCTAssertEqual(a.family, AF_INET)
        XCTAssertEqual(a.length, socklen_t(MemoryLayout<sockaddr_in>.size))
        XCTAssertEqual(a.port, 8080)
        XCTAssertEqual(a.text, "192.168.1.2:8080")
        var s = a.storage
        let sin = withUnsafeBytes(of: &s) { $0.load(as: sockaddr_in.self) }
        XCTAssertEqual(sin.sin_port, UInt16(8080).bigEndian)
        XCTAssertEqual(sin.sin_addr.s_addr, UInt32(0xC0A8_0102).bigEndian)
    }

    func testIPv6AndLocalhost() throws {
        let any6 = try ConfigValues.socketAddress("[::]:8080")
        XCTAssertEqual(any6.family, AF_INET6)
        XCTAssertEqual(any6.length, socklen_t(MemoryLayout<sockaddr_in6>.size))
        XCTAssertEqual(any6.port, 8080)
        XCTAssertEqual(any6.canonicalKey, "[::]:8080")
        let loop6 = try ConfigValues.socketAddress("[::1]:9000")
        XCTAssertEqual(loop6.canonicalKey, "[::1]:9000")
        let local = try ConfigValues.socketAddress("localhost:9000")
        XCTAssertEqual(local.family, AF_INET)
        XCTAssertEqual(local.text, "localhost:9000")
        XCTAssertEqual(local.canonicalKey, "127.0.0.1:9000")
        XCTAssertEqual(try ConfigValues.socketAddress("0.0.0.0:1").canonicalKey, "0.0.0.0:1")
        XCTAssertEqual(try ConfigValues.socketAddress("127.0.0.1:0", allowPortZero: true).port, 0)
    }

    func testBadAddresses() {
        let bad: [(String, String)] = [
            ("127.0.0.1", "missing port in '127.0.0.1'; expected host:port like 127.0.0.1:8080"),
            (":8080", "missing host in ':8080'; use 0.0.0.0:PORT or [::]:PORT for all interfaces"),
            ("127.0.0.1:", "port must be a number between 1 and 65535, got '' in '127.0.0.1:'"),
            ("127.0.0.1:0", "port must be a number between 1 and 65535, got '0' in '127.0.0.1:0'"),
            ("127.0.0.1:99999", "port must be a number between 1 and 65535, got '99999' in '127.0.0.1:99999'"),
            ("127.0.0.1:-1", "port must be a number between 1 and 65535, got '-1' in '127.0.0.1:-1'"),
            ("1.2.3:80", "invalid IPv4 address '1.2.3' in '1.2.3:80'"),
            ("example.com:80", "host names are not supported yet; use an IP literal (got 'example.com')"),
            ("::1:80", "IPv6 addresses need brackets, e.g. [::1]:8080, got '::1:80'"),
            ("[::1]", "missing port in '[::1]'; expected e.g. [::1]:8080"),
            ("[::1:80", "missing ']' in IPv6 address '[::1:80'; expected e.g. [::1]:8080"),
            ("[zz::1]:80", "invalid IPv6 address 'zz::1' in '[zz::1]:80'"),
            ("[127.0.0.1]:80", "invalid IPv6 address '127.0.0.1' in '[127.0.0.1]:80'"),
        ]
        for (text, message) in bad {
            XCTAssertThrowsError(try ConfigValues.socketAddress(text), text) { XCTAssertEqual($0 as? ValueError, ValueError(message), text) }
        }
    }

    func testErrorDescriptionShapes() {
        XCTAssertEqual(ConfigError(location: .init(file: "e.yaml", line: 3), field: "a.b", problem: "bad").description, "e.yaml:3: a.b: bad")
        XCTAssertEqual(ConfigError(location: .init(file: "e.yaml", line: 3), field: "", problem: "bad").description, "e.yaml:3: bad")
        XCTAssertEqual(ConfigError(location: .init(file: "e.yaml", line: 0), field: "", problem: "bad").description, "e.yaml: bad")
    }
}
