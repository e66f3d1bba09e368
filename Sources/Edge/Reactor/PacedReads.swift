/// Paced reads for trickling request heads.
///
/// A client that sends its request head a few bytes per packet (a slow
/// network, or a slowloris-style attacker) costs a wake-up and a completion
/// per packet when every packet is read as it arrives. Once a head has taken
/// `paceAfterTinyReads` reads under `tinyReadBytes` bytes, its multishot recv
/// is cancelled and the connection is read with one single-shot recv per
/// `runtime.trickle_read_interval` (default 10 ms): the bytes wait in the
/// socket's receive queue and arrive together, and all paced connections share
/// the reactor's wake-up. The header timeout still bounds the whole head. When
/// the head completes, the connection goes back to reading as data arrives.
/// Legitimate clients send a head in one or a few segments and never get here.
extension Reactor {
    /// A read this small counts as trickling.
    static let tinyReadBytes: Int32 = 128
    /// Tiny reads within one incomplete head before it is paced.
    static let paceAfterTinyReads: UInt8 = 16

    func startPacedReads(_ c: Int32) {
        guard pacedReadIntervalMs > 0 else { return }
        let i = Int(c)
        if !socks[i].pacedListed {
            guard pacedCount < capacity else { return }
            pacedSlots[Int(pacedCount)] = c
            pacedGens[Int(pacedCount)] = socks[i].gen
            pacedCount += 1
            socks[i].pacedListed = true
        }
        socks[i].paced = true
        stats.bump(stats.pacedHeads)
        if socks[i].recv == .armed { cancelRecv(c) }
        if pacedCount == 1 { nextPacedReadMs = nowMs + pacedReadIntervalMs }
    }

    /// Once per interval: one recv for every paced connection that has none in
    /// flight; connections no longer paced (head complete, closed) leave the list.
    func pacedReadPass() {
        nextPacedReadMs = nowMs + pacedReadIntervalMs
        var kept: Int32 = 0
        for k in 0..<Int(pacedCount) {
            let slot = pacedSlots[k]
            let i = Int(slot)
            guard socks[i].gen == pacedGens[k], socks[i].kind != .free else { continue }
            guard socks[i].paced, !socks[i].closing else { socks[i].pacedListed = false; continue }
            if socks[i].recv == .idle && !socks[i].eof && !socks[i].starved && socks[i].inBuffers < Reactor.maxQueuedBuffers {
                ring.recvOnce(socks[i].fd, group: buffers.groupId, tag(.recv, slot))
                socks[i].ops += 1
                socks[i].recv = .armed
            }
            pacedSlots[Int(kept)] = slot
            pacedGens[Int(kept)] = pacedGens[k]
            kept += 1
        }
        pacedCount = kept
    }
}
