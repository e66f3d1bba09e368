import Protocols

/// Which side of the proxy a socket slot serves.
/// `quic`: a QUIC connection (HTTP3/); the slot holds its timer, no socket.
enum SockKind: UInt8 { case free, client, upstream, udpSession, quic }

/// State of a socket's multishot recv.
enum RecvState: UInt8 { case idle, armed, cancelling }

/// What a timer on this slot means when it fires.
enum TimerKind: UInt8 {
    case none
    case clientIdle, clientHeader, clientBody, clientLinger
    case upstreamConnect, upstreamResponse, upstreamBody, upstreamIdle
    /// A retry waits out its backoff before connecting (Upstream/Retries.swift).
    case upstreamBackoff
    /// L4 relay: no bytes either way for the listener's idle timeout.
    case relayIdle
    /// Waiting for the PROXY protocol header (listeners with proxy_protocol: accept).
    case proxyHeader
    /// UDP session without datagrams for the listener's session_timeout.
    case udpIdle
    /// SNI-routed TCP listener waiting for the whole ClientHello.
    case sniPeek
    /// TLS handshake not finished within the listener's handshake_timeout.
    case tlsHandshake
    /// A coalesced cache miss: woken by its leader, or waited coalesce_timeout.
    case cacheWait
    /// DTLS handshake: the next retransmission or the handshake deadline (Stream/DTLSRelay.swift).
    case dtlsHandshake
}

/// A slice to send: bytes of a buffer-table id (holding one reference), or
/// static bytes owned by the route table snapshot (`id == -1`).
struct Segment {
    var pointer: UnsafeRawPointer?
    var length: Int32
    var id: Int32
}

/// One connection (client or upstream) owned by a reactor. Plain data in a slab,
/// indexed by slot; no references, so touching it costs no ARC.
struct Sock {
    var fd: Int32 = -1
    var gen: UInt32 = 0
    var kind: SockKind = .free
    /// Record layer between the buffer queues and the socket (see Transport/).
    var transport: TransportKind = .plain
    var closing = false
    /// io_uring operations in flight; the slot is freed only when this is 0.
    var ops: Int32 = 0
    var recv: RecvState = .idle
    /// Peer shut down its write side (recv returned 0) or errored.
    var eof = false
    var readError: Int32 = 0
    var sendInFlight = false
    /// Recv got ENOBUFS: re-arm once ring buffers come back.
    var starved = false
    // Input queue (intrusive list through BufferTable.next).
    var inHead: Int32 = -1
    var inTail: Int32 = -1
    var inBuffers: Int32 = 0
    // Output ring of segments (storage in Reactor.segments, 16 per slot).
    var segFirst: UInt8 = 0
    var segCount: UInt8 = 0
    /// Head buffer for bytes we write (response or request head), -1 when none.
    var outBuf: Int32 = -1
    var timer: TimerKind = .none
    /// Raw relay partner (L4 relays and upgraded connections only), -1 when none.
    var peer: Int32 = -1
    /// Exchange table index: a client's current exchange (HTTP/1.1 keeps one
    /// per connection), or the exchange an upstream connection serves; -1 when none.
    var exchange: Int32 = -1
    // Client only.
    /// Accept slot the connection came from (maps to a listener of the current snapshot).
    var acceptSlot: UInt8 = 0
    /// Its listener was removed by a reload: close after the current request.
    var listenerGone = false
    var peerAddrLength: UInt8 = 0
    var requestsOnConnection: Int32 = 0
    /// Connection-limit counters this connection holds (released on close).
    var admission = AdmissionTicket()
    // Upstream only.
    /// Snapshot view the connection belongs to (its endpoint index is in that view).
    var view: Int32 = -1
    var endpoint: Int32 = -1
    var connected = false
    var pooled = false
    var reused = false
    /// Carries a mirrored copy of a request; its answer is dropped (Upstream/Mirror.swift).
    var mirror = false
    /// Write side shut after the last response; now discarding input until EOF (lingering close).
    var lingering = false
    // L4 relay (TCP listeners, upgraded HTTP connections).
    /// Switching to the splice relay: recv cancelled, queued bytes being flushed.
    var relayPending = false
    /// Relaying with splice: readiness polls instead of recv.
    var relay = false
    /// Pipe carrying bytes read from this socket to its peer, and bytes in it.
    var pipeR: Int32 = -1
    var pipeW: Int32 = -1
    var pipeBytes: Int32 = 0
    var pipeCapacity: Int32 = 0
    var pollArmed = false
    var pollOutArmed = false
    /// We shut down writing to this socket (its peer reached EOF).
    var writeShut = false
    /// Bytes read from this socket and relayed to its peer.
    var relayedBytes: UInt64 = 0
    /// Idle timeout of a relay (or UDP session) copied from its listener when it
    /// let go of its snapshot; 0 while the snapshot is still held.
    var relayIdleMs: Int32 = 0
    /// A PROXY protocol header must arrive before anything else.
    var proxyHeaderPending = false
    /// The client's address came from a PROXY header (see Reactor.proxyAddresses).
    var hasProxyAddress = false
    /// TCP listener connection (no HTTP parsing).
    var isStream = false
    /// SNI routing and copy relay state (Stream/SNIRouting.swift, Stream/CopyRelay.swift).
    var stream = StreamRelayState()
    /// The connection speaks HTTP/2 (state in `Reactor.http2`, HTTP2/).
    var http2 = false
    /// Reads under `Reactor.tinyReadBytes` since the current request head began.
    var tinyReads: UInt8 = 0
    /// A trickling head is read on the pacing tick, not per packet (Reactor/PacedReads.swift).
    var paced = false
    var pacedListed = false
}
