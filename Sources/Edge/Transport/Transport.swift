import CIOUring
import Glibc

/// How bytes cross one socket. Every byte Edge reads or writes on a connection
/// passes one of the seams below, so a record layer (TLS, DTLS) slots in as a
/// new case without touching the proxy logic:
/// - bytes in: `transportReceived` (after a recv completion),
/// - bytes out: `transportFlush` (before the send is submitted),
/// - one-shot writes outside the output queue: `transportWriteNow`,
///   `Transport.writeRefusal`,
/// - ending the write side: `transportShutdownWrite` (lingering close, relay half-close),
/// - zero-copy relaying: `transportCanSplice` (splice moves raw socket bytes,
///   which only a plain transport can hand over).
enum TransportKind: UInt8 {
    case plain
    /// OpenSSL over memory BIOs (Transport/TLS/TLSTransport.swift).
    case tls
}

enum Transport {
    /// Turns a connection away before it has a slot: a plain listener writes
    /// the one-shot answer straight to the fresh socket (its send buffer is
    /// empty, so this never blocks or splits), then ends the write side.
    static func writeRefusal(_ fd: Int32, _ kind: TransportKind, _ text: StaticString) {
        switch kind {
        case .plain:
            _ = send(fd, text.utf8Start, text.utf8CodeUnitCount, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
            shutdown(fd, Int32(SHUT_WR))
        case .tls:
            // No session yet, so no way to speak: just close.
            shutdown(fd, Int32(SHUT_WR))
        }
    }
}

extension Reactor {
    /// Bytes in: a received buffer joins the socket's input queue.
    @inline(__always) func transportReceived(_ slot: Int32, _ bid: Int32) {
        switch socks[Int(slot)].transport {
        case .plain: appendInput(slot, bid)
        case .tls: tlsReceived(slot, bid)
        }
    }

    /// Bytes out: the socket's queued output segments go to the kernel.
    @inline(__always) func transportFlush(_ slot: Int32) {
        switch socks[Int(slot)].transport {
        case .plain: submitSend(slot)
        case .tls: tlsFlush(slot)
        }
    }

    /// Writes bytes at once, ahead of anything queued (the PROXY header on a
    /// just-connected upstream, which precedes any record layer). True if all went out.
    func transportWriteNow(_ slot: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Bool {
        switch socks[Int(slot)].transport {
        case .plain: return send(socks[Int(slot)].fd, bytes, count, Int32(MSG_NOSIGNAL)) == count
        // Only upstream PROXY headers use this; upstream TLS is not built yet.
        case .tls: return false
        }
    }

    /// Ends our write side (after the last response, or when a relay's other
    /// side reached EOF); reading goes on.
    func transportShutdownWrite(_ slot: Int32) {
        switch socks[Int(slot)].transport {
        case .plain: shutdown(socks[Int(slot)].fd, Int32(SHUT_WR))
        case .tls: tlsShutdownWrite(slot)
        }
    }

    /// Whether the relay may splice this socket's bytes kernel-to-kernel.
    @inline(__always) func transportCanSplice(_ slot: Int32) -> Bool {
        switch socks[Int(slot)].transport {
        case .plain: return true
        case .tls: return false
        }
    }

    /// A send completed with `n` bytes (before its segments are released).
    @inline(__always) func transportSent(_ slot: Int32, _ n: Int32) {
        switch socks[Int(slot)].transport {
        case .plain: return
        case .tls: tlsSent(slot, n)
        }
    }

    /// Bytes the record layer holds that are not queued as segments yet.
    @inline(__always) func transportOutputPending(_ slot: Int32) -> Bool {
        switch socks[Int(slot)].transport {
        case .plain: return false
        case .tls: return tlsOutputPending(slot)
        }
    }

    /// The socket slot is being freed: drop the record layer's state.
    @inline(__always) func transportRelease(_ slot: Int32) {
        switch socks[Int(slot)].transport {
        case .plain: return
        case .tls: tlsRelease(slot)
        }
    }
}
