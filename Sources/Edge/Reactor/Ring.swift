import CIOUring
import Glibc

/// Typed identifiers: a socket slot, an exchange and a snapshot view are all
/// small integers underneath; the wrappers keep them from being mixed up
/// where they cross an API (the ring's `Tag`, the exchange table, view
/// reference counting). Single-field structs: they cost nothing at run time.
struct SlotID: Equatable { var raw: Int32 }
struct ExchangeID: Equatable { var raw: Int32 }
struct ViewID: Equatable { var raw: Int32 }

/// What a completion belongs to, as carried in the 64-bit io_uring user_data:
/// op (8 bits) | socket slot or accept slot (32 bits) | slot generation (24 bits).
struct Tag: Equatable {
    var bits: UInt64
    @inline(__always) init(_ op: Op, _ slot: SlotID, gen: UInt32) { bits = UserData.make(op, slot.raw, gen) }
    /// Listener sockets are addressed by accept slot (no generation).
    @inline(__always) init(_ op: Op, acceptSlot a: Int) { bits = UserData.make(op, Int32(a), 0) }
    /// Cancellations that nobody waits for.
    static let untracked = Tag(.cancel, SlotID(raw: -1), gen: 0)
}

/// The reactor's io_uring. Every submission queue entry Edge prepares is
/// prepared here (nowhere else calls `io_uring_prep_*`), each carrying a `Tag`.
/// Owned by one reactor thread (SINGLE_ISSUER).
struct Ring {
    let uring: UnsafeMutablePointer<io_uring>

    /// A free SQE; when the queue is full it is flushed to the kernel first.
    @inline(__always) private func sqe(_ tag: Tag) -> UnsafeMutablePointer<io_uring_sqe> {
        var s = io_uring_get_sqe(uring)
        if s == nil {
            _ = io_uring_submit(uring)
            // The SQ was just flushed, so a slot is free now (trap-audit R1: kernel OOM only).
            s = io_uring_get_sqe(uring)
        }
        let q = s.unsafelyUnwrapped
        io_uring_sqe_set_data64(q, tag.bits)
        return q
    }

    /// Multishot accept; accepted sockets are non-blocking (splice(2) on a
    /// blocking socket would wait inside the reactor).
    @inline(__always) func acceptMultishot(_ fd: Int32, _ tag: Tag) {
        io_uring_prep_multishot_accept(sqe(tag), fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
    }

    /// Multishot recv into buffers of the provided-buffer group.
    @inline(__always) func recvMultishot(_ fd: Int32, group: UInt16, _ tag: Tag) {
        edge_prep_recv_multishot(sqe(tag), fd, group)
    }

    /// One recv into a buffer of the provided-buffer group.
    @inline(__always) func recvOnce(_ fd: Int32, group: UInt16, _ tag: Tag) {
        edge_prep_recv_once(sqe(tag), fd, group)
    }

    @inline(__always) func sendmsg(_ fd: Int32, _ message: UnsafeMutablePointer<msghdr>, _ tag: Tag) {
        io_uring_prep_sendmsg(sqe(tag), fd, message, UInt32(MSG_NOSIGNAL))
    }

    @inline(__always) func connect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t, _ tag: Tag) {
        io_uring_prep_connect(sqe(tag), fd, address, length)
    }

    /// Readiness, reported on every change until cancelled.
    @inline(__always) func pollMultishot(_ fd: Int32, events: UInt32, _ tag: Tag) {
        io_uring_prep_poll_multishot(sqe(tag), fd, events)
    }

    /// Readiness, reported once.
    @inline(__always) func poll(_ fd: Int32, events: UInt32, _ tag: Tag) {
        io_uring_prep_poll_add(sqe(tag), fd, events)
    }

    /// Cancels the operation tagged `target`; its own completion carries `tag`.
    @inline(__always) func cancel(_ target: Tag, _ tag: Tag) {
        io_uring_prep_cancel64(sqe(tag), target.bits, 0)
    }
}

/// What a completion belongs to, packed into the 64-bit io_uring user_data:
/// op (8 bits) | socket slot (32 bits) | slot generation (24 bits).
enum Op: UInt8 {
    case accept = 1, recv, send, connect, cancel, pollIn, pollOut, udpRead, quicRead
}

struct UserData {
    @inline(__always) static func make(_ op: Op, _ slot: Int32, _ gen: UInt32) -> UInt64 {
        UInt64(op.rawValue) | (UInt64(UInt32(bitPattern: slot)) << 8) | (UInt64(gen & 0xFF_FFFF) << 40)
    }
    @inline(__always) static func op(_ v: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: v) }
    @inline(__always) static func slot(_ v: UInt64) -> Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: v >> 8)) }
    @inline(__always) static func gen(_ v: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: v >> 40) & 0xFF_FFFF }
}
