import CNGHTTP2
import Protocols

// The HTTP/2 session input path without I/O, for Fuzz/FuzzHTTP2: frames after
// the client preface go into an nghttp2 server session with the options Edge
// uses (manual window updates, flood and CONTINUATION limits), and every
// decoded field runs through the h2 → h1 translation rules. The invariant: a
// field the rules pass never carries a byte that could break an HTTP/1.1 line.
// Returns a message for a broken invariant, nil when all hold (nothing traps).
public enum H2FuzzEntry {
    final class State { var violation: String? = nil }

    public static func session(_ bytes: UnsafeRawBufferPointer) -> String? {
        let state = State()
        var cbs: OpaquePointer? = nil
        guard nghttp2_session_callbacks_new(&cbs) == 0, let cbs else { return nil }
        defer { nghttp2_session_callbacks_del(cbs) }
        nghttp2_session_callbacks_set_on_header_callback(cbs) { _, _, name, namelen, value, valuelen, _, ud in
            guard let ud else { return 0 }
            let st = Unmanaged<State>.fromOpaque(ud).takeUnretainedValue()
            let n = UnsafeRawBufferPointer(start: name, count: namelen)
            let v = UnsafeRawBufferPointer(start: value, count: valuelen)
            switch H2FieldRules.classify(name: n, value: v) {
            case .malformed: break
            default:
                for c in v where c == 0x0D || c == 0x0A || c == 0 { st.violation = "a CR/LF/NUL value passed the rules" }
                for c in n where c == 0x0D || c == 0x0A || c == 0 || c == 0x20 || (c >= 0x41 && c <= 0x5A) {
                    st.violation = "a field name with a forbidden byte passed the rules"
                }
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs) { session, _, sid, _, len, _ in
            _ = nghttp2_session_consume(session, sid, len)
            return 0
        }
        var option: OpaquePointer? = nil
        guard nghttp2_option_new(&option) == 0, let option else { return nil }
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_outbound_ack(option, 1000)
        nghttp2_option_set_max_settings(option, 32)
        nghttp2_option_set_stream_reset_rate_limit(option, 400, 100)
        nghttp2_option_set_max_continuations(option, 8)
        var session: OpaquePointer? = nil
        let ud = Unmanaged.passUnretained(state).toOpaque()
        guard nghttp2_session_server_new2(&session, cbs, ud, option) == 0, let session else { return nil }
        defer { nghttp2_session_del(session) }
        let preface: StaticString = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        guard nghttp2_session_mem_recv(session, preface.utf8Start, preface.utf8CodeUnitCount) == preface.utf8CodeUnitCount else {
            return "the client preface was refused"
        }
        if let p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 {
            // Two halves, so frames split across reads are exercised too.
            let half = bytes.count / 2
            if nghttp2_session_mem_recv(session, p, half) >= 0 {
                _ = nghttp2_session_mem_recv(session, p + half, bytes.count - half)
            }
        }
        var out: UnsafePointer<UInt8>? = nil
        var rounds = 0
        while rounds < 10_000, nghttp2_session_mem_send(session, &out) > 0 { rounds += 1 }
        return state.violation
    }
}
