import CIOUring
import Glibc
import Protocols

/// One io_uring event loop on one pinned thread. It owns its ring, its sockets,
/// buffers, timers and upstream pools; nothing here is shared with other
/// threads except `stats` (relaxed atomics). The HTTP logic lives in
/// `Proxy/` as extensions; this file is the I/O plumbing.
final class Reactor {
    static let segmentsPerSlot = 16
    /// A socket whose input queue holds this many buffers stops reading (backpressure).
    static let maxQueuedBuffers: Int32 = 4

    let index: Int
    let publisher: SnapshotPublisher
    var lastPublication: UnsafeMutableRawPointer? = nil
    /// Live snapshots (see Snapshots.swift); `current` serves new requests.
    var views: UnsafeMutablePointer<SnapshotView>
    var viewCapacity = Reactor.initialViews
    var owned: [RouteTable?]
    var current: Int32 = -1
    let stats: WorkerStats
    let uring: UnsafeMutablePointer<io_uring>
    /// Where every submission is prepared (Ring.swift).
    let ring: Ring
    var buffers: BufferTable
    let wheel: TimerWheel
    let capacity: Int32
    let socks: UnsafeMutablePointer<Sock>
    /// Exchange table (see Exchange/ExchangeTable.swift), indexed by exchange id.
    let exchanges: UnsafeMutablePointer<Exchange>
    let freeExchangeIds: UnsafeMutablePointer<Int32>
    var freeExchangeCount: Int32 = 0
    var freshExchange: Int32 = 0
    let segments: UnsafeMutablePointer<Segment>
    let iovecs: UnsafeMutablePointer<iovec>
    let messages: UnsafeMutablePointer<msghdr>
    /// Client address as text (for X-Forwarded-For), 48 bytes per slot.
    let peerText: UnsafeMutablePointer<UInt8>
    private let freeSlots: UnsafeMutablePointer<Int32>
    private var freeCount: Int32 = 0
    var freshSlot: Int32 = 0
    /// Scratch table the parsers write header fields into (grown on adopting a snapshot).
    var headerTable: UnsafeMutableBufferPointer<HeaderField>
    /// Listening sockets this reactor accepts on, and the listener each maps to.
    let acceptFd: UnsafeMutablePointer<Int32>
    let acceptListener: UnsafeMutablePointer<Int32>
    let acceptArmed: UnsafeMutablePointer<Bool>
    var acceptCount = 0
    /// Sockets whose recv ran out of ring buffers, re-armed when buffers return.
    let starved: UnsafeMutablePointer<Int32>
    var starvedCount: Int32 = 0
    /// Connections whose request head trickles in (Reactor/PacedReads.swift).
    let pacedSlots: UnsafeMutablePointer<Int32>
    let pacedGens: UnsafeMutablePointer<UInt32>
    var pacedCount: Int32 = 0
    var nextPacedReadMs: Int64 = 0
    /// `runtime.trickle_read_interval` in ms; 0 = every packet is read as it arrives.
    let pacedReadIntervalMs: Int64
    var nowMs: Int64 = 0
    var draining = false
    var activeClients: Int32 = 0
    var requestIdSeed: UInt64
    var requestIdCounter: UInt64 = 0
    /// Empty pipes (read, write fd pairs) reused by splice relays.
    static let maxPooledPipes: Int32 = 256
    let pipePool: UnsafeMutablePointer<Int32>
    var pipeCount: Int32 = 0
    /// Addresses from PROXY headers, per client slot; scratch for writing one.
    let proxyAddresses: UnsafeMutablePointer<ProxyAddress>
    let proxyScratch: UnsafeMutableRawPointer
    /// ClientHello peek window and reassembly scratch (SNI routing), untouched until used.
    let helloPeek: UnsafeMutablePointer<UInt8> = lazyArray(Reactor.helloPeekBytes + Reactor.helloScratchBytes)
    /// UDP sessions: client address per slot, lookup table, one datagram buffer.
    let udpClients: UnsafeMutablePointer<sockaddr_storage>
    let udpClientLengths: UnsafeMutablePointer<socklen_t>
    let udpTable: UnsafeMutablePointer<Int32>
    let udpScratch: UnsafeMutableRawPointer
    var udpSessionCount = 0
    /// Accept slots holding UDP sockets (polled, not accepted on).
    let acceptDatagram: UnsafeMutablePointer<Bool>
    /// Connection limits shared with the other reactors.
    let admission: Admission
    /// Smoothed event-loop turn duration; above the limit new connections are shed.
    var loopLagUs: Int64 = 0
    let loopLagLimitUs: Int64
    /// TLS sessions by socket slot (Transport/TLS/).
    var tls: TLSTable
    /// Response compression encoders and their memory (Compression/Encoders.swift).
    var compression = CompressionWorker()
    /// Access-log and metrics records per exchange (Observability/ExchangeRecording.swift).
    var exchangeLog: ExchangeLog
    /// HTTP/2 tables, made on this worker's first HTTP/2 connection (HTTP2/H2Request.swift).
    var http2Storage: HTTP2Tables? = nil
    /// DTLS sessions and listen state, made on this worker's first DTLS datagram (Transport/DTLS/).
    var dtls: DTLSTables? = nil
    /// QUIC/HTTP/3 tables, made when this worker adopts its first http3 socket (HTTP3/QUICTables.swift).
    var quicStorage: QUICTables? = nil

