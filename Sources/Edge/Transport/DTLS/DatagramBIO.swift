import COpenSSL
import Glibc

/// Where one DTLS peer's records come from and go to. OpenSSL only ever sees
/// this through `DatagramBIO`: the reactor points `input` at the datagram it
/// received (one datagram, one BIO read), and each record flight OpenSSL
/// writes leaves as one datagram from the listener's socket to `address`.
struct DatagramPeer {
    /// The listener's UDP socket (replies leave from the address clients sent to).
    var fd: Int32 = -1
    var address = sockaddr_storage()
    var length: socklen_t = 0
    /// The datagram being fed to OpenSSL, nil once read.
    var input: UnsafeRawPointer? = nil
    var inputLength = 0
    /// `BIO_CTRL_DGRAM_SET_PEEK_MODE`: reads leave the datagram in place
    /// (DTLSv1_listen peeks, and leaves a ClientHello with a valid cookie for the handshake to read).
    var peek = false
    /// Datagrams written, and writes the kernel refused (UDP: dropped, not retried).
    var sent = 0
    var sendErrors = 0
}

/// A `BIO_METHOD` with datagram semantics over a `DatagramPeer` (OpenSSL 3.0
/// has no `BIO_s_dgram_mem`; `BIO_s_mem` would merge datagrams). It answers
/// the `BIO_CTRL_DGRAM_*` controls `DTLSv1_listen` and the record layer ask:
/// peer get/set, MTU queries, timeouts (timers live on the reactor's wheel).
enum DatagramBIO {
    /// Payload bytes per datagram OpenSSL should fill (conservative Ethernet path MTU).
    static let mtu = 1400

    nonisolated(unsafe) static let method: OpaquePointer? = {
        guard let m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "edge-datagram") else { return nil }
        _ = BIO_meth_set_write(m, write)
        _ = BIO_meth_set_read(m, read)
        _ = BIO_meth_set_ctrl(m, ctrl)
        _ = BIO_meth_set_create(m, create)
        _ = BIO_meth_set_destroy(m, destroy)
        return m
    }()

    /// A BIO over `peer` (which must outlive it or be re-pointed with `attach`).
    static func make(_ peer: UnsafeMutablePointer<DatagramPeer>) -> OpaquePointer? {
        guard let m = method, let b = BIO_new(m) else { return nil }
        BIO_set_data(b, peer)
        return b
    }

    static func attach(_ bio: OpaquePointer?, _ peer: UnsafeMutablePointer<DatagramPeer>) {
        guard let bio else { return }
        BIO_set_data(bio, peer)
    }

    @inline(__always) static func peer(_ b: OpaquePointer?) -> UnsafeMutablePointer<DatagramPeer>? {
        guard let b, let raw = BIO_get_data(b) else { return nil }
        return raw.assumingMemoryBound(to: DatagramPeer.self)
    }

    private static let create: @convention(c) (OpaquePointer?) -> Int32 = { b in
        BIO_set_init(b, 1)
        return 1
    }

    private static let destroy: @convention(c) (OpaquePointer?) -> Int32 = { b in
        BIO_set_data(b, nil)
        return 1
    }

    /// One datagram per read; a datagram longer than the buffer is truncated (UDP semantics).
    private static let read: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, Int32) -> Int32 = { b, out, len in
        BIO_clear_flags(b, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
        guard let p = peer(b), let out, len > 0 else { return -1 }
        guard let input = p.pointee.input else {
            BIO_set_flags(b, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY)
            return -1
        }
        let n = min(Int(len), p.pointee.inputLength)
        UnsafeMutableRawPointer(out).copyMemory(from: input, byteCount: n)
        if !p.pointee.peek {
            p.pointee.input = nil
            p.pointee.inputLength = 0
        }
        return Int32(n)
    }

    /// One datagram per write, sent at once; a refused send is a lost datagram
    /// (DTLS retransmits), never a retry that would stall the handshake.
    private static let write: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32 = { b, data, len in
        BIO_clear_flags(b, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
        guard let p = peer(b), let data, len >= 0 else { return -1 }
        let sent = withUnsafePointer(to: &p.pointee.address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(p.pointee.fd, data, Int(len), Int32(MSG_DONTWAIT), $0, p.pointee.length)
            }
        }
        if sent < 0 { p.pointee.sendErrors += 1 } else { p.pointee.sent += 1 }
        return len
    }

    private static let ctrl: @convention(c) (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int = { b, cmd, num, ptr in
        switch cmd {
        case BIO_CTRL_FLUSH, BIO_CTRL_DGRAM_SET_CONNECTED, BIO_CTRL_DGRAM_SET_PEER, BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
            // Replies always go to the session's own client; timers are the reactor's.
            return 1
        case BIO_CTRL_DGRAM_GET_PEER:
            guard let p = peer(b), let ptr else { return 0 }
            // BIO_ADDR is a union at least as large as sockaddr_in6.
            let n = min(Int(p.pointee.length), MemoryLayout<sockaddr_in6>.size)
            let limit = num > 0 ? min(n, num) : n
            withUnsafePointer(to: &p.pointee.address) { ptr.copyMemory(from: UnsafeRawPointer($0), byteCount: limit) }
            return limit
        case BIO_CTRL_DGRAM_QUERY_MTU, BIO_CTRL_DGRAM_GET_FALLBACK_MTU, BIO_CTRL_DGRAM_GET_MTU:
            return mtu
        case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
            guard let p = peer(b) else { return 28 }
            return p.pointee.address.ss_family == sa_family_t(AF_INET6) ? 48 : 28
        case BIO_CTRL_DGRAM_SET_MTU:
            return num
        case BIO_CTRL_DGRAM_SET_PEEK_MODE:
            peer(b)?.pointee.peek = num != 0
            return 1
        case BIO_CTRL_DGRAM_MTU_EXCEEDED, BIO_CTRL_PENDING, BIO_CTRL_WPENDING:
            return 0
        default:
            return 0
        }
    }
}
