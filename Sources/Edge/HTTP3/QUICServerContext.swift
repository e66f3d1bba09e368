import CNGTCP2
import Glibc

struct QUICSetupError: Error, CustomStringConvertible {
    var description: String
}

/// GnuTLS server credentials for one http3 listener, built on the control
/// thread from the same PEM files as its TLS listener (GnuTLS picks the key
/// pair by SNI among several), plus the TLS 1.3-only priority string QUIC
/// needs. Immutable once built; sessions on every worker share it.
final class QUICServerContext: @unchecked Sendable {
    let credentials: OpaquePointer
    let priority: OpaquePointer

    init(certificates: [TLSListenerConfig.Certificate]) throws(QUICSetupError) {
        var cred: OpaquePointer? = nil
        guard gnutls_certificate_allocate_credentials(&cred) == 0, let cred else {
            throw QUICSetupError(description: "http3: cannot allocate GnuTLS credentials")
        }
        for c in certificates {
            let rc = gnutls_certificate_set_x509_key_file(cred, c.cert, c.key, GNUTLS_X509_FMT_PEM)
            if rc < 0 {
                gnutls_certificate_free_credentials(cred)
                throw QUICSetupError(description: "http3: GnuTLS cannot load certificate \(c.cert) with key \(c.key): \(String(cString: gnutls_strerror(rc)))")
            }
        }
        var prio: OpaquePointer? = nil
        // QUIC is TLS 1.3 only (RFC 9001 §4.2); no middlebox compatibility mode.
        let rc = gnutls_priority_init(&prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE", nil)
        guard rc == 0, let prio else {
            gnutls_certificate_free_credentials(cred)
            throw QUICSetupError(description: "http3: GnuTLS priority string refused: \(String(cString: gnutls_strerror(rc)))")
        }
        credentials = cred
        priority = prio
    }

    deinit {
        gnutls_certificate_free_credentials(credentials)
        gnutls_priority_deinit(priority)
    }

    func retainedPointer() -> UnsafeMutableRawPointer { Unmanaged.passRetained(self).toOpaque() }

    static func release(_ p: UnsafeMutableRawPointer?) {
        guard let p else { return }
        Unmanaged<QUICServerContext>.fromOpaque(p).release()
    }

    @inline(__always) static func borrow(_ p: UnsafeMutableRawPointer) -> QUICServerContext {
        Unmanaged<QUICServerContext>.fromOpaque(p).takeUnretainedValue()
    }
}

/// Process-wide secrets for Retry tokens and stateless reset tokens: random
/// at start, the same on every worker (a Retry issued by one worker verifies
/// on another) and across reloads.
enum QUICSecrets {
    static let length = 32
    nonisolated(unsafe) static let token: UnsafeMutablePointer<UInt8> = make()
    nonisolated(unsafe) static let reset: UnsafeMutablePointer<UInt8> = make()

    private static func make() -> UnsafeMutablePointer<UInt8> {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: length)
        if edge_gnutls_key_random(p, length) != 0 {
            // GnuTLS's RNG failed: fall back to the system generator.
            var g = SystemRandomNumberGenerator()
            for k in 0..<length { p[k] = UInt8.random(in: 0...255, using: &g) }
        }
        return p
    }
}
