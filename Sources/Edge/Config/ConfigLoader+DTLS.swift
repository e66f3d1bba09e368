/// `tls` on `protocol: dtls` listeners: the HTTPS block (certificates,
/// client_auth, session_tickets, handshake_timeout, max_handshakes) with the
/// fields DTLS cannot honour refused by name.
extension ConfigLoader {
    static func checkDTLSFields(_ m: ConfigMapping, into t: inout TLSListenerConfig) throws(ConfigError) {
        // OpenSSL 3.0 speaks DTLS 1.2 only.
        t.minVersion = 0xFEFD
        if let n = m.optional("min_version") {
            guard try n.oneOf(["1.2", "1.3"], what: "TLS version") == "1.2" else {
                throw n.error("dtls listeners support min_version 1.2 only (OpenSSL 3.0 has no DTLS 1.3)")
            }
        }
        if let n = m.optional("alpn") { throw n.error("alpn does not apply to dtls listeners (they relay datagrams, not HTTP)") }
    }
}
