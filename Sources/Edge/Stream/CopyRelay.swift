import CIOUring
import Glibc
import Protocols

/// Per-socket state of a TCP relay beyond the splice fields in `Sock`.
struct StreamRelayState {
    /// SNI-routed listener: waiting for the whole ClientHello (SNIRouting.swift).
    var sniPending = false
    /// Peeked bytes needed before the ClientHello is parsed again.
    var sniNeed: Int32 = 0
    /// Relaying through user space: multishot recv into ring buffers, sendmsg of those buffers.
    var copying = false
    /// `relay: auto`: switch to splice after this many bytes of back-to-back
    /// full-buffer reads in one direction (0 = never).
    var spliceAfter: Int32 = 0
    /// Bytes of the current run of full-buffer reads.
    var bulkBytes: Int32 = 0
}

/// The user-space copy relay for TCP listeners (and, later, TLS relays, whose
/// bytes cannot be spliced). Each side has a multishot recv into the reactor's
/// provided-buffer ring; a received buffer is queued as a send segment on the
/// other side by reference (no copy, no allocation) and sent with sendmsg.
/// Backpressure is the ordinary one: a side whose peer has 16 segments queued
/// keeps its buffers in its input queue, and at 4 queued buffers its recv is
/// cancelled until the peer's sends complete.
///
/// Choosing copy or splice (`tcp: { relay: auto|copy|splice, splice_after }`):
/// small request/response traffic (Redis, Postgres, TLS records of an API)
/// costs one recv completion and one send per message in copy mode, against a
/// readiness completion plus two splice calls (and pipe bookkeeping) in splice
/// mode, so copy wins there. Bulk transfers fill every 16 KiB ring buffer, and
/// there splice wins (no user-space copy in and out of the kernel). `auto`
/// starts in copy mode and, once one direction has read `splice_after` bytes
/// (default 64 KiB) in consecutive full-buffer reads, hands the connection to
/// the splice relay for good (`beginRelay` flushes what is queued first).
extension Reactor {
    /// Both sides connected: start relaying in the listener's mode. A record
    /// layer on either side (TLS) cannot be spliced: such relays always copy.
    func startStreamRelay(_ c: Int32, _ u: Int32, _ settings: CompiledRelaySettings) {
        let spliceable = transportCanSplice(c) && transportCanSplice(u)
        switch settings.mode {
        case .splice where spliceable:
            startSplice(c, u)
        case .splice, .copy:
            startCopyRelay(c, u, spliceAfter: 0)
        case .auto:
            startCopyRelay(c, u, spliceAfter: spliceable ? settings.spliceAfterBytes : 0)
        }
    }

    /// Starts copying between two connected sockets (also the entry point for
    /// relays whose transports cannot splice, e.g. `protocol: tls` listeners).
    func startCopyRelay(_ a: Int32, _ b: Int32, spliceAfter: Int32) {
        stats.bump(stats.relayCopyStarted)
        socks[Int(a)].peer = b
        socks[Int(b)].peer = a
        for s in [a, b] {
            let i = Int(s)
            socks[i].stream.copying = true
            socks[i].stream.spliceAfter = spliceAfter
            socks[i].stream.bulkBytes = 0
            // A readiness poll (PROXY header or ClientHello peek) is no longer needed.
            if socks[i].pollArmed { cancelOp(.pollIn, s) }
        }
        // Input queued before the relay (plaintext decrypted with the TLS
        // handshake, bytes behind a 101 head) goes first; each pump re-arms recv.
        for s in [a, b] where !socks[Int(s)].closing && socks[Int(s)].stream.copying { copyRelayPump(s) }
    }

    /// Input arrived on `s` (its buffers are queued on it): pass them on.
    func copyRelayReadable(_ s: Int32) {
        let i = Int(s)
        if socks[i].readError != 0 { relayClose(s); return }
        copyRelayPump(s)
    }

    /// A send on `s` completed: room for more of its peer's input.
    func copyRelaySent(_ s: Int32) {
        let p = socks[Int(s)].peer
        if p >= 0 { copyRelayPump(p) } else { relayClose(s) }
    }

    /// Moves `s`'s queued input to its peer's send queue, handles the half-close
    /// and the switch to splice.
    private func copyRelayPump(_ s: Int32) {
        let i = Int(s)
        let p = socks[i].peer
        guard p >= 0, socks[i].stream.copying, !socks[i].closing, !socks[Int(p)].closing else { return }
        var moved = false
        var bulk = false
        while socks[i].inHead >= 0 && segmentRoom(p) > 0 {
            let h = socks[i].inHead
            let n = buffers.count(h)
            if n > 0 {
                enqueue(p, buffers.pointer(h) + Int(buffers.start[Int(h)]), Int(n), id: h)
                socks[i].relayedBytes &+= UInt64(n)
                moved = true
                if n >= buffers.ringBufferSize {
                    socks[i].stream.bulkBytes &+= n
                    bulk = true
                } else {
                    socks[i].stream.bulkBytes = 0
                }
            }
            popInput(s)
        }
        if moved {
            flush(p)
            let c = socks[i].kind == .client ? s : p
            scheduleTimer(c, .relayIdle, afterMs: Int64(streamIdleMs(c)))
        }
        // Half-close: this side ended and everything it sent went out.
        if socks[i].eof && socks[i].inHead < 0 && socks[Int(p)].segCount == 0 && !socks[Int(p)].sendInFlight
            && !socks[Int(p)].writeShut {
            socks[Int(p)].writeShut = true
            transportShutdownWrite(p)
        }
        if socks[i].writeShut && socks[Int(p)].writeShut { relayClose(s); return }
        let after = socks[i].stream.spliceAfter
        if bulk && after > 0 && socks[i].stream.bulkBytes >= after
            && transportCanSplice(s) && transportCanSplice(p) {
            switchToSplice(s, p)
            return
        }
        updateRecv(s)
    }

    /// `relay: auto` saw a bulk transfer: stop copying; once both sides' queued
    /// bytes are flushed, the splice relay takes over (TCPRelay.swift).
    private func switchToSplice(_ a: Int32, _ b: Int32) {
        stats.bump(stats.relaySpliceSwitches)
        for s in [a, b] {
            socks[Int(s)].stream.copying = false
            socks[Int(s)].relayPending = true
            if socks[Int(s)].recv == .armed { cancelRecv(s) }
        }
        checkRelayReady(a)
    }
}
