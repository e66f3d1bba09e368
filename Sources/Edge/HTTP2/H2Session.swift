import CNGHTTP2
import Glibc

/// What an nghttp2 callback needs to find its connection: the reactor (not
/// retained: the reactor outlives every session it creates) and the client slot.
struct H2Context {
    var reactor: Unmanaged<Reactor>
    var slot: Int32
}

/// nghttp2's allocations, accounted per worker: a session lives on one reactor
/// thread, so a plain counter is enough. Over `limit` bytes an allocation fails
/// and nghttp2 reports NOMEM, which ends that connection (memory stays bounded).
struct H2MemAccount {
    var live: Int = 0
    var limit: Int = 256 << 20
}

/// Session setup and the C callbacks. Every nghttp2 call of Edge lives in
/// HTTP2/ (this file and the connection, request and response glue).
enum H2Session {
    static func mem(_ account: UnsafeMutablePointer<H2MemAccount>) -> nghttp2_mem { nghttp2_mem(
        mem_user_data: UnsafeMutableRawPointer(account),
        malloc: { size, ud in
            guard let a = ud?.assumingMemoryBound(to: H2MemAccount.self), a.pointee.live + size <= a.pointee.limit else { return nil }
            let p = malloc(size)
            a.pointee.live += edge_usable_size(p)
            return p
        },
        free: { p, ud in
            if let a = ud?.assumingMemoryBound(to: H2MemAccount.self) { a.pointee.live -= edge_usable_size(p) }
            free(p)
        },
        calloc: { n, size, ud in
            guard let a = ud?.assumingMemoryBound(to: H2MemAccount.self), a.pointee.live + n &* size <= a.pointee.limit else { return nil }
            let p = calloc(n, size)
            a.pointee.live += edge_usable_size(p)
            return p
        },
        realloc: { p, size, ud in
            guard let a = ud?.assumingMemoryBound(to: H2MemAccount.self), a.pointee.live + size <= a.pointee.limit else { return nil }
            let old = edge_usable_size(p)
            guard let q = realloc(p, size) else { return nil }
            a.pointee.live += edge_usable_size(q) - old
            return q
        }) }

    /// One callbacks table per worker (nghttp2 copies it into each session).
    static func makeCallbacks() -> OpaquePointer? {
        var cbs: OpaquePointer? = nil
        guard nghttp2_session_callbacks_new(&cbs) == 0, let cbs else { return nil }
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs) { _, frame, ud in
            guard let frame, let (r, c) = H2Session.context(ud) else { return 0 }
            return r.h2BeginHeaders(c, frame)
        }
        nghttp2_session_callbacks_set_on_header_callback(cbs) { _, frame, name, namelen, value, valuelen, _, ud in
            guard let frame, let (r, c) = H2Session.context(ud) else { return 0 }
            return r.h2Header(c, frame, UnsafeRawBufferPointer(start: name, count: namelen), UnsafeRawBufferPointer(start: value, count: valuelen))
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs) { _, frame, ud in
            guard let frame, let (r, c) = H2Session.context(ud) else { return 0 }
            return r.h2FrameReceived(c, frame)
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs) { _, _, streamId, data, len, ud in
            guard let (r, c) = H2Session.context(ud) else { return 0 }
            return r.h2DataChunk(c, streamId, UnsafeRawBufferPointer(start: data, count: len))
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs) { _, streamId, code, ud in
            guard let (r, c) = H2Session.context(ud) else { return 0 }
            r.h2StreamClosed(c, streamId, code)
            return 0
        }
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs) { _, _, _, ud in
            guard let (r, c) = H2Session.context(ud) else { return 0 }
            r.stats.http2.protocolErrors.wrappingIncrement(ordering: .relaxed)
            r.h2Glitch(c)
            return 0
        }
        return cbs
    }

    @inline(__always) static func context(_ ud: UnsafeMutableRawPointer?) -> (Reactor, Int32)? {
        guard let p = ud?.assumingMemoryBound(to: H2Context.self) else { return nil }
        return (p.pointee.reactor.takeUnretainedValue(), p.pointee.slot)
    }

    /// A server session for one connection with the listener's limits and the
    /// attack defences nghttp2 1.52 offers (the rest are Edge's own counters).
    static func make(_ callbacks: OpaquePointer?, _ context: UnsafeMutablePointer<H2Context>,
                     _ account: UnsafeMutablePointer<H2MemAccount>, _ s: CompiledHTTP2) -> OpaquePointer? {
        var option: OpaquePointer? = nil
        guard nghttp2_option_new(&option) == 0, let option else { return nil }
        defer { nghttp2_option_del(option) }
        // Request bodies leave nghttp2's windows only once handed on upstream.
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_send_header_block_length(option, 64 << 10)
        nghttp2_option_set_max_deflate_dynamic_table_size(option, 4096)
        // Flood limits: queued SETTINGS/PING acks and entries per SETTINGS frame.
        nghttp2_option_set_max_outbound_ack(option, 1000)
        nghttp2_option_set_max_settings(option, 32)
        // Backstops behind Edge's own, stricter counters (CVE-2023-44487, CVE-2024-28182).
        nghttp2_option_set_stream_reset_rate_limit(option, UInt64(s.resetBurst) * 2, UInt64(s.resetRate) * 2)
        nghttp2_option_set_max_continuations(option, 8)
        nghttp2_option_set_max_reserved_remote_streams(option, 0)
        var m = mem(account)
        var session: OpaquePointer? = nil
        guard nghttp2_session_server_new3(&session, callbacks, UnsafeMutableRawPointer(context), option, &m) == 0, let session else {
            return nil
        }
        var iv = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: s.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: s.initialWindow),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: s.maxHeaderList),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: s.maxFrameSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        if nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &iv, iv.count) != 0 {
            nghttp2_session_del(session)
            return nil
        }
        // The connection window (65,535 by default) grows to the configured size.
        let grow = s.connectionWindow - 65_535
        if grow > 0 { _ = nghttp2_submit_window_update(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, grow) }
        return session
    }
}