    init(index: Int, publisher: SnapshotPublisher, runtime: RuntimeConfig, maxHeaderBytes: Int, stats: WorkerStats,
         admission: Admission) throws {
        self.index = index
        self.admission = admission
        loopLagLimitUs = Int64(runtime.maxLoopLagMs) * 1000
        pacedReadIntervalMs = Int64(runtime.trickleReadIntervalMs)
        self.publisher = publisher
        self.stats = stats
        views = .allocate(capacity: Reactor.initialViews)
        views.initialize(repeating: SnapshotView(), count: Reactor.initialViews)
        owned = Array(repeating: nil, count: Reactor.initialViews)
        acceptFd = .allocate(capacity: Reactor.maxAcceptSlots)
        acceptFd.initialize(repeating: -1, count: Reactor.maxAcceptSlots)
        acceptListener = .allocate(capacity: Reactor.maxAcceptSlots)
        acceptListener.initialize(repeating: 0, count: Reactor.maxAcceptSlots)
        acceptArmed = .allocate(capacity: Reactor.maxAcceptSlots)
        acceptArmed.initialize(repeating: false, count: Reactor.maxAcceptSlots)
        uring = .allocate(capacity: 1)
        uring.initialize(to: io_uring())
        // Preferred: one submitter, task work deferred to our own wait calls.
        var p = io_uring_params()
        p.flags = EDGE_SETUP_SINGLE_ISSUER | EDGE_SETUP_DEFER_TASKRUN | EDGE_SETUP_CQSIZE | EDGE_SETUP_SUBMIT_ALL
        p.cq_entries = 16384
        var rc = io_uring_queue_init_params(4096, uring, &p)
        if rc < 0 {
            // Older kernels: cooperative task running only.
            p = io_uring_params()
            p.flags = EDGE_SETUP_COOP_TASKRUN | EDGE_SETUP_CQSIZE
            p.cq_entries = 16384
            rc = io_uring_queue_init_params(4096, uring, &p)
        }
        if rc < 0 {
            p = io_uring_params()
            rc = io_uring_queue_init_params(4096, uring, &p)
        }
        if rc < 0 { throw ReactorError.system("io_uring_queue_init", -rc) }
        ring = Ring(uring: uring)

        capacity = Int32(max(64, runtime.maxConnectionsPerWorker) * 2)
        // Head buffers are sized once, at start: a reload may lower max_header_bytes
        // but heads beyond the startup maximum get 431.
        let headSize = maxHeaderBytes + 4096
        buffers = try BufferTable(uring: uring, ringCount: runtime.bufferCount, ringBufferSize: runtime.bufferSize,
                                  headCount: Int(capacity) * 2, headBufferSize: headSize)
        tls = TLSTable(capacity: Int(capacity))
        nowMs = Reactor.monotonicMs()
        wheel = TimerWheel(capacity: Int(capacity), nowMs: nowMs)
        socks = lazyArray(Int(capacity))
        exchanges = lazyArray(Int(capacity))
        freeExchangeIds = lazyArray(Int(capacity))
        segments = lazyArray(Int(capacity) * Reactor.segmentsPerSlot)
        iovecs = lazyArray(Int(capacity) * Reactor.segmentsPerSlot)
        messages = lazyArray(Int(capacity))
        peerText = lazyArray(Int(capacity) * 48)
        freeSlots = lazyArray(Int(capacity))
        starved = lazyArray(Int(capacity))
        pacedSlots = lazyArray(Int(capacity))
        pacedGens = lazyArray(Int(capacity))
        headerTable = .allocate(capacity: 1)
        pipePool = .allocate(capacity: Int(Reactor.maxPooledPipes) * 2)
        proxyAddresses = lazyArray(Int(capacity))
        proxyScratch = .allocate(byteCount: 2048, alignment: 8)
        udpClients = lazyArray(Int(capacity))
        udpClientLengths = lazyArray(Int(capacity))
        udpTable = .allocate(capacity: Reactor.udpTableSize)
        udpTable.initialize(repeating: -1, count: Reactor.udpTableSize)
        udpScratch = .allocate(byteCount: 65536, alignment: 16)
        acceptDatagram = .allocate(capacity: Reactor.maxAcceptSlots)
        acceptDatagram.initialize(repeating: false, count: Reactor.maxAcceptSlots)
        requestIdSeed = UInt64.random(in: 0...UInt64.max) ^ UInt64(index &* 0x9E37_79B9)
        exchangeLog = ExchangeLog(capacity: Int(capacity), telemetry: stats.telemetry)
    }

