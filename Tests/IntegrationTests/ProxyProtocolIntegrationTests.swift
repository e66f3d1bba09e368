// PROXY protocol through the real edge binary: `proxy_protocol: accept` on
// HTTP and TCP listeners (v1, v2, missing, garbage, timeout) and
// `proxy_protocol: v1|v2` on clusters, checked by l4tools.py pp-recorder, which
// parses the header the upstream receives.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// PROXY protocol header builders (IPv4, TCP).
enum PPHeader {
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    static func ipv4(_ s: String) -> [UInt8] { s.split(separator: ".").map { UInt8($0)! } }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    /// v2, command PROXY, AF_INET/STREAM (0x11), 12 address bytes.
    static func v2(src: String, srcPort: UInt16, dst: String, dstPort: UInt16) -> [UInt8] {
        v2Signature + [0x21, 0x11] + be16(12) + ipv4(src) + ipv4(dst) + be16(srcPort) + be16(dstPort)
    }

    static func v1(src: String, srcPort: UInt16, dst: String, dstPort: UInt16) -> [UInt8] {
        Array("PROXY TCP4 \(src) \(dst) \(srcPort) \(dstPort)\r\n".utf8)
    }
}

final class ProxyProtocolIntegrationTests: L4TestCase {

    private func echoRequest(_ port: UInt16) -> [UInt8] {
        Array("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
    }

    /// HTTP listener with `proxy_protocol: accept` in front of upstream.py.
    private func startAcceptHTTP(timeout: String = "5s") throws -> UInt16 {
        let up = try w.port(), lp = try w.port()
        try w.startUpstreamPy(port: up)
        try w.startEdge(w.head + """
            listeners:
              - name: web
                address: "127.0.0.1:\(lp)"
                protocol: http
                proxy_protocol: accept
                proxy_protocol_timeout: \(timeout)
                routes:
                  - match: { path_prefix: "/" }
                    cluster: up
            clusters:

            """ + cluster("up", [up]))
        return lp
    }

    // MARK: 6. accept on an HTTP listener

    func testAcceptV2HeaderSetsClientAddress() throws {
        let lp = try startAcceptHTTP()
        let c = try RawClient(port: lp, timeout: 5)
        defer { c.close() }
        try c.send(PPHeader.v2(src: "203.0.113.7", srcPort: 4444, dst: "127.0.0.1", dstPort: lp) + echoRequest(lp))
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, r.summary)
        let e = try EchoedRequest(r)
        let xff = e.combined("X-Forwarded-For") ?? ""
        XCTAssertTrue(xff.contains("203.0.113.7"), "X-Forwarded-For must carry the PROXY v2 source; got \(xff.debugDescription)")
        XCTAssertFalse(xff.contains("127.0.0.1"), "the TCP peer must be replaced by the header's source; got \(xff.debugDescription)")
        XCTAssertEqual(e.path, "/echo", "the header bytes must not leak into the request")
    }

    func testAcceptV1HeaderSetsClientAddress() throws {
        let lp = try startAcceptHTTP()
        let c = try RawClient(port: lp, timeout: 5)
        defer { c.close() }
        try c.send(PPHeader.v1(src: "203.0.113.7", srcPort: 4444, dst: "127.0.0.1", dstPort: lp) + echoRequest(lp))
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200, r.summary)
        let xff = try EchoedRequest(r).combined("X-Forwarded-For") ?? ""
        XCTAssertTrue(xff.contains("203.0.113.7"), "X-Forwarded-For must carry the PROXY v1 source; got \(xff.debugDescription)")
        XCTAssertFalse(xff.contains("127.0.0.1"), "got \(xff.debugDescription)")

