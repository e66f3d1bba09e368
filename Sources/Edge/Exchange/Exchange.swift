import Protocols

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
    /// A cache miss waiting for a concurrent request of the same key (Cache/CacheCoalescing.swift).
    case cacheWait
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

/// One request/response exchange, in its own table (`Reactor.exchanges`),
/// apart from socket slots: the downstream connection that carries it
/// (`client`) and the upstream connection serving it (`upstream`) point to it
/// by index. HTTP/1.1 runs one exchange per connection at a time; HTTP/2 and
/// HTTP/3 streams will each be one.
struct Exchange {
    /// Downstream socket slot carrying this exchange, and the codec it speaks.
    var client: Int32 = -1
    var codec: DownstreamCodec = .h1
    /// Upstream socket slot serving it, -1 when none (local answer, between attempts).
    var upstream: Int32 = -1
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
    /// Upstream attempts so far (retries on other endpoints: Upstream/Retries.swift),
    /// and whether this exchange holds one of its cluster's retry slots.
    var attempts: UInt8 = 1
    var retryCounted = false
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
    /// What the route's policies decided (consumer, CORS origin, rate-limit numbers).
    var policy = PolicyExchangeState()
    /// Response-cache state (Cache/ResponseCache.swift).
    var cache = CacheExchangeState()
    /// Response compression (Compression/ResponseCompression.swift).
    var compress = CompressionExchangeState()
}