    /// CPU time of the calling thread, kernel work done on its behalf included
    /// (io_uring task work runs inside our waits with DEFER_TASKRUN).
    static func threadCPUUs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    /// Load shedding input: CPU spent on one loop turn (user code plus the
    /// kernel's completion work) is how long an event arriving at its start
    /// waits. Idle turns cost ~nothing; a saturated reactor's turns grow with
    /// the work queued per turn. The thread CPU clock is a real syscall (no
    /// vDSO), so it is read at most once per coarse-clock tick (~4 ms) and the
    /// window's CPU is spread over its turns: a trickling client that wakes
    /// the loop per byte must not pay a second syscall per wake-up.
    @inline(__always) func measureLoopLag(_ window: inout LoopLagWindow) {
        window.turns &+= 1
        if nowMs == window.startMs { return }
        let cpu = Reactor.threadCPUUs()
        let perTurn = (cpu - window.startCPUUs) / Int64(max(window.turns, 1))
        loopLagUs = (loopLagUs * 3 + perTurn) / 4
        window = LoopLagWindow(startMs: nowMs, startCPUUs: cpu, turns: 0)
        stats.loopLagUs.store(Int(loopLagUs), ordering: .relaxed)
    }

    static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    // MARK: Loop

    func run() {
        pollSnapshot()
        guard current >= 0 else { stats.state.store(3, ordering: .releasing); return }
        stats.state.store(1, ordering: .releasing)
        let batch = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 512)
        var wait = __kernel_timespec(tv_sec: 0, tv_nsec: 10_000_000)
        var drainDeadline: Int64 = 0
        var lagWindow = LoopLagWindow(startMs: Reactor.monotonicMs(), startCPUUs: Reactor.threadCPUUs(), turns: 0)
        while true {
            var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
            _ = io_uring_submit_and_wait_timeout(uring, &cqe, 1, &wait, nil)
            nowMs = Reactor.monotonicMs()
            while true {
                let n = Int(io_uring_peek_batch_cqe(uring, batch, 512))
                if n == 0 { break }
                for i in 0..<n { if let c = batch[i] { dispatch(c) } }
                io_uring_cq_advance(uring, UInt32(n))
                buffers.publish()
                if n < 512 { break }
            }
            buffers.publish()
            pollSnapshot()
            wheel.advance(nowMs: nowMs) { self.timerFired($0) }
            if starvedCount > 0 { rearmStarved() }
            if pacedCount > 0 && nowMs >= nextPacedReadMs { pacedReadPass() }
            if loopLagLimitUs > 0 { measureLoopLag(&lagWindow) }
            if stats.stop.load(ordering: .relaxed) { break }
            if !draining && stats.drain.load(ordering: .relaxed) {
                beginDrain()
                drainDeadline = nowMs
            }
            if draining && activeClients == 0 { break }
            _ = drainDeadline
        }
        stats.state.store(2, ordering: .releasing)
    }

    // MARK: Submission helpers

    /// Tag of operation `op` on socket `slot` in its current generation.
    @inline(__always) func tag(_ op: Op, _ slot: Int32) -> Tag {
        Tag(op, SlotID(raw: slot), gen: socks[Int(slot)].gen)
    }

    /// Cancels `op` on `slot`; the cancellation counts as one more operation in flight.
    func cancelOp(_ op: Op, _ slot: Int32) {
        ring.cancel(tag(op, slot), tag(.cancel, slot))
        socks[Int(slot)].ops += 1
    }

    func armAccept(_ i: Int) {
        ring.acceptMultishot(acceptFd[i], Tag(.accept, acceptSlot: i))
        acceptArmed[i] = true
    }

    @inline(__always) func armRecv(_ slot: Int32) {
        ring.recvMultishot(socks[Int(slot)].fd, group: buffers.groupId, tag(.recv, slot))
        socks[Int(slot)].ops += 1
        socks[Int(slot)].recv = .armed
    }

    func cancelRecv(_ slot: Int32) {
        cancelOp(.recv, slot)
        socks[Int(slot)].recv = .cancelling
    }

    /// Reads while the socket has room in its input queue; stops (cancels the
    /// multishot recv) when the other side is not keeping up.
    @inline(__always) func updateRecv(_ slot: Int32) {
        let s = socks[Int(slot)]
        if s.closing || s.eof || s.relayPending || s.relay || s.paced { return }
        let want = s.inBuffers < Reactor.maxQueuedBuffers
        if want && s.recv == .idle && !s.starved { armRecv(slot) }
        else if !want && s.recv == .armed {
            cancelRecv(slot)
            // Edge, not the client, is holding the body back: excuse this rate window.
            if s.kind == .client && s.exchange >= 0 { exchanges[Int(s.exchange)].bodyWindowPaused = true }
        }
    }

    func rearmStarved() {
        var i: Int32 = 0
        while i < starvedCount && buffers.ringAvailable > 8 {
            let slot = starved[Int(i)]
            socks[Int(slot)].starved = false
            if socks[Int(slot)].kind != .free { updateRecv(slot) }
            i += 1
        }
        if i > 0 {
            let left = starvedCount - i
            if left > 0 { (starved).update(from: starved + Int(i), count: Int(left)) }
            starvedCount = left
        }
    }

    // MARK: Slots

    func allocSlot(_ kind: SockKind, fd: Int32) -> Int32 {
        var slot: Int32
        if freeCount > 0 { freeCount -= 1; slot = freeSlots[Int(freeCount)] }
        else if freshSlot < capacity { slot = freshSlot; freshSlot += 1; socks[Int(slot)] = Sock() }
        else { return -1 }
        let gen = socks[Int(slot)].gen
        socks[Int(slot)] = Sock()
        socks[Int(slot)].gen = gen
        socks[Int(slot)].kind = kind
        socks[Int(slot)].fd = fd
        return slot
    }

    /// Starts closing a socket: no more reads or writes; pending operations are
    /// woken by shutdown() and the slot is freed when the last one completes.
    func closeSock(_ slot: Int32) {
        let i = Int(slot)
        if socks[i].closing || socks[i].kind == .free { return }
        socks[i].closing = true
        wheel.cancel(slot)
        socks[i].timer = .none
        if socks[i].kind == .client {
            activeClients -= 1
            stats.bump(stats.activeConnections, -1)
            releaseAdmission(&socks[i].admission)
        }
        if socks[i].kind == .upstream && socks[i].pooled { poolRemove(slot) }
        if socks[i].kind == .udpSession { udpRemove(slot); if dtls != nil { dtlsSessionClosing(slot) } }
        let fd = socks[i].fd
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
        if socks[i].recv == .armed { cancelRecv(slot) }
        if socks[i].pollArmed { cancelOp(.pollIn, slot) }
        if socks[i].pollOutArmed { cancelOp(.pollOut, slot) }
        if socks[i].kind == .upstream && !socks[i].connected && socks[i].ops > 0 { cancelOp(.connect, slot) }
        releaseInput(slot)
        if !socks[i].sendInFlight { releaseSegments(slot) }
        if socks[i].http2 { h2ConnectionClosing(slot) }
        if socks[i].kind == .client { obsEnd(Int(socks[i].exchange)); releaseExchangeBuffers(slot); endExchangeView(slot) }
        maybeFree(slot)
    }

    @inline(__always) func maybeFree(_ slot: Int32) {
        let i = Int(slot)
        guard socks[i].closing && socks[i].ops == 0 && socks[i].kind != .free else { return }
        releaseSegments(slot)
        releaseInput(slot)
        if socks[i].outBuf >= 0 { buffers.release(socks[i].outBuf); socks[i].outBuf = -1 }
        releasePipe(slot)
        transportRelease(slot)
        if socks[i].fd >= 0 { close(socks[i].fd) }
        if socks[i].kind == .upstream { upstreamSlotFreed(slot) }
        if socks[i].kind == .upstream || socks[i].kind == .udpSession { let v = socks[i].view; socks[i].view = -1; releaseView(ViewID(raw: v)) }
        if socks[i].kind == .client { freeExchange(ExchangeID(raw: socks[i].exchange)) }
        socks[i].exchange = -1
        socks[i].fd = -1
        socks[i].kind = .free
        socks[i].closing = false
        socks[i].gen = (socks[i].gen &+ 1) & 0xFF_FFFF
        freeSlots[Int(freeCount)] = slot
        freeCount += 1
    }

    // MARK: Completions

    @inline(__always) func dispatch(_ cqe: UnsafeMutablePointer<io_uring_cqe>) {
        let ud = cqe.pointee.user_data
        let res = cqe.pointee.res
        let flags = cqe.pointee.flags
        let op = UserData.op(ud)
        let slot = UserData.slot(ud)
        if op == Op.accept.rawValue { onAccept(Int(slot), res, flags); return }
        if op == Op.quicRead.rawValue { onQUICReadable(Int(slot), res, more: flags & EDGE_CQE_F_MORE != 0); return }
        if op == Op.udpRead.rawValue { onUDPListenerReadable(Int(slot), res, more: flags & EDGE_CQE_F_MORE != 0); return }
        let hasBuffer = flags & EDGE_CQE_F_BUFFER != 0
        let more = flags & EDGE_CQE_F_MORE != 0
        guard slot >= 0, slot < capacity, socks[Int(slot)].kind != .free, socks[Int(slot)].gen == UserData.gen(ud) else {
            if hasBuffer { buffers.recycleUnowned(Int32(flags >> EDGE_CQE_BUFFER_SHIFT)) }
            return
        }
        let i = Int(slot)
        trace("w\(index) cqe op=\(op) slot=\(slot) res=\(res) more=\(more) kind=\(socks[i].kind) ops=\(socks[i].ops)")
        if !((op == Op.recv.rawValue || op == Op.pollIn.rawValue) && more) { socks[i].ops -= 1 }
        switch op {
        case Op.recv.rawValue: onRecv(slot, res, flags, hasBuffer: hasBuffer, more: more)
        case Op.send.rawValue: onSend(slot, res)
        case Op.connect.rawValue: onConnect(slot, res)
        case Op.pollIn.rawValue: onPollIn(slot, res, more: more)
        case Op.pollOut.rawValue: onPollOut(slot, res)
        case Op.cancel.rawValue:
            // -EALREADY: the recv was mid-completion (its wakeup queued as task
            // work) and stays armed; ask again or it would never end.
            if res == -EALREADY && socks[i].recv == .cancelling { cancelRecv(slot) }
        default: break
        }
        if socks[i].closing { maybeFree(slot) }
    }

    func onAccept(_ l: Int, _ res: Int32, _ flags: UInt32) {
        guard l >= 0 && l < acceptCount else { if res >= 0 { close(res) }; return }
        if flags & EDGE_CQE_F_MORE == 0 {
            acceptArmed[l] = false
            if !draining && acceptFd[l] >= 0 && res != -ECANCELED && res != -EBADF { armAccept(l) }
        }
        guard res >= 0 else { return }
        let fd = res
        // After an upgrade hand-over a connection accepted while the accept was being cancelled is served (Connection: close), not dropped.
        if draining && !BinaryUpgrade.gentleDrain.load(ordering: .relaxed) { close(fd); return }
        let settings = acceptSettings(l)
        var peer = sockaddr_storage()
        var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &peerLength) }
        }
        if named != 0 { peerLength = 0 }
        var ticket = AdmissionTicket()
        if let why = admit(settings, peer: &peer, peerLength: peerLength, ticket: &ticket) {
            refuse(fd, why, http: !settings.isStream)
            return
        }
        let slot = allocSlot(.client, fd: fd)
        if slot < 0 {
            releaseAdmission(&ticket)
            refuse(fd, .tableFull, http: !settings.isStream)
            return
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        socks[Int(slot)].acceptSlot = UInt8(l)
        socks[Int(slot)].admission = ticket
        recordPeerAddress(slot, &peer, peerLength)
        activeClients += 1
        stats.bump(stats.accepted)
        stats.bump(stats.activeConnections)
        // Same capacity as the socket table and one exchange per connection: cannot
        // fail today; if it ever does, the connection closes rather than trap.
        if allocExchange(client: slot) == nil { closeSock(slot); return }
        let l = listenerSettings(slot)
        if l.tlsContext != nil {
            // HTTPS and TLS relays: the handshake comes first, under its own timeout.
            if l.isStream { startTLSStream(slot, l); return }
            guard startTLS(slot, l) else { closeSock(slot); return }
            beginTLSHandshake(slot, l)
            return
        }
        // TCP listeners start without the buffer ring (splice, or a PROXY/SNI peek first).
        if l.isStream { startStream(slot); return }
        armRecv(slot)
        if l.acceptsProxyProtocol {
            socks[Int(slot)].proxyHeaderPending = true
            scheduleTimer(slot, .proxyHeader, afterMs: Int64(l.proxyHeaderTimeoutMs))
            return
        }
        // Until the first request head is complete the header timeout applies
        // (a connection that sends nothing is a slowloris too).
        scheduleTimer(slot, .clientHeader, afterMs: Int64(l.headerTimeoutMs))
    }

    /// Settings of the listener behind accept slot `a` in the current snapshot.
    private func acceptSettings(_ a: Int) -> CompiledListener {
        let li = Int(acceptListener[a])
        let v = views[Int(current)]
        return li < v.listeners.count ? v.listeners[li] : v.listeners[0]
    }

    private func recordPeerAddress(_ slot: Int32, _ ss: inout sockaddr_storage, _ len: socklen_t) {
        let text = UnsafeMutableRawBufferPointer(start: peerText + Int(slot) * 48, count: 48)
        socks[Int(slot)].peerAddrLength = len > 0 ? UInt8(ss.writeIPText(into: text)) : 0
    }

    @inline(__always) func onRecv(_ slot: Int32, _ res: Int32, _ flags: UInt32, hasBuffer: Bool, more: Bool) {
        let i = Int(slot)
        if !more { socks[i].recv = .idle }
        if res > 0 && hasBuffer {
            let bid = Int32(flags >> EDGE_CQE_BUFFER_SHIFT)
            buffers.received(bid, length: res)
            if res < Reactor.tinyReadBytes && socks[i].tinyReads < 255 { socks[i].tinyReads += 1 }
            if socks[i].closing { buffers.release(bid); return }
            transportReceived(slot, bid)
        } else {
            if hasBuffer { buffers.recycleUnowned(Int32(flags >> EDGE_CQE_BUFFER_SHIFT)) }
            if socks[i].closing { return }
            if res == 0 { socks[i].eof = true }
            else if res == -ENOBUFS {
                // Bounded: a freed slot's stale entry stays listed, so a reused slot can
                // be listed twice; never write past the `capacity` entries.
                if !socks[i].starved && starvedCount < capacity {
                    socks[i].starved = true; starved[Int(starvedCount)] = slot; starvedCount += 1
                }
                return
            } else if res == -ECANCELED {
                if socks[i].relayPending { checkRelayReady(slot) } else { updateRecv(slot) }
                return
            } else if res < 0 { socks[i].eof = true; socks[i].readError = -res }
        }
        if socks[i].relayPending { checkRelayReady(slot) }
        else if socks[i].stream.copying { copyRelayReadable(slot) }
        else if socks[i].isStream { streamReadable(slot) }
        else if socks[i].kind == .client { clientReadable(slot) } else { upstreamReadable(slot) }
        if !socks[i].closing && socks[i].kind != .free { updateRecv(slot) }
    }

    /// Queues a received buffer; a small read that fits behind the previous
    /// buffer is copied there so a trickling client holds one buffer, not many.
    @inline(__always) func appendInput(_ slot: Int32, _ bid: Int32) {
        let i = Int(slot)
        let tail = socks[i].inTail
        if tail >= 0 && buffers.refs[Int(tail)] == 1 {
            let n = buffers.count(bid)
            let room = buffers.capacity(tail) - buffers.end[Int(tail)]
            if n <= room && n <= 4096 {
                (buffers.pointer(tail) + Int(buffers.end[Int(tail)])).copyMemory(from: buffers.pointer(bid), byteCount: Int(n))
                buffers.end[Int(tail)] += n
                buffers.release(bid)
                return
            }
        }
        buffers.next[Int(bid)] = -1
        if tail >= 0 { buffers.next[Int(tail)] = bid } else { socks[i].inHead = bid }
        socks[i].inTail = bid
        socks[i].inBuffers += 1
    }

    /// Drops `n` bytes from the front of a socket's input queue.
    @inline(__always) func consumeInput(_ slot: Int32, _ n: Int) {
        var left = Int32(truncatingIfNeeded: n)
        let i = Int(slot)
        while left > 0 {
            let h = socks[i].inHead
            if h < 0 { return }
            let c = buffers.count(h)
            if left >= c {
                left -= c
                popInput(slot)
            } else {
                buffers.start[Int(h)] += left
                left = 0
            }
        }
        // Drop empty buffers at the front (a fully consumed head).
        while socks[i].inHead >= 0 && buffers.count(socks[i].inHead) == 0 { popInput(slot) }
    }

    @inline(__always) func popInput(_ slot: Int32) {
        let i = Int(slot)
        let h = socks[i].inHead
        let n = buffers.next[Int(h)]
        socks[i].inHead = n
        if n < 0 { socks[i].inTail = -1 }
        socks[i].inBuffers -= 1
        buffers.release(h)
    }

    func releaseInput(_ slot: Int32) {
        while socks[Int(slot)].inHead >= 0 { popInput(slot) }
    }

    /// Makes the start of the input queue contiguous (copying into a head
    /// buffer) when a head spans several recv buffers. False if no head buffer is free.
    func linearizeInput(_ slot: Int32) -> Bool {
        let i = Int(slot)
        var src = socks[i].inHead
        if src < 0 || buffers.next[Int(src)] < 0 { return true }
        let dst: Int32
        if !buffers.isRing(src) && buffers.refs[Int(src)] == 1 {
            dst = src
            let s = Int(buffers.start[Int(dst)])
            if s > 0 {
                let n = Int(buffers.count(dst))
                buffers.pointer(dst).copyMemory(from: buffers.pointer(dst) + s, byteCount: n)
                buffers.start[Int(dst)] = 0; buffers.end[Int(dst)] = Int32(n)
            }
            src = buffers.next[Int(dst)]
        } else {
            dst = buffers.takeHead()
            if dst < 0 { return false }
            buffers.next[Int(dst)] = src
            socks[i].inHead = dst
            socks[i].inBuffers += 1
        }
        while src >= 0 {
            let room = buffers.capacity(dst) - buffers.end[Int(dst)]
            if room == 0 { break }
            let n = min(room, buffers.count(src))
            (buffers.pointer(dst) + Int(buffers.end[Int(dst)])).copyMemory(
                from: buffers.pointer(src) + Int(buffers.start[Int(src)]), byteCount: Int(n))
            buffers.end[Int(dst)] += n
            buffers.start[Int(src)] += n
            if buffers.count(src) > 0 { break }
            let nx = buffers.next[Int(src)]
            buffers.next[Int(dst)] = nx
            if socks[i].inTail == src { socks[i].inTail = dst }
            socks[i].inBuffers -= 1
            buffers.release(src)
            src = nx
        }
        if buffers.next[Int(dst)] < 0 { socks[i].inTail = dst }
        return true
    }

    // MARK: Output

    @inline(__always) func segmentRoom(_ slot: Int32) -> Int {
        Reactor.segmentsPerSlot - Int(socks[Int(slot)].segCount)
    }

    /// Queues bytes to send; `id >= 0` takes a reference on that buffer.
    @inline(__always) func enqueue(_ slot: Int32, _ pointer: UnsafeRawPointer, _ length: Int, id: Int32) {
        if length <= 0 { return }
        let i = Int(slot)
        let k = (Int(socks[i].segFirst) + Int(socks[i].segCount)) & (Reactor.segmentsPerSlot - 1)
        segments[i * Reactor.segmentsPerSlot + k] = Segment(pointer: pointer, length: Int32(truncatingIfNeeded: length), id: id)
        socks[i].segCount += 1
        if id >= 0 { buffers.retain(id) }
    }

    /// Sends what is queued on `slot` (through its transport).
    @inline(__always) func flush(_ slot: Int32) { transportFlush(slot) }

    /// Submits one sendmsg over the queued segments (plain transport).
    @inline(__always) func submitSend(_ slot: Int32) {
        let i = Int(slot)
        trace("w\(index) flush slot=\(slot) segs=\(socks[i].segCount) inflight=\(socks[i].sendInFlight) closing=\(socks[i].closing)")
        if socks[i].sendInFlight || socks[i].segCount == 0 || socks[i].closing { return }
        if socks[i].kind == .upstream && !socks[i].connected { return }
        let base = i * Reactor.segmentsPerSlot
        let n = Int(socks[i].segCount)
        for k in 0..<n {
            let seg = segments[base + ((Int(socks[i].segFirst) + k) & (Reactor.segmentsPerSlot - 1))]
            iovecs[base + k] = iovec(iov_base: UnsafeMutableRawPointer(mutating: seg.pointer), iov_len: Int(seg.length))
        }
        messages[i] = msghdr()
        messages[i].msg_iov = iovecs + base
        messages[i].msg_iovlen = n
        ring.sendmsg(socks[i].fd, messages + i, tag(.send, slot))
        socks[i].ops += 1
        socks[i].sendInFlight = true
    }

    func onSend(_ slot: Int32, _ res: Int32) {
        let i = Int(slot)
        socks[i].sendInFlight = false
        if socks[i].closing { releaseSegments(slot); return }
        if res < 0 {
            socks[i].readError = -res
            if socks[i].stream.copying { relayClose(slot); return }
            if socks[i].kind == .client { clientFailed(slot) } else { upstreamFailed(slot, sendError: -res) }
            return
        }
        transportSent(slot, res)
        var left = Int32(res)
        while left > 0 && socks[i].segCount > 0 {
            let k = i * Reactor.segmentsPerSlot + Int(socks[i].segFirst)
            if left >= segments[k].length {
                left -= segments[k].length
                if segments[k].id >= 0 { buffers.release(segments[k].id) }
                socks[i].segFirst = UInt8((Int(socks[i].segFirst) + 1) & (Reactor.segmentsPerSlot - 1))
                socks[i].segCount -= 1
            } else {
                segments[k].pointer = segments[k].pointer.map { $0 + Int(left) }
                segments[k].length -= left
                left = 0
            }
        }
        if socks[i].segCount > 0 || transportOutputPending(slot) { flush(slot) }
        if socks[i].relayPending { checkRelayReady(slot); return }
        if socks[i].stream.copying { copyRelaySent(slot); return }
        if socks[i].kind == .client { clientWritable(slot) } else { upstreamWritable(slot) }
    }

    func releaseSegments(_ slot: Int32) {
        let i = Int(slot)
        while socks[i].segCount > 0 {
            let k = i * Reactor.segmentsPerSlot + Int(socks[i].segFirst)
            if segments[k].id >= 0 { buffers.release(segments[k].id) }
            socks[i].segFirst = UInt8((Int(socks[i].segFirst) + 1) & (Reactor.segmentsPerSlot - 1))
            socks[i].segCount -= 1
        }
    }

    // MARK: Timers

    @inline(__always) func scheduleTimer(_ slot: Int32, _ kind: TimerKind, afterMs: Int64) {
        socks[Int(slot)].timer = kind
        wheel.schedule(slot, atMs: nowMs + afterMs)
    }

    @inline(__always) func cancelTimer(_ slot: Int32) {
        socks[Int(slot)].timer = .none
        wheel.cancel(slot)
    }

    // MARK: Drain

    func beginDrain() {
        draining = true
        for a in 0..<acceptCount where acceptFd[a] >= 0 { stopAccept(a) }
        // Idle keep-alive connections close now; busy ones after their response.
        var slot: Int32 = 0
        while slot < freshSlot {
            let s = socks[Int(slot)]
            if s.http2 && !s.closing { h2Drain(slot) }  // GOAWAY NO_ERROR; closes once its streams end
            else if s.kind == .client && !s.closing && s.exchange >= 0 && exchanges[Int(s.exchange)].phase == .readingHead && s.inHead < 0 && s.segCount == 0 {
                if BinaryUpgrade.gentleDrain.load(ordering: .relaxed) {
                    // Upgrade: a request already on its way gets its answer (with Connection: close); silent ones close after the grace.
                    cancelTimer(slot)
                    scheduleTimer(slot, .clientIdle, afterMs: BinaryUpgrade.idleGraceMs)
                } else {
                    closeSock(slot)
                }
            } else if s.kind == .upstream && s.pooled {
                closeSock(slot)
            }
            slot += 1
        }
    }
}

/// Zero-filled memory straight from mmap: untouched pages cost no RSS, so
/// large slabs are free until connections actually use them.
func lazyArray<T>(_ count: Int) -> UnsafeMutablePointer<T> {
    let bytes = max(count, 1) * MemoryLayout<T>.stride
    let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let p, p != MAP_FAILED else {
        return UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
    }
    return p.bindMemory(to: T.self, capacity: max(count, 1))
}

/// The loop turns since the thread CPU clock was last read (see `measureLoopLag`).
struct LoopLagWindow {
    var startMs: Int64
    var startCPUUs: Int64
    var turns: Int32
}
