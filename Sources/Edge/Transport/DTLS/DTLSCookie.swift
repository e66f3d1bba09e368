import COpenSSL
import Glibc

/// Stateless DTLS cookies (RFC 6347 §4.2.1): HMAC-SHA256 over the client's
/// address and port under a per-process random secret. `DTLSv1_listen` answers a
/// ClientHello without a valid cookie with a HelloVerifyRequest carrying one,
/// so a spoofed source address never gets a session, and nothing is kept for
/// the client until it echoes the cookie from its real address.
enum DTLSCookie {
    static let length = 32

    /// Drawn once per process; every worker and every reload shares it (a
    /// cookie issued before a reload still verifies after it).
    nonisolated(unsafe) static let secret: [UInt8] = {
        var key = [UInt8](repeating: 0, count: 32)
        if RAND_bytes(&key, 32) != 1 {
            for k in 0..<key.count { key[k] = UInt8.random(in: 0...255) }
        }
        return key
    }()

    /// The cookie of the peer behind `ssl`'s BIO into `out` (at least `length` bytes); false if unknown.
    static func compute(_ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UInt8>) -> Bool {
        guard let ssl, let p = DatagramBIO.peer(SSL_get_rbio(ssl)) else { return false }
        // Family, port and address only: sockaddr padding must not change the cookie.
        var material = [UInt8](repeating: 0, count: 20)
        var n = 0
        withUnsafePointer(to: &p.pointee.address) { raw in
            let family = Int32(raw.pointee.ss_family)
            if family == AF_INET {
                raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                    material[0] = 4
                    withUnsafeBytes(of: a.pointee.sin_port) { material[1] = $0[0]; material[2] = $0[1] }
                    withUnsafeBytes(of: a.pointee.sin_addr) { for k in 0..<4 { material[3 + k] = $0[k] } }
                    n = 7
                }
            } else if family == AF_INET6 {
                raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                    material[0] = 6
                    withUnsafeBytes(of: a.pointee.sin6_port) { material[1] = $0[0]; material[2] = $0[1] }
                    withUnsafeBytes(of: a.pointee.sin6_addr) { for k in 0..<16 { material[3 + k] = $0[k] } }
                    n = 19
                }
            }
        }
        guard n > 0 else { return false }
        var outLength: UInt32 = 0
        let done = secret.withUnsafeBufferPointer { key in
            HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), material, n, out, &outLength)
        }
        return done != nil && outLength == UInt32(length)
    }

    static let generate: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt32>?) -> Int32 = { ssl, cookie, cookieLength in
        guard let cookie, let cookieLength else { return 0 }
        guard DTLSCookie.compute(ssl, cookie) else { return 0 }
        cookieLength.pointee = UInt32(DTLSCookie.length)
        return 1
    }

    /// Constant-time comparison with the cookie this address should carry.
    static let verify: @convention(c) (OpaquePointer?, UnsafePointer<UInt8>?, UInt32) -> Int32 = { ssl, cookie, cookieLength in
        guard let cookie, cookieLength == UInt32(DTLSCookie.length) else { return 0 }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { want -> Int32 in
            guard let w = want.baseAddress, DTLSCookie.compute(ssl, w) else { return 0 }
            return CRYPTO_memcmp(w, cookie, DTLSCookie.length) == 0 ? 1 : 0
        }
    }
}

/// What a `protocol: dtls` listener's contexts need beyond the HTTPS ones
/// (built by `TLSServerContext.build(_:datagram:)` on the control thread).
enum DTLSContextSetup {
    /// SSL_OP_COOKIE_EXCHANGE (a function-like macro in ssl.h).
    static let cookieExchange: UInt64 = 1 << 13

    static func configure(_ server: TLSServerContext) {
        for ctx in server.contexts {
            _ = edge_SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION)
            _ = SSL_CTX_set_options(ctx, cookieExchange)
            SSL_CTX_set_cookie_generate_cb(ctx, DTLSCookie.generate)
            SSL_CTX_set_cookie_verify_cb(ctx, DTLSCookie.verify)
        }
    }
}
