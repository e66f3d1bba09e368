import CIOUring
import Glibc
import Protocols

/// Bytes owned by a `RouteTable` arena. Plain pointer + count: reading them on
/// the hot path costs no retain/release.
struct StaticBytes: @unchecked Sendable {
    var base: UnsafeRawPointer?
    var count: Int
    static let empty = StaticBytes(base: nil, count: 0)
    @inline(__always) var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

enum HostMatch: UInt8 { case any, exact, wildcard }
enum PathMatch: UInt8 { case any, prefix, exact, regex }

/// What routing and balancing read from a request: views into the parsed head,
/// built once per request by the reactor (no copies, no allocation).
package struct RequestView {
    /// Authority without port, as sent (not lower-cased).
    var host: UnsafeRawBufferPointer
    /// Target path before '?'.
    var path: UnsafeRawBufferPointer
    /// Query string after '?' (without it), empty if none.
    var query: UnsafeRawBufferPointer
    var method: HTTPMethod
    /// The head bytes `headers` ranges point into.
    var head: UnsafeRawBufferPointer
    var headers: UnsafeBufferPointer<HeaderField>
    /// Client address as text (for consistent_hash on client_ip).
    var clientIP: UnsafeRawBufferPointer
}

/// One route, compiled: matchers, action and per-route edits. Indices point
/// into the table's flat arrays (header matchers, edits, splits).
package struct CompiledRoute {
    var hostMatch: HostMatch
    /// Lower-cased; for `.wildcard` the suffix including the dot (".example.com").
    var host: StaticBytes
    var pathMatch: PathMatch
    var path: StaticBytes
    /// Index into `RouteTable.regexes` for `.regex` paths, else -1.
    var pathRegex: Int32
    /// Bit `1 << HTTPMethod.rawValue`; 0 means any method.
    var methodMask: UInt16
    var firstHeaderMatcher: Int32
    var headerMatcherCount: Int32
    var firstQueryMatcher: Int32
    var queryMatcherCount: Int32
    /// Cluster index; -1 for a direct response; -2 for a weighted split.
    var cluster: Int32
    var firstSplit: Int32
    var splitCount: Int32
    var splitTotalWeight: Int32
    var stripPrefix: Bool
    var hasPrefixRewrite: Bool
    var prefixRewrite: StaticBytes
    /// Empty = keep the client's Host.
    var hostRewrite: StaticBytes
    var firstRequestEdit: Int32
    var requestEditCount: Int32
    var firstResponseEdit: Int32
    var responseEditCount: Int32
    var timeoutMs: Int32
    /// Direct response: status line + headers (no blank line) and body.
    var directHead: StaticBytes
    /// Metrics id (MetricLabels), label text for the access log, and whether its requests are logged.
    var metricsId: Int32 = 0
    var label: StaticBytes = .empty
    var accessLog = true
    var directStatus: UInt16 = 0
    var directBody: StaticBytes
    /// `mirror`: cluster index (-1: none) and percent of requests copied there.
    var mirrorCluster: Int32 = -1
    var mirrorPercent: Int32 = 0
    /// `cache`: response cache settings (Cache/), disabled by default.
    var cache = CompiledCacheSettings()
    /// `compression` (Compression/CompressionCompile.swift); `enabled == false` when not set.
    var compression = CompiledCompression()
}

/// A header or query-parameter condition of a route.
struct CompiledMatcher {
    enum Kind: UInt8 { case exact, present, absent, regex }
    var kind: Kind
    /// Header names lower-cased; query names as written.
    var name: StaticBytes
    var value: StaticBytes
    /// Index into `RouteTable.regexes` for `.regex`.
    var regex: Int32
}

/// One header edit applied when writing a head. `remove` and `set` drop every
/// field with that name (case-insensitive); `add` and `set` then append `name: value`.
struct CompiledHeaderEdit {
    enum Op: UInt8 { case add, set, remove }
    var op: Op
    /// As written in the config (sent with this case).
    var name: StaticBytes
    /// Lower-cased copy for comparisons.
    var lowerName: StaticBytes
    var value: StaticBytes
}

/// One arm of a weighted split: pick the first arm whose cumulative weight
/// exceeds a random number in 0..<splitTotalWeight.
struct CompiledSplit {
    var cluster: Int32
    var cumulativeWeight: Int32
}

/// Per-listener HTTP settings, flattened for the reactor.
package struct CompiledListener {
    package var firstRoute: Int32
    package var routeCount: Int32
    var limits: HTTP1Limits
    var maxBodyBytes: UInt64
    var headerTimeoutMs: Int32
    var idleTimeoutMs: Int32
    var bodyTimeoutMs: Int32
    /// `protocol: tcp`: relay bytes to `streamCluster` instead of parsing HTTP.
    var isStream: Bool = false
    var streamCluster: Int32 = -1
    /// `proxy_protocol: accept`: a PROXY v1/v2 header must open every connection.
    var acceptsProxyProtocol: Bool = false
    var proxyHeaderTimeoutMs: Int32 = 5_000
    /// TCP relay idle timeout.
    var streamIdleTimeoutMs: Int32 = 300_000
    /// TCP relays: SNI routing and copy/splice choice (see Stream/CopyRelay.swift).
    var relay = CompiledRelaySettings()
    /// `protocol: udp`: datagram sessions to `streamCluster`.
    var isDatagram: Bool = false
    var udpSessionTimeoutMs: Int32 = 30_000
    var udpMaxSessions: Int32 = 10_000
    /// `protocol: dtls`: the datagram sessions are DTLS 1.2 (Stream/DTLSRelay.swift), `tlsContext` holds the certificates.
    var isDTLS: Bool = false
    /// Connection limits (0 = none) and this listener's shared counter (see Admission).
    var maxConnections: Int32 = 0
    var maxConnectionsPerIP: Int32 = 0
    var counterSlot: Int32 = -1
    /// Slow-POST guard in bytes per second (0 = off).
    var minBodyRate: Int32 = 0
    /// `protocol: https`: retained `TLSServerContext` (released with the table), nil for plain.
    var tlsContext: UnsafeMutableRawPointer? = nil
    var tlsHandshakeTimeoutMs: Int32 = 10_000
    var tlsMaxHandshakes: Int32 = 1024
    /// Metrics id of "no route matched" on this listener, and the listener's name for the access log.
    var unmatchedMetricsId: Int32 = 0
    var label: StaticBytes = .empty
    /// HTTP/2 on this listener (HTTP2/HTTP2Settings.swift).
    var http2 = CompiledHTTP2()
    /// HTTP/3 on this listener's UDP port (HTTP3/HTTP3Settings.swift); the
    /// retained `QUICServerContext` is released with the table.
    var http3 = CompiledHTTP3()
    var quicContext: UnsafeMutableRawPointer? = nil
}

package struct CompiledEndpoint {
    var address: sockaddr_storage
    var length: socklen_t
    var weight: Int32
    var cluster: Int32
}

enum CompiledBalance: UInt8 { case roundRobin, weightedRoundRobin, leastConnections, randomTwo, consistentHash, leastLatency }
enum CompiledHashSource: UInt8 { case clientIP, header, cookie }

package struct CompiledCluster {
    package var firstEndpoint: Int32
    package var endpointCount: Int32
    /// Endpoint indices repeated by weight (used by round_robin with weights).
    var firstSlot: Int32
    var slotCount: Int32
    var connectTimeoutMs: Int32
    var maxIdlePerEndpoint: Int32
    var idleTimeoutMs: Int32
    var balance: CompiledBalance
    var hashSource: CompiledHashSource
    /// Header name (lower-cased) or cookie name for consistent_hash.
    var hashName: StaticBytes
    /// Maglev lookup table in `RouteTable.maglev` (endpoint offsets within the cluster).
    var firstMaglev: Int32
    var maglevSize: Int32
    /// `proxy_protocol: v1|v2` on the cluster: sent on every new upstream
    /// connection (which is then never pooled: it carries one client's address). 0 = off.
    var sendProxyProtocol: UInt8 = 0
    /// `tls:` on the cluster: retained `TLSClientContext` (released with the table), nil for plain.
    var tlsClient: UnsafeMutableRawPointer? = nil
    /// `protocol: http2`: requests go over multiplexed HTTP/2 connections (HTTP2/H2UpstreamPool.swift).
    var http2 = false
    /// Circuit breakers and retries (Upstream/ClusterResilience.swift).
    var resilience = CompiledResilience()
    /// Metrics id (MetricLabels) and name for the access log.
    var metricsId: Int32 = 0
    var label: StaticBytes = .empty
}

/// The immutable routing snapshot: listeners, routes, clusters, endpoints and
/// the match index as flat arrays of plain structs in memory this object owns
/// (freed in deinit, so a reload cannot leak). Compiled once on the control
/// thread (`RouteTableCompiler`), then only read by reactors, without locks.
/// Matching is in `RouteMatch.swift`.
package final class RouteTable: @unchecked Sendable {
    package let listeners: UnsafeMutableBufferPointer<CompiledListener>
    package let routes: UnsafeMutableBufferPointer<CompiledRoute>
    package let clusters: UnsafeMutableBufferPointer<CompiledCluster>
    package let endpoints: UnsafeMutableBufferPointer<CompiledEndpoint>
    /// Endpoint indices repeated by weight (capped at 1000 per endpoint).
    let endpointSlots: UnsafeMutableBufferPointer<Int32>
    /// Header and query conditions of all routes.
    let matchers: UnsafeMutableBufferPointer<CompiledMatcher>
    let headerEdits: UnsafeMutableBufferPointer<CompiledHeaderEdit>
    let splits: UnsafeMutableBufferPointer<CompiledSplit>
    /// Maglev lookup tables of consistent_hash clusters (endpoint offsets within the cluster).
    let maglev: UnsafeMutableBufferPointer<Int32>
    /// Health cells (Health/EndpointHealth.swift), indexed like `endpoints` and `clusters`.
    let endpointHealth: UnsafeMutableBufferPointer<HealthCell>
    let clusterHealth: UnsafeMutableBufferPointer<HealthCell>
    /// Compiled patterns (path and header/query regexes), shared read-only by all reactors.
    let regexes: UnsafeMutableBufferPointer<CompiledRegex>
    /// Largest `maxHeaderBytes` of any listener: sizes the reactors' head buffers.
    let maxHeaderBytes: Int
    let maxHeaderCount: Int
    /// Monotonic snapshot id (1, 2, ...) assigned by the compiler caller; for logs/admin.
    let generation: Int
    /// Gateway policies (Policy/), nil when no route has any; set once before publishing.
    var policyHot: UnsafeMutablePointer<PolicyHot>? = nil
    var policySet: PolicySet? = nil

    // Match index (see RouteIndex.swift).
    let listenerIndex: UnsafeMutableBufferPointer<ListenerIndex>
    let hostBuckets: UnsafeMutableBufferPointer<HostBucket>
    let hashSlots: UnsafeMutableBufferPointer<HashSlot>
    let candidates: UnsafeMutableBufferPointer<Int32>
    let prefixLengths: UnsafeMutableBufferPointer<Int32>

    /// One PCRE2 match-data block per reactor (index = worker). Empty when the
    /// table has no regex. Grown only by `prepareForWorkers` before publishing.
    private(set) var regexMatchData: UnsafeMutableBufferPointer<OpaquePointer?>
    /// "a.b.c.d:port" / "[v6]:port" per endpoint, for `endpointKey`.
    private let endpointKeys: UnsafeMutableBufferPointer<StaticBytes>
    private let arenaChunks: [UnsafeMutableRawPointer]
    private let blocks: [UnsafeMutableRawPointer]

    init(parts p: RouteTableParts, index: RouteIndexParts, arena: ByteArena, generation: Int, workerSlots: Int) {
        var blocks: [UnsafeMutableRawPointer] = []
        func copy<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
            let buf = UnsafeMutableBufferPointer<T>.allocate(capacity: max(a.count, 1))
            _ = buf.initialize(from: a)
            if let base = buf.baseAddress { blocks.append(UnsafeMutableRawPointer(base)) }
            return UnsafeMutableBufferPointer(rebasing: buf[0..<a.count])
        }
        listeners = copy(p.listeners)
        routes = copy(p.routes)
        clusters = copy(p.clusters)
        endpoints = copy(p.endpoints)
        endpointSlots = copy(p.endpointSlots)
        matchers = copy(p.matchers)
        headerEdits = copy(p.headerEdits)
        splits = copy(p.splits)
        maglev = copy(p.maglev)
        regexes = copy(p.regexes)
        endpointHealth = copy(p.endpointHealth)
        clusterHealth = copy(p.clusterHealth)
        endpointKeys = copy(p.endpointKeys)
        listenerIndex = copy(index.listeners)
        hostBuckets = copy(index.buckets)
        hashSlots = copy(index.slots)
        candidates = copy(index.candidates)
        prefixLengths = copy(index.prefixLengths)
        self.blocks = blocks
        arenaChunks = arena.takeChunks()
        maxHeaderBytes = p.listeners.map { $0.limits.maxHeaderBytes }.max() ?? 32768
        maxHeaderCount = p.listeners.map { $0.limits.maxHeaderCount }.max() ?? 100
        self.generation = generation
        regexMatchData = UnsafeMutableBufferPointer(start: nil, count: 0)
        prepareForWorkers(workerSlots)
    }

