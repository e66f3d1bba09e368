import CNGHTTP2
import Glibc

/// nghttp2 client sessions towards `protocol: http2` clusters: setup and the
/// C callbacks. The context (reactor + upstream slot) and the allocator are
/// the same per-worker ones the downstream sessions use (H2Session.swift).
enum H2ClientSession {
    /// One callbacks table per worker for client sessions.
    static func makeCallbacks() -> OpaquePointer? {
        var cbs: OpaquePointer? = nil
        guard nghttp2_session_callbacks_new(&cbs) == 0, let cbs else { return nil }
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs) { _, frame, ud in
            guard let frame, let (r, u) = H2Session.context(ud) else { return 0 }
            return r.h2upBeginHeaders(u, frame)
        }
        nghttp2_session_callbacks_set_on_header_callback(cbs) { _, frame, name, namelen, value, valuelen, _, ud in
            guard let frame, let (r, u) = H2Session.context(ud) else { return 0 }
            return r.h2upHeader(u, frame, UnsafeRawBufferPointer(start: name, count: namelen), UnsafeRawBufferPointer(start: value, count: valuelen))
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs) { _, frame, ud in
            guard let frame, let (r, u) = H2Session.context(ud) else { return 0 }
            return r.h2upFrameReceived(u, frame)
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs) { _, _, streamId, data, len, ud in
            guard let (r, u) = H2Session.context(ud) else { return 0 }
            return r.h2upDataChunk(u, streamId, UnsafeRawBufferPointer(start: data, count: len))
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs) { _, streamId, code, ud in
            guard let (r, u) = H2Session.context(ud) else { return 0 }
            r.h2upStreamClosed(u, streamId, code)
            return 0
        }
        return cbs
    }

    /// A client session: nghttp2's HTTP messaging checks stay on, response
    /// bytes leave its windows only once the downstream took them.
    static func make(_ callbacks: OpaquePointer?, _ context: UnsafeMutablePointer<H2Context>,
                     _ account: UnsafeMutablePointer<H2MemAccount>) -> OpaquePointer? {
        var option: OpaquePointer? = nil
        guard nghttp2_option_new(&option) == 0, let option else { return nil }
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_send_header_block_length(option, 64 << 10)
        nghttp2_option_set_max_deflate_dynamic_table_size(option, 4096)
        nghttp2_option_set_max_outbound_ack(option, 1000)
        nghttp2_option_set_max_settings(option, 32)
        nghttp2_option_set_max_continuations(option, 8)
        // An upstream never pushes to Edge (ENABLE_PUSH 0 below).
        nghttp2_option_set_max_reserved_remote_streams(option, 0)
        // Until the upstream's SETTINGS arrive only one stream goes out; the rest
        // wait inside nghttp2 and open as its limit allows (servers such as
        // grpc-core reset streams over their limit with ENHANCE_YOUR_CALM, and
        // a request whose body went out cannot be sent again).
        nghttp2_option_set_peer_max_concurrent_streams(option, 1)
        var m = H2Session.mem(account)
        var session: OpaquePointer? = nil
        guard nghttp2_session_client_new3(&session, callbacks, UnsafeMutableRawPointer(context), option, &m) == 0, let session else {
            return nil
        }
        var iv = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(H2UpConn.streamWindow)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: 65_536),
        ]
        if nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &iv, iv.count) != 0 {
            nghttp2_session_del(session)
            return nil
        }
        _ = nghttp2_submit_window_update(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, H2UpConn.connectionWindow - 65_535)
        return session
    }
}
