import XCTest
import Glibc
@testable import Edge

/// The sockaddr_storage helpers (Reactor/SocketAddress.swift).
final class SocketAddressTests: XCTestCase {
    private func ipText(_ s: sockaddr_storage, capacity: Int = 48) -> (String, Int) {
        withUnsafeTemporaryAllocation(byteCount: capacity, alignment: 1) { buf in
            let n = s.writeIPText(into: buf)
            return (String(decoding: UnsafeRawBufferPointer(rebasing: buf[0..<n]), as: UTF8.self), n)
        }
    }

    func testLayoutMatchesTheCStructs() {
        XCTAssertEqual(MemoryLayout<sockaddr_in>.offset(of: \sockaddr_in.sin_port), 2)
        XCTAssertEqual(MemoryLayout<sockaddr_in>.offset(of: \sockaddr_in.sin_addr), 4)
        XCTAssertEqual(MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_port), 2)
        XCTAssertEqual(MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_addr), 8)
    }

    func testIPv4() throws {
        let s = try XCTUnwrap(sockaddr_storage(parsing: "192.0.2.33", family: AF_INET, port: 8080))
        XCTAssertEqual(s.family, AF_INET)
        XCTAssertEqual(s.port, 8080)
        XCTAssertEqual(s.socketLength, socklen_t(MemoryLayout<sockaddr_in>.size))
        var copy = s
        let sin = withUnsafeBytes(of: &copy) { $0.load(as: sockaddr_in.self) }
        XCTAssertEqual(sin.sin_port, UInt16(8080).bigEndian)
        XCTAssertEqual(sin.sin_addr.s_addr, UInt32(0xC000_0221).bigEndian)
        XCTAssertEqual(s.addressKey.0, 0)
        XCTAssertEqual(s.addressKey.1, UInt64(sin.sin_addr.s_addr))
        XCTAssertEqual(ipText(s).0, "192.0.2.33")
        XCTAssertEqual(ipText(s).1, 10)
        withUnsafeBytes(of: &copy) { raw in
            let a = sockaddr_storage.ipAddress(in: raw)
            XCTAssertEqual(a.map { Array($0.address) }, [192, 0, 2, 33])
            XCTAssertEqual(a?.port, 8080)
        }
        XCTAssertNil(sockaddr_storage(parsing: "192.0.2.256", family: AF_INET, port: 1))
        XCTAssertNil(sockaddr_storage(parsing: "::1", family: AF_INET, port: 1))
    }

    func testIPv6() throws {
        let s = try XCTUnwrap(sockaddr_storage(parsing: "2001:db8::1:2", family: AF_INET6, port: 443))
        XCTAssertEqual(s.family, AF_INET6)
        XCTAssertEqual(s.port, 443)
        XCTAssertEqual(s.socketLength, socklen_t(MemoryLayout<sockaddr_in6>.size))
        XCTAssertEqual(ipText(s).0, "2001:db8::1:2")
        var copy = s
        let bytes: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]
        withUnsafeBytes(of: &copy) { raw in
            XCTAssertEqual(sockaddr_storage.ipAddress(in: raw).map { Array($0.address) }, bytes)
        }
        let words = bytes.withUnsafeBytes { ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
        XCTAssertEqual(s.addressKey.0, words.0)
        XCTAssertEqual(s.addressKey.1, words.1)
        XCTAssertNil(sockaddr_storage(parsing: "[::1]", family: AF_INET6, port: 1))
        // The text and its NUL must fit, else nothing is written.
        let long = try XCTUnwrap(sockaddr_storage(parsing: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", family: AF_INET6, port: 1))
        XCTAssertEqual(ipText(long, capacity: 40).1, 39)
        XCTAssertEqual(ipText(long, capacity: 39).1, 0)
    }

    func testV4MappedIPv6() throws {
        // A dual-stack ([::]) listener sees IPv4 clients as ::ffff:a.b.c.d; they stay IPv6 here.
        let s = try XCTUnwrap(sockaddr_storage(parsing: "::ffff:192.0.2.1", family: AF_INET6, port: 5))
        XCTAssertEqual(s.family, AF_INET6)
        XCTAssertEqual(ipText(s).0, "::ffff:192.0.2.1")
        XCTAssertEqual(s.addressKey.0, 0)
        var low: UInt64 = 0
        withUnsafeMutableBytes(of: &low) { $0.copyBytes(from: [0, 0, 0xff, 0xff, 192, 0, 2, 1] as [UInt8]) }
        XCTAssertEqual(s.addressKey.1, low)
    }

    func testOtherFamilies() {
        var unspec = sockaddr_storage()
        unspec.port = 9000  // an unresolved endpoint keeps its port
        XCTAssertEqual(unspec.family, AF_UNSPEC)
        XCTAssertEqual(unspec.port, 9000)
        XCTAssertEqual(unspec.socketLength, 0)
        XCTAssertEqual(ipText(unspec).1, 0)
        XCTAssertEqual(unspec.addressKey.0, 0)
        XCTAssertEqual(unspec.addressKey.1, 0)
        var unix = sockaddr_storage()
        unix.ss_family = sa_family_t(AF_UNIX)
        XCTAssertEqual(unix.port, 0)
        withUnsafeBytes(of: &unix) { XCTAssertNil(sockaddr_storage.ipAddress(in: $0)) }
        XCTAssertNil(sockaddr_storage(parsing: "192.0.2.1", family: AF_UNIX, port: 1))
    }

    func testConfigAddressFormatting() throws {
        XCTAssertEqual(try ConfigValues.socketAddress("[2001:db8::1]:80").canonicalKey, "[2001:db8::1]:80")
        XCTAssertEqual(SocketAddress.format(sockaddr_storage()), "?")
    }
}
