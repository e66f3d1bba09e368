import COpenSSL
import Glibc

/// Why a TLS listener could not be built, and which config field to blame.
struct TLSSetupError: Error {
    enum Field { case cert(Int), key(Int), clientCA, listener }
    var field: Field
    var message: String
}

/// One HTTPS listener's OpenSSL state, built once on the control thread from
/// config and shared read-only by every worker: one `SSL_CTX` per group of
/// certificates that serve the same names (an ECDSA and an RSA certificate
/// for one name share a group; OpenSSL picks by the client's signature
/// algorithms), the SNI table that picks a group, and the ALPN list. Each
/// connection's `SSL` holds a reference on its context, and the session state
/// retains this object, so a reload never frees what a live handshake uses.
final class TLSServerContext: @unchecked Sendable {
    /// Group contexts; [0] (the first certificate's) is the default and the one handshakes start on.
    let contexts: [OpaquePointer]
    /// SNI table: lower-cased exact names, and wildcard suffixes (".example.com").
    let exact: [(name: [UInt8], group: Int)]
    let wildcard: [(suffix: [UInt8], group: Int)]
    /// ALPN protocols in wire format (length-prefixed), owned here.
    let alpnWire: UnsafeMutableBufferPointer<UInt8>
    /// No ALPN configured (`protocol: tls` by default): the client's offer is ignored.
    let alpnEmpty: Bool
    let clientAuth: TLSListenerConfig.ClientAuthMode

    private init(contexts: [OpaquePointer], exact: [([UInt8], Int)], wildcard: [([UInt8], Int)],
                 alpn: [String], clientAuth: TLSListenerConfig.ClientAuthMode) {
        self.contexts = contexts
        self.exact = exact.map { (name: $0.0, group: $0.1) }
        self.wildcard = wildcard.map { (suffix: $0.0, group: $0.1) }
        var wire: [UInt8] = []
        for p in alpn { wire.append(UInt8(clamping: p.utf8.count)); wire.append(contentsOf: p.utf8) }
        alpnEmpty = wire.isEmpty
        alpnWire = .allocate(capacity: max(wire.count, 1))
        _ = alpnWire.initialize(from: wire)
        self.clientAuth = clientAuth
    }

    deinit {
        for c in contexts { SSL_CTX_free(c) }
        alpnWire.deallocate()
    }

    /// The group whose names match `host` (lower-cased): exact, then the
    /// longest wildcard suffix covering exactly one label, then the default.
    func group(for host: UnsafeRawBufferPointer) -> Int {
        for e in exact where e.name.count == host.count && e.name.elementsEqual(host) { return e.group }
        var best = 0, bestLength = 0
        for w in wildcard where host.count > w.suffix.count && w.suffix.count > bestLength {
            let tail = UnsafeRawBufferPointer(rebasing: host[(host.count - w.suffix.count)...])
            let label = host[0..<(host.count - w.suffix.count)]
            if tail.elementsEqual(w.suffix) && !label.contains(UInt8(ascii: ".")) { best = w.group; bestLength = w.suffix.count }
        }
        return best
    }

