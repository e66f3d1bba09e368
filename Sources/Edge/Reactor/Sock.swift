import Protocols

/// Which side of the proxy a socket slot serves.
enum SockKind: UInt8 { case free, client, upstream, udpSession }

/// State of a socket's multishot recv.
enum RecvState: UInt8 { case idle, armed, cancelling }

/// What a timer on this slot means when it fires.
enum TimerKind: UInt8 {
    case none
    case clientIdle, clientHeader, clientBody, clientLinger
    case upstreamConnect, upstreamResponse, upstreamBody, upstreamIdle
    /// L4 relay: no bytes either way for the listener's idle timeout.
    case relayIdle
    /// Waiting for the PROXY protocol header (listeners with proxy_protocol: accept).
    case proxyHeader
    /// UDP session without datagrams for the listener's session_timeout.
    case udpIdle
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
    /// Linked socket: a client's upstream or an upstream's client, -1 when none.
    var peer: Int32 = -1
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
    /// A PROXY protocol header must arrive before anything else.
    var proxyHeaderPending = false
    /// The client's address came from a PROXY header (see Reactor.proxyAddresses).
    var hasProxyAddress = false
    /// TCP listener connection (no HTTP parsing).
    var isStream = false
}

/// Phases of one request/response exchange on a client connection.
enum ExchangePhase: UInt8 {
    /// Waiting for (more of) a request head.
    case readingHead
    /// Request routed to an upstream; body and response streaming.
    case proxying
    /// Answering locally (direct response or error); any request body is discarded.
    case local
    /// Response queued; connection closes once it is sent.
    case closing
    /// The upstream answered 101: the connection is now a raw byte relay.
    case upgraded
}

/// How a body is delimited while it streams through.
struct BodyState {
    enum Mode: UInt8 { case none, length, chunked, untilClose }
    var mode: Mode = .none
    var remaining: UInt64 = 0
    var decoder = ChunkedDecoder()
    var done = true
    /// Payload bytes seen (for max_body on chunked requests).
    var payloadBytes: UInt64 = 0
    /// Forward only chunk payload (HTTP/1.0 client given a chunked response).
    var dechunk = false

    mutating func reset(_ framing: BodyFraming) {
        payloadBytes = 0; dechunk = false
        switch framing {
        case .none: mode = .none; done = true
        case .contentLength(let n): mode = n == 0 ? .none : .length; remaining = n; done = n == 0
        case .chunked: mode = .chunked; decoder = ChunkedDecoder(); done = false
        case .untilClose: mode = .untilClose; done = false
        }
    }
}

/// Per-request state of a client connection (same slot index as its `Sock`).
struct Exchange {
    var phase: ExchangePhase = .readingHead
    /// Snapshot view this request runs on (-1 between requests), and its listener there.
    var view: Int32 = -1
    var listener: Int32 = 0
    /// Upstream endpoint counted in the view's in-flight numbers, -1 if none.
    var countedEndpoint: Int32 = -1
    var method: HTTPMethod = .get
    var versionMinor: UInt8 = 1
    var keepAlive = true
    var route: Int32 = -1
    var request = BodyState()
    var response = BodyState()
    var responseHeadDone = false
    /// Whether the final response head has been queued to the client.
    var responseStarted = false
    /// Request head bytes sent to the upstream (kept for one retry on a stale pooled connection).
    var requestHeadBuf: Int32 = -1
    var requestHeadLength: Int32 = 0
    var retried = false
    /// Bytes of response received from the upstream (0 = nothing yet: retry is safe).
    var responseBytes: UInt64 = 0
    var upstreamReusable = true
    var startedMs: Int64 = 0
    var timeoutMs: Int32 = 0
    /// The client sent `Expect: 100-continue`.
    var expectContinue = false
    /// Response fully received (and queued to the client).
    var responseDone = false
    /// The request asked to upgrade (WebSocket...) and Upgrade was forwarded.
    var upgradeRequested = false
    /// Slow-POST guard: start of the current 10 s rate window, body bytes seen at
    /// its start, and whether Edge itself paused reading during it (backpressure).
    var bodyWindowStartMs: Int64 = 0
    var bodyWindowStartBytes: UInt64 = 0
    var bodyWindowPaused = false
    /// When the client last delivered body bytes or took response bytes.
    var clientProgressMs: Int64 = 0
    /// How far the request head being received was scanned (readingHead only;
    /// a new Exchange starts a new head), so a trickled head is not rescanned.
    var headScan = HeadScanState()
}