    deinit {
        for l in listeners { TLSServerContext.release(l.tlsContext); QUICServerContext.release(l.quicContext) }
        for c in clusters { TLSClientContext.release(c.tlsClient) }
        for md in regexMatchData { Regex.freeMatchData(md) }
        regexMatchData.baseAddress?.deallocate()
        for r in regexes { Regex.free(r) }
        for b in blocks { b.deallocate() }
        for c in arenaChunks { c.deallocate() }
    }

    /// Makes sure reactors `0..<n` each have their own regex match data. The
    /// compiler already sizes it for `max(runtime.workers, allowed CPUs)`;
    /// call this on the control thread BEFORE publishing the table if more
    /// reactors may use it. Never call it on a published table.
    func prepareForWorkers(_ n: Int) {
        guard regexes.count > 0, n > regexMatchData.count else { return }
        let grown = UnsafeMutableBufferPointer<OpaquePointer?>.allocate(capacity: n)
        for i in 0..<n { grown[i] = i < regexMatchData.count ? regexMatchData[i] : Regex.makeMatchData() }
        regexMatchData.baseAddress?.deallocate()
        regexMatchData = grown
    }

    /// Stable identity of an endpoint across snapshots ("127.0.0.1:9000", the
    /// resolved address) so upstream pools survive a reload. Empty if out of range.
    func endpointKey(_ e: Int) -> StaticBytes {
        guard e >= 0, e < endpointKeys.count else { return .empty }
        return endpointKeys[e]
    }
}

/// The flat arrays `RouteTableCompiler` fills; `RouteTable.init` copies them
/// into memory the table owns.
struct RouteTableParts {
    var listeners: [CompiledListener] = []
    var routes: [CompiledRoute] = []
    var clusters: [CompiledCluster] = []
    var endpoints: [CompiledEndpoint] = []
    var endpointSlots: [Int32] = []
    var endpointKeys: [StaticBytes] = []
    var matchers: [CompiledMatcher] = []
    var headerEdits: [CompiledHeaderEdit] = []
    var splits: [CompiledSplit] = []
    var maglev: [Int32] = []
    var regexes: [CompiledRegex] = []
    var endpointHealth: [HealthCell] = []
    var clusterHealth: [HealthCell] = []
}