    static func isValidServerName(_ name: String) -> Bool {
        var n = Substring(name)
        if n.hasPrefix("*.") { n = n.dropFirst(2) }
        guard !n.isEmpty, n.count <= 253 else { return false }
        return n.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }
    }

    // MARK: Building (control thread)

    /// `datagram`: DTLS contexts for `protocol: dtls` listeners (no ALPN; Transport/DTLS/ adds cookies).
    static func build(_ t: TLSListenerConfig, datagram: Bool = false) throws(TLSSetupError) -> TLSServerContext {
        ERR_clear_error()
        // Group certificates by the names they serve, first-seen order.
        var groupKeys: [[String]] = []
        var groupOf: [Int] = []
        var namesOf: [[String]] = []
        for (i, c) in t.certificates.enumerated() {
            guard FileManagerLite.readable(c.cert) else {
                throw TLSSetupError(field: .cert(i), message: "cannot read certificate file '\(c.cert)': \(FileManagerLite.lastError())")
            }
            guard FileManagerLite.readable(c.key) else {
                throw TLSSetupError(field: .key(i), message: "cannot read key file '\(c.key)': \(FileManagerLite.lastError())")
            }
            var names = c.serverNames
            if names.isEmpty {
                guard let found = certificateNames(c.cert) else {
                    throw TLSSetupError(field: .cert(i), message: "'\(c.cert)' is not a PEM certificate (\(opensslError()))")
                }
                names = found
            }
            namesOf.append(names)
            let key = names.sorted()
            if let g = groupKeys.firstIndex(of: key) { groupOf.append(g) } else { groupKeys.append(key); groupOf.append(groupKeys.count - 1) }
        }
        var contexts: [OpaquePointer] = []
        func freeAll() { for c in contexts { SSL_CTX_free(c) } }
        for _ in groupKeys {
            guard let ctx = SSL_CTX_new(datagram ? DTLS_server_method() : TLS_server_method()) else {
                freeAll(); throw TLSSetupError(field: .listener, message: "cannot create a TLS context (\(opensslError()))")
            }
            contexts.append(ctx)
            do { try configure(ctx, t) } catch { freeAll(); throw error }
        }
        for (i, c) in t.certificates.enumerated() {
            let ctx = contexts[groupOf[i]]
            guard SSL_CTX_use_certificate_chain_file(ctx, c.cert) == 1 else {
                freeAll(); throw TLSSetupError(field: .cert(i), message: "cannot load certificate '\(c.cert)' (\(opensslError()))")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, c.key, SSL_FILETYPE_PEM) == 1 else {
                let why = opensslError()
                freeAll()
                let mismatch = why.contains("values mismatch") || why.contains("key values")
                throw TLSSetupError(field: .key(i), message: mismatch
                    ? "key '\(c.key)' does not match certificate '\(c.cert)'"
                    : "cannot load private key '\(c.key)' (\(why))")
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                freeAll(); throw TLSSetupError(field: .key(i), message: "key '\(c.key)' does not match certificate '\(c.cert)'")
            }
        }
        var exact: [([UInt8], Int)] = [], wildcard: [([UInt8], Int)] = []
        for (i, names) in namesOf.enumerated() {
            for n in names {
                let lower = Array(n.lowercased().utf8)
                if n.hasPrefix("*.") { wildcard.append((Array(lower.dropFirst()), groupOf[i])) } else { exact.append((lower, groupOf[i])) }
            }
        }
        let server = TLSServerContext(contexts: contexts, exact: exact, wildcard: wildcard, alpn: t.alpn, clientAuth: t.clientAuth)
        let arg = Unmanaged.passUnretained(server).toOpaque()
        for ctx in contexts where !datagram {
            SSL_CTX_set_alpn_select_cb(ctx, TLSCallbacks.selectALPN, arg)
        }
        if contexts.count > 1 { SSL_CTX_set_client_hello_cb(contexts[0], TLSCallbacks.clientHello, arg) }
        if let ca = t.clientCA {
            for ctx in contexts {
                guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1, let list = SSL_load_client_CA_file(ca) else {
                    throw TLSSetupError(field: .clientCA, message: "cannot load client CA '\(ca)' (\(opensslError()))")
                }
                SSL_CTX_set_client_CA_list(ctx, list)
                let mode = SSL_VERIFY_PEER | (t.clientAuth == .require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0)
                SSL_CTX_set_verify(ctx, mode, t.clientAuth == .optional ? TLSCallbacks.acceptAnyPeer : nil)
            }
        }
        return server
    }

    /// Settings every group context shares (protocol floor, options, tickets).
    private static func configure(_ ctx: OpaquePointer, _ t: TLSListenerConfig) throws(TLSSetupError) {
        _ = edge_SSL_CTX_set_min_proto_version(ctx, t.minVersion)
        var options = edge_SSL_OP_NO_RENEGOTIATION() | edge_SSL_OP_CIPHER_SERVER_PREFERENCE() | edge_SSL_OP_NO_COMPRESSION()
        if !t.sessionTickets { options |= edge_SSL_OP_NO_TICKET() }
        _ = SSL_CTX_set_options(ctx, options)
        // No 0-RTT: early data is replayable.
        _ = SSL_CTX_set_max_early_data(ctx, 0)
        _ = SSL_CTX_set_recv_max_early_data(ctx, 0)
        // One ticket per handshake (each costs an encryption); none when tickets are off.
        _ = SSL_CTX_set_num_tickets(ctx, t.sessionTickets ? 1 : 0)
        // Resumption is stateless (tickets): no per-context session cache shared across workers.
        _ = edge_SSL_CTX_set_session_cache_mode(ctx, 0)
        let sid: StaticString = "edge"
        _ = SSL_CTX_set_session_id_context(ctx, sid.utf8Start, UInt32(sid.utf8CodeUnitCount))
        // Mozilla "intermediate" TLS 1.2 suites: forward secret AEADs only.
        let suites = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
            + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
        guard SSL_CTX_set_cipher_list(ctx, suites) == 1 else {
            throw TLSSetupError(field: .listener, message: "cipher list rejected (\(opensslError()))")
        }
        if t.sessionTickets { TicketKeys.install(on: ctx) }
    }

    /// DNS SANs of the PEM certificate at `path` (its CN when it has none), nil if unreadable.
    static func certificateNames(_ path: String) -> [String]? {
        guard let bio = BIO_new_file(path, "r") else { return nil }
        defer { BIO_free(bio) }
        guard let x = PEM_read_bio_X509(bio, nil, nil, nil) else { return nil }
        defer { X509_free(x) }
        var names = TLSCertificateInfo.dnsNames(x)
        if names.isEmpty, let cn = TLSCertificateInfo.commonName(x) { names = [cn] }
        return names.map { $0.lowercased() }
    }

    /// The first queued OpenSSL error as text (and clears the queue).
    static func opensslError() -> String {
        let e = ERR_get_error()
        ERR_clear_error()
        if e == 0 { return "unknown error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(e, &buf, buf.count)
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Route table ownership

    /// A retained reference for a compiled listener (released by `release`).
    func retainedPointer() -> UnsafeMutableRawPointer { Unmanaged.passRetained(self).toOpaque() }

    static func release(_ p: UnsafeMutableRawPointer?) {
        guard let p else { return }
        Unmanaged<TLSServerContext>.fromOpaque(p).release()
    }
}

/// File checks without Foundation.
enum FileManagerLite {
    static func readable(_ path: String) -> Bool { access(path, R_OK) == 0 }
    static func lastError() -> String { String(cString: strerror(errno)) }
}
