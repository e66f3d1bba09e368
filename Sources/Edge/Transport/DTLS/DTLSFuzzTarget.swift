import COpenSSL
import Glibc

/// The DTLS ClientHello path without a reactor, for the `dtls` fuzz target
/// (Fuzz/Sources/FuzzDTLS via EdgeTestSupport). It drives the same pieces the
/// reactor does (`DTLSTables` listen SSL and promotion, `DatagramBIO`,
/// `DTLSCookie`, a `protocol: dtls` context from `TLSServerContext.build`)
/// with datagrams cut from the input. Replies go to fd -1 (sendto fails with
/// EBADF: nothing leaves the process). Never part of the hot path.
package enum DTLSFuzzTarget {
    /// A DTLS context over a throwaway ECDSA certificate, made on first use.
    nonisolated(unsafe) static var server: TLSServerContext? = {
        let dir = "/tmp/edge-fuzz-dtls-\(getpid())"
        mkdir(dir, 0o700)
        guard let cert = try? CertificateFactory.issue(kind: .ecdsaP256, role: .server, commonName: "localhost",
                                                       sans: ["DNS:localhost"], days: 2, issuer: nil),
              (try? CertificateFactory.write(cert, certPath: "\(dir)/c.pem", keyPath: "\(dir)/c.key")) != nil else { return nil }
        var t = TLSListenerConfig()
        t.certificates = [.init(cert: "\(dir)/c.pem", key: "\(dir)/c.key", serverNames: [])]
        t.minVersion = 0xFEFD
        guard let s = try? TLSServerContext.build(t, datagram: true) else { return nil }
        DTLSContextSetup.configure(s)
        return s
    }()

    /// Input: byte 0 picks the path (bit 0: listen path as the reactor runs it,
    /// else a server SSL without cookie exchange; bit 1: an IPv6 peer); then
    /// datagrams, each a 2-byte big-endian length and its bytes (at most 16).
    /// Returns a broken invariant, nil when all hold.
    package static func run(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard let server, bytes.count >= 1 else { return nil }
        let mode = bytes[0]
        let d = DTLSTables(capacity: 2)
        defer { d.dropListener(0); d.release(1, notify: true); d.free() }
        var peer = sockaddr_storage()
        if mode & 2 != 0 {
            withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                $0.pointee.sin6_family = sa_family_t(AF_INET6); $0.pointee.sin6_port = 0x3412; $0.pointee.sin6_addr.__in6_u.__u6_addr8.15 = 1 } }
        } else {
            withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                $0.pointee.sin_family = sa_family_t(AF_INET); $0.pointee.sin_port = 0x3412; $0.pointee.sin_addr.s_addr = 0x0100007F } }
        }
        let length = socklen_t(mode & 2 != 0 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let serverPointer = Unmanaged.passUnretained(server).toOpaque()
        let listenMode = mode & 1 != 0
        if !listenMode {
            // Straight into a server SSL: the handshake state machine past the cookie.
            guard let first = server.contexts.first, let ssl = SSL_new(first) else { return nil }
            guard let bio = DatagramBIO.make(d.peers + 1) else { SSL_free(ssl); return nil }
            SSL_set_bio(ssl, bio, bio)
            SSL_set_accept_state(ssl)
            _ = SSL_clear_options(ssl, DTLSContextSetup.cookieExchange)
            d.ssl[1] = ssl
            d.servers[1] = Unmanaged.passRetained(server).toOpaque()
            d.peers[1].fd = -1
            d.peers[1].address = peer
            d.peers[1].length = length
        }
        var offset = 1
        var count = 0
        while offset + 2 <= bytes.count && count < 16 {
            let n = min(Int(bytes[offset]) << 8 | Int(bytes[offset + 1]), bytes.count - offset - 2)
            offset += 2
            // An exact-size copy so AddressSanitizer sees every out-of-bounds read.
            let datagram = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 1)
            defer { datagram.deallocate() }
            if n > 0, let base = bytes.baseAddress { datagram.copyMemory(from: base + offset, byteCount: n) }
            offset += n
            count += 1
            if let why = feed(d, serverPointer, UnsafeRawPointer(datagram), n, peer, length) { return why }
        }
        return nil
    }

    private static func feed(_ d: DTLSTables, _ server: UnsafeMutableRawPointer, _ datagram: UnsafeRawPointer, _ n: Int,
                             _ peer: sockaddr_storage, _ length: socklen_t) -> String? {
        if let ssl = d.ssl[1] {
            d.peers[1].input = datagram
            d.peers[1].inputLength = n
            ERR_clear_error()
            if d.established[1] {
                _ = SSL_read(ssl, d.plaintext, Int32(DTLSTables.plaintextSize))
            } else if SSL_do_handshake(ssl) == 1 {
                d.established[1] = true
            }
            ERR_clear_error()
            d.peers[1].input = nil
            return nil
        }
        guard DTLSTables.mayStartHandshake(datagram, n), let listen = d.listener(0, server) else { return nil }
        let p = d.listenPeers
        p.pointee.fd = -1
        p.pointee.address = peer
        p.pointee.length = length
        p.pointee.input = datagram
        p.pointee.inputLength = n
        let writesBefore = p.pointee.sent + p.pointee.sendErrors
        ERR_clear_error()
        let r = DTLSv1_listen(listen, d.clientAddress)
        ERR_clear_error()
        let writes = p.pointee.sent + p.pointee.sendErrors - writesBefore
        if r != 1 {
            p.pointee.input = nil
            if r < 0 { d.dropListener(0) }
            // Stateless: at most one HelloVerifyRequest per datagram, never a session.
            if writes > 1 { return "DTLSv1_listen wrote \(writes) datagrams for one ClientHello" }
            if d.ssl[1] != nil { return "a session exists before a valid cookie" }
            return nil
        }
        // Only a ClientHello carrying this address's cookie gets here.
        if writes != 0 { return "DTLSv1_listen accepted a ClientHello and also answered it" }
        d.promote(0, to: 1)
        d.peers[1].fd = -1
        ERR_clear_error()
        if SSL_do_handshake(d.ssl[1]) == 1 { d.established[1] = true }
        ERR_clear_error()
        d.peers[1].input = nil
        return nil
    }
}
