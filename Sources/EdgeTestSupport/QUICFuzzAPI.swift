import CNGTCP2
import Glibc

// The QUIC server packet input without sockets, for Fuzz/FuzzQUIC. The input
// is a list of datagrams (2-byte big-endian length, then the bytes), fed the
// way Edge's HTTP3/QUICInput.swift does: every datagram is first decoded with
// ngtcp2_pkt_decode_version_cid; the first one ngtcp2_accept takes as an
// Initial creates a server connection (Edge's transport limits, a GnuTLS
// server session without certificates, so a ClientHello fails its handshake
// cleanly); the rest go to ngtcp2_conn_read_pkt and whatever the connection
// has to send is written and dropped. The invariants: nothing traps, and no
// connection exists for a datagram ngtcp2_accept refused or under 1,200 bytes.
public enum QUICFuzzEntry {
    final class State { var conn: OpaquePointer? = nil }

    public static func datagrams(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        let state = State()
        var session: OpaquePointer? = nil
        defer {
            if let c = state.conn { ngtcp2_conn_del(c) }
            if let session { gnutls_deinit(session) }
        }
        var ref = ngtcp2_crypto_conn_ref()
        ref.user_data = Unmanaged.passUnretained(state).toOpaque()
        ref.get_conn = { r in
            guard let ud = r?.pointee.user_data else { return nil }
            return Unmanaged<State>.fromOpaque(ud).takeUnretainedValue().conn
        }
        var cb = ngtcp2_callbacks()
        cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb
        cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb
        cb.encrypt = ngtcp2_crypto_encrypt_cb
        cb.decrypt = ngtcp2_crypto_decrypt_cb
        cb.hp_mask = ngtcp2_crypto_hp_mask_cb
        cb.update_key = ngtcp2_crypto_update_key_cb
        cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb
        cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb
        cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb
        cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb
        cb.rand = { dest, len, _ in if let dest { memset(dest, 0x5a, len) } }
        cb.get_new_connection_id = { _, cid, token, len, _ in
            guard let cid, let token else { return NGTCP2_ERR_CALLBACK_FAILURE }
            cid.pointee.datalen = min(len, 20)
            withUnsafeMutableBytes(of: &cid.pointee.data) { $0.initializeMemory(as: UInt8.self, repeating: 0x11) }
            memset(token, 0x22, Int(NGTCP2_STATELESS_RESET_TOKENLEN))
            return 0
        }
        var local = sockaddr_in(), remote = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET); local.sin_port = UInt16(443).bigEndian; local.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        remote.sin_family = sa_family_t(AF_INET); remote.sin_port = UInt16(50000).bigEndian; remote.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let out = UnsafeMutablePointer<UInt8>.allocate(capacity: 1452)
        defer { out.deallocate() }
        var at = 0
        var ts: UInt64 = 1_000_000_000
        while at + 2 <= bytes.count {
            let n = Int(base[at]) << 8 | Int(base[at + 1])
            at += 2
            guard at + n <= bytes.count else { break }
            let data = base + at
            at += n
            ts &+= 1_000_000
            // Edge drops empty datagrams before ngtcp2 (which asserts on them).
            if n == 0 { continue }
            var vc = ngtcp2_version_cid()
            guard ngtcp2_pkt_decode_version_cid(&vc, data, n, 18) == 0 else { continue }
            withUnsafeMutablePointer(to: &local) { lp in
                withUnsafeMutablePointer(to: &remote) { rp in
                    lp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { l in
                        rp.withMemoryRebound(to: ngtcp2_sockaddr.self, capacity: 1) { r in
                            var path = ngtcp2_path(local: ngtcp2_addr(addr: l, addrlen: UInt32(MemoryLayout<sockaddr_in>.size)),
                                                   remote: ngtcp2_addr(addr: r, addrlen: UInt32(MemoryLayout<sockaddr_in>.size)), user_data: nil)
                            if state.conn == nil {
                                var hd = ngtcp2_pkt_hd()
                                guard ngtcp2_accept(&hd, data, n) == 0, hd.type == UInt8(NGTCP2_PKT_INITIAL.rawValue) else { return }
                                if n < 1200 { fatalError("ngtcp2_accept took an Initial under 1,200 bytes") }
                                var settings = ngtcp2_settings()
                                edge_ngtcp2_settings_default(&settings)
                                settings.initial_ts = ts
                                var params = ngtcp2_transport_params()
                                edge_ngtcp2_transport_params_default(&params)
                                params.initial_max_streams_bidi = 100
                                params.initial_max_streams_uni = 3
                                params.initial_max_stream_data_bidi_remote = 256 << 10
                                params.initial_max_stream_data_uni = 256 << 10
                                params.initial_max_data = 1 << 20
                                params.original_dcid = hd.dcid
                                var scid = ngtcp2_cid()
                                scid.datalen = 18
                                var c: OpaquePointer? = nil
                                guard edge_ngtcp2_conn_server_new(&c, &hd.scid, &scid, &path, hd.version, &cb, &settings, &params, nil, nil) == 0,
                                      let c else { return }
                                state.conn = c
                                guard edge_gnutls_server_init(&session) == 0, let session,
                                      ngtcp2_crypto_gnutls_configure_server_session(session) == 0 else { return }
                                _ = gnutls_priority_set_direct(session, "NORMAL:-VERS-ALL:+VERS-TLS1.3", nil)
                                _ = edge_gnutls_alpn_h3(session)
                                gnutls_session_set_ptr(session, &ref)
                                ngtcp2_conn_set_tls_native_handle(c, UnsafeMutableRawPointer(session))
                            }
                            guard let c = state.conn else { return }
                            var pi = ngtcp2_pkt_info()
                            if edge_ngtcp2_conn_read_pkt(c, &path, &pi, data, n, ts) != 0 { return }
                            for _ in 0..<16 {
                                var written: ngtcp2_ssize = -1
                                let w = edge_ngtcp2_conn_writev_stream(c, &path, &pi, out, 1452, &written, 0, -1, nil, 0, ts)
                                if w <= 0 { break }
                            }
                        }
                    }
                }
            }
        }
        return nil
    }
}
