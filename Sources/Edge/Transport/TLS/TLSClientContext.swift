import COpenSSL

/// A cluster's upstream TLS settings as one client `SSL_CTX`, built on the
/// control thread while the config is validated (so a bad CA or key file is a
/// `file:line` error). Holds one resumable session per worker so new pooled
/// connections to the cluster resume instead of doing a full handshake.
final class TLSClientContext: @unchecked Sendable {
    let ctx: OpaquePointer
    /// SNI and the name verified against the certificate (empty: none).
    let serverName: [CChar]
    let verify: Bool
    /// Last session per worker (index = reactor), touched only by that worker.
    private let sessions: UnsafeMutablePointer<OpaquePointer?>
    private let sessionSlots: Int

    private init(ctx: OpaquePointer, serverName: String, verify: Bool, workers: Int) {
        self.ctx = ctx
        self.serverName = Array(serverName.utf8CString)
        self.verify = verify
        sessionSlots = max(workers, 1)
        sessions = .allocate(capacity: sessionSlots)
        sessions.initialize(repeating: nil, count: sessionSlots)
    }

    deinit {
        for i in 0..<sessionSlots { if let s = sessions[i] { SSL_SESSION_free(s) } }
        sessions.deallocate()
        SSL_CTX_free(ctx)
    }

    /// The worker's cached session (not retained) or nil.
    func session(worker: Int) -> OpaquePointer? { worker >= 0 && worker < sessionSlots ? sessions[worker] : nil }

    /// Keeps `s` (already retained by the caller) as the worker's session.
    func keep(_ s: OpaquePointer, worker: Int) {
        guard worker >= 0 && worker < sessionSlots else { SSL_SESSION_free(s); return }
        if let old = sessions[worker] { SSL_SESSION_free(old) }
        sessions[worker] = s
    }

    static func build(_ t: ClusterTLSConfig, workers: Int, alpnH2: Bool = false) throws(TLSSetupError) -> TLSClientContext {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSSetupError(field: .listener, message: "cannot create a TLS context (\(TLSServerContext.opensslError()))")
        }
        _ = edge_SSL_CTX_set_min_proto_version(ctx, 0x0303)
        // An upstream closing without close_notify must not void the session for resumption.
        _ = SSL_CTX_set_options(ctx, edge_SSL_OP_NO_RENEGOTIATION() | edge_SSL_OP_NO_COMPRESSION() | edge_SSL_OP_IGNORE_UNEXPECTED_EOF())
        // Sessions are cached by hand per worker (see `keep`), not in OpenSSL's locked cache.
        _ = edge_SSL_CTX_set_session_cache_mode(ctx, 1 /* SSL_SESS_CACHE_CLIENT */ | 0x0300 /* NO_INTERNAL (lookup and store) */)
        if t.verify {
            if let ca = t.ca {
                guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else {
                    SSL_CTX_free(ctx)
                    throw TLSSetupError(field: .clientCA, message: "cannot load CA '\(ca)' (\(TLSServerContext.opensslError()))")
                }
            } else {
                _ = SSL_CTX_set_default_verify_paths(ctx)
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        if let cert = t.clientCert, let key = t.clientKey {
            guard SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 else {
                SSL_CTX_free(ctx)
                throw TLSSetupError(field: .cert(0), message: "cannot load client certificate '\(cert)' (\(TLSServerContext.opensslError()))")
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
                SSL_CTX_free(ctx)
                throw TLSSetupError(field: .key(0), message: "key '\(key)' cannot be loaded or does not match client certificate '\(cert)'")
            }
        }
        // `protocol: http2` over TLS offers ALPN "h2" (gRPC servers require it).
        if alpnH2 {
            let h2: [UInt8] = [2, 0x68, 0x32]
            guard SSL_CTX_set_alpn_protos(ctx, h2, 3) == 0 else {
                SSL_CTX_free(ctx)
                throw TLSSetupError(field: .listener, message: "cannot offer ALPN h2 (\(TLSServerContext.opensslError()))")
            }
        }
        let client = TLSClientContext(ctx: ctx, serverName: t.serverName ?? "", verify: t.verify, workers: workers)
        // TLS 1.3 tickets arrive after the handshake: keep them as they come.
        _ = SSL_CTX_set_ex_data(ctx, 0, Unmanaged.passUnretained(client).toOpaque())
        SSL_CTX_sess_set_new_cb(ctx, newSession)
        return client
    }

    /// A resumable session arrived; the connection's worker (ex_data 0 of the
    /// SSL, index + 1) keeps it. Returning 1 takes ownership of `session`.
    private static let newSession: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, session in
        guard let ssl, let session, let ctx = SSL_get_SSL_CTX(ssl), let raw = SSL_CTX_get_ex_data(ctx, 0),
              let tag = SSL_get_ex_data(ssl, 0) else { return 0 }
        let worker = Int(bitPattern: tag) - 1
        Unmanaged<TLSClientContext>.fromOpaque(raw).takeUnretainedValue().keep(session, worker: worker)
        return 1
    }

    func retainedPointer() -> UnsafeMutableRawPointer { Unmanaged.passRetained(self).toOpaque() }

    static func release(_ p: UnsafeMutableRawPointer?) {
        guard let p else { return }
        Unmanaged<TLSClientContext>.fromOpaque(p).release()
    }
}

/// `clusters[].tls` as written (ConfigLoader+TLS.swift parses it).
struct ClusterTLSConfig: Sendable {
    var serverName: String? = nil
    var ca: String? = nil
    var verify = true
    var clientCert: String? = nil
    var clientKey: String? = nil
    var context: TLSClientContext? = nil
}
