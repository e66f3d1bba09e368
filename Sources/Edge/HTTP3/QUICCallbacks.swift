import CNGHTTP3
import CNGTCP2
import Glibc

/// The ngtcp2 and nghttp3 callback tables (one per worker; both libraries copy
/// them into each connection). Crypto callbacks are ngtcp2_crypto_gnutls's
/// own; the rest forward to the reactor (QUICConnection.swift, H3Streams.swift).
enum QUICCallbacks {
    @inline(__always) static func context(_ ud: UnsafeMutableRawPointer?) -> (Reactor, Int32)? {
        guard let p = ud?.assumingMemoryBound(to: QUICContext.self) else { return nil }
        return (p.pointee.reactor.takeUnretainedValue(), p.pointee.slot)
    }

    @inline(__always) static func stream(_ sud: UnsafeMutableRawPointer?) -> Int32 {
        guard let sud else { return -1 }
        return Int32(truncatingIfNeeded: Int(bitPattern: sud) - 1)
    }

    static func transport() -> ngtcp2_callbacks {
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
        cb.handshake_completed = { _, ud in
            guard let (r, c) = QUICCallbacks.context(ud) else { return 0 }
            r.quicHandshakeCompleted(c)
            return 0
        }
        cb.rand = { dest, len, _ in
            if let dest { _ = edge_gnutls_random(dest, len) }
        }
        cb.get_new_connection_id = { _, cid, token, cidlen, ud in
            guard let cid, let token, let (r, c) = QUICCallbacks.context(ud) else { return NGTCP2_ERR_CALLBACK_FAILURE }
            return r.quicNewConnectionId(c, cid, token, cidlen) ? 0 : NGTCP2_ERR_CALLBACK_FAILURE
        }
        cb.remove_connection_id = { _, cid, ud in
            guard let cid, let (r, c) = QUICCallbacks.context(ud) else { return 0 }
            r.quicRemoveConnectionId(c, cid)
            return 0
        }
        cb.recv_tx_key = { _, level, ud in
            guard level == NGTCP2_CRYPTO_LEVEL_APPLICATION, let (r, c) = QUICCallbacks.context(ud) else { return 0 }
            return r.h3Setup(c) ? 0 : NGTCP2_ERR_CALLBACK_FAILURE
        }
        cb.recv_stream_data = { _, flags, sid, _, data, len, ud, _ in
            guard let (r, c) = QUICCallbacks.context(ud) else { return 0 }
            return r.h3StreamData(c, sid, data, len, fin: flags & NGTCP2_STREAM_DATA_FLAG_FIN != 0) ? 0 : NGTCP2_ERR_CALLBACK_FAILURE
        }
        cb.acked_stream_data_offset = { _, sid, _, len, ud, _ in
            guard let (r, c) = QUICCallbacks.context(ud), let h3 = r.quic.conns[Int(c)].h3 else { return 0 }
            return nghttp3_conn_add_ack_offset(h3, sid, len) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE
        }
        cb.stream_close = { conn, flags, sid, code, ud, _ in
            // A finished request stream makes room for the next one (MAX_STREAMS).
            if sid & 0x3 == 0, let conn { ngtcp2_conn_extend_max_streams_bidi(conn, 1) }
            guard let (r, c) = QUICCallbacks.context(ud), let h3 = r.quic.conns[Int(c)].h3 else { return 0 }
            let app = flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET != 0 ? code : UInt64(NGHTTP3_H3_NO_ERROR)
            let rv = nghttp3_conn_close_stream(h3, sid, app)
            return rv == 0 || rv == NGHTTP3_ERR_STREAM_NOT_FOUND ? 0 : NGTCP2_ERR_CALLBACK_FAILURE
        }
        cb.stream_reset = { _, sid, _, _, ud, _ in
            guard let (r, c) = QUICCallbacks.context(ud), let h3 = r.quic.conns[Int(c)].h3 else { return 0 }
            return nghttp3_conn_shutdown_stream_read(h3, sid) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE
        }
        cb.stream_stop_sending = { _, sid, _, ud, _ in
            guard let (r, c) = QUICCallbacks.context(ud), let h3 = r.quic.conns[Int(c)].h3 else { return 0 }
            return nghttp3_conn_shutdown_stream_read(h3, sid) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE
        }
        cb.extend_max_stream_data = { _, sid, _, ud, _ in
            guard let (r, c) = QUICCallbacks.context(ud), let h3 = r.quic.conns[Int(c)].h3 else { return 0 }
            return nghttp3_conn_unblock_stream(h3, sid) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE
        }
        cb.extend_max_remote_streams_bidi = { _, maxStreams, ud in
            guard let (r, c) = QUICCallbacks.context(ud), let h3 = r.quic.conns[Int(c)].h3 else { return 0 }
            nghttp3_conn_set_max_client_streams_bidi(h3, maxStreams)
            return 0
        }
        return cb
    }

    static func http3() -> nghttp3_callbacks {
        var cb = nghttp3_callbacks()
        cb.stream_close = { _, sid, _, ud, sud in
            guard let (r, c) = QUICCallbacks.context(ud) else { return 0 }
            r.h3StreamClosed(c, sid, QUICCallbacks.stream(sud))
            return 0
        }
        cb.recv_data = { _, sid, _, len, ud, sud in
            guard let (r, c) = QUICCallbacks.context(ud) else { return 0 }
            r.h3RequestData(c, sid, QUICCallbacks.stream(sud), len)
            return 0
        }
        cb.deferred_consume = { _, sid, consumed, ud, _ in
            guard let (r, c) = QUICCallbacks.context(ud) else { return 0 }
            r.quicConsume(c, sid, consumed)
            return 0
        }
        cb.begin_headers = { _, sid, ud, _ in
            guard let (r, c) = QUICCallbacks.context(ud) else { return 0 }
            return r.h3BeginHeaders(c, sid)
        }
        cb.recv_header = { _, _, _, name, value, _, ud, sud in
            guard let (r, _) = QUICCallbacks.context(ud), let name, let value else { return 0 }
            let n = nghttp3_rcbuf_get_buf(name)
            let v = nghttp3_rcbuf_get_buf(value)
            r.h3Header(QUICCallbacks.stream(sud), UnsafeRawBufferPointer(start: n.base, count: n.len), UnsafeRawBufferPointer(start: v.base, count: v.len))
            return 0
        }
        cb.end_headers = { _, _, fin, ud, sud in
            guard let (r, c) = QUICCallbacks.context(ud) else { return 0 }
            r.h3HeadersDone(c, QUICCallbacks.stream(sud), fin: fin != 0)
            return 0
        }
        cb.end_stream = { _, _, ud, sud in
            guard let (r, _) = QUICCallbacks.context(ud) else { return 0 }
            r.h3RequestEnded(QUICCallbacks.stream(sud))
            return 0
        }
        cb.stop_sending = { _, sid, code, ud, _ in
            guard let (r, c) = QUICCallbacks.context(ud), let conn = r.quic.conns[Int(c)].conn else { return 0 }
            _ = ngtcp2_conn_shutdown_stream_read(conn, sid, code)
            return 0
        }
        cb.reset_stream = { _, sid, code, ud, _ in
            guard let (r, c) = QUICCallbacks.context(ud), let conn = r.quic.conns[Int(c)].conn else { return 0 }
            _ = ngtcp2_conn_shutdown_stream_write(conn, sid, code)
            return 0
        }
        return cb
    }
}
