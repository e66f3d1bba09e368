import XCTest
@testable import Edge

/// SNI parsing and the host-name rules of certificates (no sockets).
final class TLSNameTests: XCTestCase {
    private func sni(_ bytes: [UInt8]) -> String? {
        var out = [UInt8](repeating: 0, count: 255)
        guard let n = bytes.withUnsafeBytes({ SNIPeek.hostName(in: $0, into: &out) }) else { return nil }
        return String(decoding: out[0..<n], as: UTF8.self)
    }

    func testServerNameExtension() {
        let name = Array("API.Example.com".utf8)
        let body: [UInt8] = [0, UInt8(name.count + 3), 0, 0, UInt8(name.count)] + name
        XCTAssertEqual(sni(body), "api.example.com")
        XCTAssertNil(sni([]))
        XCTAssertNil(sni([0, 5, 0, 0, 9, 0x61]), "name longer than the extension")
        XCTAssertNil(sni([0, 4, 1, 0, 1, 0x61]), "not a host_name entry")
        XCTAssertNil(sni([0, 40, 0, 0, 1, 0x61]), "list longer than the extension")
        XCTAssertNil(sni([0, 3, 0, 0, 0]), "empty name")
    }

    func testServerNameValidation() {
        XCTAssertTrue(TLSServerContext.isValidServerName("a.example.com"))
        XCTAssertTrue(TLSServerContext.isValidServerName("*.example.com"))
        XCTAssertFalse(TLSServerContext.isValidServerName("a b"))
        XCTAssertFalse(TLSServerContext.isValidServerName("*."))
        XCTAssertFalse(TLSServerContext.isValidServerName(""))
        XCTAssertFalse(TLSServerContext.isValidServerName("UPPER.example.com"), "names are lower-cased before the check")
    }
}