        // Header and request in separate segments (header split mid-way) also work.
        let c2 = try RawClient(port: lp, timeout: 5)
        defer { c2.close() }
        let hdr = PPHeader.v1(src: "203.0.113.8", srcPort: 4445, dst: "127.0.0.1", dstPort: lp)
        try c2.send(Array(hdr[0..<9]))
        OS.sleepMs(100)
        try c2.send(Array(hdr[9...]))
        OS.sleepMs(100)
        try c2.send(echoRequest(lp))
        let r2 = try c2.readResponse()
        XCTAssertEqual(r2.status, 200, r2.summary)
        XCTAssertTrue((try EchoedRequest(r2).combined("X-Forwarded-For") ?? "").contains("203.0.113.8"))
    }

    func testAcceptWithoutHeaderOrGarbageIsClosedWithoutResponse() throws {
        let lp = try startAcceptHTTP()
        let cases: [(String, [UInt8])] = [
            ("no header", echoRequest(lp)),
            ("garbage", Array("PROXY GARBAGE here\r\n".utf8) + echoRequest(lp)),
            ("bad v2 version", PPHeader.v2Signature + [0x31, 0x11, 0x00, 12] + [UInt8](repeating: 1, count: 12) + echoRequest(lp)),
            ("binary junk", [0x16, 0x03, 0x01, 0x00, 0xff] + [UInt8](repeating: 0xAB, count: 200)),
        ]
        for (what, bytes) in cases {
            let c = try RawClient(port: lp, timeout: 5)
            defer { c.close() }
            try? c.send(bytes)
            let t0 = OS.now()
            let (got, closed) = c.readToClose(timeout: 3)
            XCTAssertTrue(closed, "\(what): connection must be closed (waited \(OS.now() - t0)s)")
            let text = String(decoding: got, as: UTF8.self)
            XCTAssertFalse(text.hasPrefix("HTTP/"), "\(what): no HTTP response expected, got \(text.prefix(200).debugDescription)")
        }
        // Still serving properly-headed clients.
        let ok = try RawClient(port: lp, timeout: 5)
        defer { ok.close() }
        try ok.send(PPHeader.v2(src: "203.0.113.7", srcPort: 1, dst: "127.0.0.1", dstPort: lp) + echoRequest(lp))
        XCTAssertEqual(try ok.readResponse().status, 200)
        try w.checkEdgeAlive()
    }

    func testAcceptHeaderTimeout() throws {
        let lp = try startAcceptHTTP(timeout: "1s")
        let c = try RawClient(port: lp, timeout: 5)
        defer { c.close() }
        let t0 = OS.now()
        let closed = c.waitForClose(timeout: 5)
        let dt = OS.now() - t0
        XCTAssertTrue(closed, "a silent client must be closed after proxy_protocol_timeout (1s)")
        XCTAssertGreaterThanOrEqual(dt, 0.8, "closed after \(dt)s, before the 1s timeout")
        XCTAssertLessThanOrEqual(dt, 3.5, "closed after \(dt)s")
    }

    // accept on a TCP listener: the header is consumed, the rest relayed.
    func testAcceptOnTCPListenerStripsHeader() throws {
        let rp = try w.port(), lp = try w.port()
        try w.startRedis(port: rp)
        try w.startEdge(w.head + "listeners:\n"
                        + tcpListener("redis", port: lp, cluster: "redis",
                                      extra: ["proxy_protocol: accept", "proxy_protocol_timeout: 2s"])
                        + "clusters:\n" + cluster("redis", [rp]))
        for hdr in [PPHeader.v2(src: "203.0.113.7", srcPort: 4444, dst: "127.0.0.1", dstPort: lp),
                    PPHeader.v1(src: "203.0.113.7", srcPort: 4444, dst: "127.0.0.1", dstPort: lp)] {
            let c = try RawClient(port: lp, timeout: 5)
            defer { c.close() }
            try c.send(hdr + Array("PING\r\n".utf8))  // header and payload in one segment
            let got: [UInt8]
            do { got = try c.read(atLeast: 7) } catch {
                throw HarnessError("no reply within 5s to PING sent in the same segment as a PROXY v\(hdr.first == 0x0D ? 2 : 1) header: bytes after the header were not relayed (\(error))")
            }
            XCTAssertEqual(String(decoding: got, as: UTF8.self), "+PONG\r\n",
                           "redis must see PING without the PROXY v\(hdr.first == 0x0D ? 2 : 1) header")
        }
        let bare = try RawClient(port: lp, timeout: 5)
        defer { bare.close() }
        try bare.send("PING\r\n")
        let (got, closed) = bare.readToClose(timeout: 4)
        XCTAssertTrue(closed, "no header → closed")
        XCTAssertFalse(String(decoding: got, as: UTF8.self).contains("PONG"), "a headerless connection must not be relayed")
    }

    // MARK: 7. sending PROXY headers to upstreams

    /// Accept listener (client supplies a header) + plain listener, both routed
    /// to the pp-recorder cluster that has `proxy_protocol: <version>`.
    private func startSending(_ version: String, keepalive: Bool = false) throws -> (accept: UInt16, plain: UInt16, rec: ManagedProcess) {
        let up = try w.port(), la = try w.port(), lpn = try w.port()
        let rec = try w.startTool("pp-recorder", port: up, keepalive ? ["--keepalive"] : [])
        try w.startEdge(w.head + """
            listeners:
              - name: front
                address: "127.0.0.1:\(la)"
                protocol: http
                proxy_protocol: accept
                routes:
                  - match: { path_prefix: "/" }
                    cluster: rec
              - name: plain
                address: "127.0.0.1:\(lpn)"
                protocol: http
                routes:
                  - match: { path_prefix: "/" }
                    cluster: rec
            clusters:

            """ + cluster("rec", [up], extra: ["proxy_protocol: \(version)"]))
        return (la, lpn, rec)
    }

    private func recorded(_ r: HTTPResponse) throws -> [String: Any] {
        guard r.status == 200 else { throw HarnessError("recorder answer: \(r.summary)") }
        return try r.json()
    }

    private func checkSending(version: Int) throws {
        let (la, lpn, _) = try startSending("v\(version)")
        // Client came through the accept listener with source 198.51.100.9:5555.
        let c = try RawClient(port: la, timeout: 5)
        defer { c.close() }
        try c.send(PPHeader.v2(src: "198.51.100.9", srcPort: 5555, dst: "127.0.0.1", dstPort: la)
                   + Array("GET /pp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        let j = try recorded(try c.readResponse())
        print("recorder saw (via accept listener): \(j)")
        XCTAssertEqual(j["version"] as? Int, version, "upstream must receive a PROXY v\(version) header: \(j)")
        XCTAssertEqual(j["command"] as? String, "PROXY", "\(j)")
        XCTAssertEqual(j["source"] as? String, "198.51.100.9:5555", "source must be the client's PROXY source: \(j)")
        XCTAssertTrue((j["dest"] as? String ?? "").hasPrefix("127.0.0.1:"), "dest: \(j)")
        XCTAssertEqual(j["request_line"] as? String, "GET /pp HTTP/1.1", "request after the header: \(j)")

        // Plain listener: the source is the real TCP peer (our socket).
        let p = try RawClient(port: lpn, timeout: 5)
        defer { p.close() }
        try p.send("GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let pj = try recorded(try p.readResponse())
        print("recorder saw (via plain listener, client port \(p.localPort)): \(pj)")
        XCTAssertEqual(pj["version"] as? Int, version, "\(pj)")
        XCTAssertEqual(pj["source"] as? String, "127.0.0.1:\(p.localPort)", "source must be the client socket: \(pj)")
        XCTAssertEqual(pj["dest"] as? String, "127.0.0.1:\(lpn)", "dest must be the listener address: \(pj)")
    }

    func testClusterSendsProxyV2WithOriginalSource() throws { try checkSending(version: 2) }

    func testClusterSendsProxyV1WithOriginalSource() throws { try checkSending(version: 1) }

    /// With PROXY headers on, upstream connections must not be shared between
    /// clients: each request must arrive with its own client's source.
    func testProxyHeaderUpstreamConnectionsAreNotReused() throws {
        let (la, _, rec) = try startSending("v2", keepalive: true)
        var conns = Set<Int>()
        for i in 0..<4 {
            let port = UInt16(6000 + i)
            let c = try RawClient(port: la, timeout: 5)
            defer { c.close() }
            try c.send(PPHeader.v2(src: "198.51.100.\(10 + i)", srcPort: port, dst: "127.0.0.1", dstPort: la))
            for k in 0..<2 {
                let j = try recorded(try HTTP.request(c, "/r\(k)", port: la))
                XCTAssertEqual(j["source"] as? String, "198.51.100.\(10 + i):\(port)",
                               "client \(i) request \(k) arrived on an upstream connection announced for another client: \(j)")
                if let id = j["conn"] as? Int { conns.insert(id) }
            }
        }
        XCTAssertGreaterThanOrEqual(conns.count, 4, "4 clients need ≥ 4 upstream connections; recorder saw \(conns.sorted())\n\(rec.stdoutText().suffix(1500))")
    }

    // TCP listener: accept v2 from the client, send v1 upstream, then relay.
    func testTCPListenerForwardsSourceAsV1() throws {
        let up = try w.port(), lp = try w.port()
        try w.startTool("pp-recorder", port: up)
        try w.startEdge(w.head + "listeners:\n"
                        + tcpListener("t", port: lp, cluster: "rec", extra: ["proxy_protocol: accept"])
                        + "clusters:\n" + cluster("rec", [up], extra: ["proxy_protocol: v1"]))
        let c = try RawClient(port: lp, timeout: 5)
        defer { c.close() }
        try c.send(PPHeader.v2(src: "198.51.100.9", srcPort: 5555, dst: "127.0.0.1", dstPort: lp)
                   + Array("GET /tcp HTTP/1.1\r\nHost: x\r\n\r\n".utf8))  // one segment
        let j: [String: Any]
        do { j = try recorded(try c.readResponse()) } catch {
            throw HarnessError("no answer within 5s to a request sent in the same segment as the client's PROXY v2 header: bytes after the header were not relayed (\(error))")
        }
        print("recorder saw (tcp listener): \(j)")
        XCTAssertEqual(j["version"] as? Int, 1, "\(j)")
        XCTAssertEqual(j["source"] as? String, "198.51.100.9:5555", "\(j)")
        XCTAssertEqual(j["request_line"] as? String, "GET /tcp HTTP/1.1", "\(j)")
    }
}
