import Glibc
import Protocols

/// Hooks the proxy calls at the points of an exchange the access log and
/// metrics care about. Each is a few stores when telemetry is on and one
/// branch when it is off; nothing allocates. `obsEnd` writes the metrics and
/// the access-log line (into the worker's ring) exactly once per exchange.
extension Reactor {
    @inline(__always) static func monotonicNs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }

    /// A request head was parsed: start timing, keep what the log line shows.
    func obsBegin(_ xi: Int, _ c: Int32, _ request: NeutralRequestHead) {
        guard exchangeLog.telemetry.enabled else { return }
        var r = ExchangeRecord()
        r.active = true
        r.startNs = Reactor.monotonicNs()
        r.bytesIn = UInt64(max(0, request.headLength))
        if exchangeLog.telemetry.log != nil {
            exchangeLog.sampleCounter &+= 1
            let draw = Reactor.mix(requestIdSeed ^ (exchangeLog.sampleCounter &* 0xD1B5_4A32_D192_ED03))
            r.sampled = draw <= exchangeLog.telemetry.sampleThreshold
            if r.sampled { keepRequestText(xi, &r, request) }
        }
        if exchangeLog.telemetry.spans != nil { beginTrace(&r, request) }
        exchangeLog.records[xi] = r
    }

    /// A head that did not parse (answered 4xx and closed): logged with an id of its own.
    func obsMalformed(_ xi: Int, _ c: Int32) {
        guard exchangeLog.telemetry.enabled else { return }
        var r = ExchangeRecord()
        r.active = true
        r.startNs = Reactor.monotonicNs()
        r.sampled = exchangeLog.telemetry.log != nil
        if r.sampled {
            var w = HeadWriter(exchangeLog.text + xi * ExchangeLog.textStride + ExchangeLog.idOffset, capacity: ExchangeLog.idBytes)
            appendRequestId(&w)
            r.idLength = UInt16(w.count)
        }
        exchanges[xi].listener = acceptListener[Int(socks[Int(c)].acceptSlot)]
        exchanges[xi].view = -1
        exchangeLog.records[xi] = r
    }

    private func keepRequestText(_ xi: Int, _ r: inout ExchangeRecord, _ request: NeutralRequestHead) {
        let base = exchangeLog.text + xi * ExchangeLog.textStride
        func copy(_ range: ByteRange, _ offset: Int, _ limit: Int) -> UInt16 {
            let start = Int(range.offset), n = min(Int(range.length), limit)
            guard n > 0, start >= 0, start + n <= request.bytes.count, let src = request.bytes.baseAddress else { return 0 }
            (base + offset).update(from: (src + start).assumingMemoryBound(to: UInt8.self), count: n)
            return UInt16(n)
        }
        r.methodLength = methodText(request, base + ExchangeLog.methodOffset)
        r.authorityLength = copy(request.authority, ExchangeLog.authorityOffset, ExchangeLog.authorityBytes)
        r.pathLength = copy(request.path, ExchangeLog.pathOffset, ExchangeLog.pathBytes)
        for f in request.fields where f.kind == .xRequestId {
            r.idLength = copy(f.value, ExchangeLog.idOffset, ExchangeLog.idBytes)
            break
        }
        if r.idLength == 0 {
            // Edge's own id; writeRequestHead sends this same one upstream.
            var w = HeadWriter(base + ExchangeLog.idOffset, capacity: ExchangeLog.idBytes)
            appendRequestId(&w)
            r.idLength = UInt16(w.count)
            r.generatedId = true
        }
    }

    private func methodText(_ request: NeutralRequestHead, _ dst: UnsafeMutablePointer<UInt8>) -> UInt16 {
        // The h1 head starts with the method token; multiplexed codecs will pass :method here.
        guard let src = request.bytes.baseAddress else { return 0 }
        var n = 0
        let p = src.assumingMemoryBound(to: UInt8.self)
        while n < ExchangeLog.methodBytes && n < request.bytes.count && p[n] != 0x20 { dst[n] = p[n]; n += 1 }
        return UInt16(n)
    }

    /// The X-Request-Id sent upstream: the one the access log shows, or a fresh one.
    @inline(__always) func appendExchangeRequestId(_ xi: Int, _ w: inout HeadWriter) {
        let r = exchangeLog.records[xi]
        if exchangeLog.telemetry.log != nil && r.active && r.sampled && r.generatedId {
            w.append(UnsafeRawBufferPointer(start: exchangeLog.text + xi * ExchangeLog.textStride + ExchangeLog.idOffset,
                                            count: Int(r.idLength)))
        } else {
            appendRequestId(&w)
        }
    }

    @inline(__always) func obsCluster(_ xi: Int, _ cluster: Int32) {
        guard exchangeLog.telemetry.enabled else { return }
        exchangeLog.records[xi].cluster = cluster
        exchangeLog.records[xi].upstreamNs = Reactor.monotonicNs()
        if let m = exchangeLog.telemetry.metrics { m.bump(m.clusterStarted, cluster: clusterMetricsId(xi)) }
    }

    /// Endpoint picked and connection acquired (`u` < 0: none could be opened).
    @inline(__always) func obsUpstream(_ xi: Int, _ e: Int32, _ u: Int32) {
        guard exchangeLog.telemetry.enabled else { return }
        exchangeLog.records[xi].endpoint = e
        guard u >= 0 else { return }
        let reused = socks[Int(u)].reused
        exchangeLog.records[xi].reused = reused
        if reused {
            exchangeLog.records[xi].connectedNs = exchangeLog.records[xi].upstreamNs
            if let m = exchangeLog.telemetry.metrics { m.bump(m.clusterPoolHits, cluster: clusterMetricsId(xi)) }
        }
    }

    @inline(__always) func obsConnected(_ u: Int32) {
        guard exchangeLog.telemetry.enabled else { return }
        let xi = Int(socks[Int(u)].exchange)
        guard xi >= 0, exchangeLog.records[xi].active else { return }
        exchangeLog.records[xi].connectedNs = Reactor.monotonicNs()
        if let m = exchangeLog.telemetry.metrics { m.bump(m.clusterConnects, cluster: clusterMetricsId(xi)) }
    }

    @inline(__always) func obsRetry(_ xi: Int) {
        guard exchangeLog.telemetry.enabled, let m = exchangeLog.telemetry.metrics else { return }
        m.bump(m.clusterRetries, cluster: clusterMetricsId(xi))
    }

    @inline(__always) func obsResponseHead(_ xi: Int, _ status: UInt16) {
        guard exchangeLog.telemetry.enabled else { return }
        exchangeLog.records[xi].status = status
        exchangeLog.records[xi].firstByteNs = Reactor.monotonicNs()
    }

    /// Edge answered itself (error or direct response).
    @inline(__always) func obsLocal(_ xi: Int, _ status: UInt16, _ cause: StaticString?, bodyBytes: Int) {
        guard exchangeLog.telemetry.enabled, exchangeLog.records[xi].active else { return }
        exchangeLog.records[xi].status = status
        exchangeLog.records[xi].cause = cause
        exchangeLog.records[xi].localBodyBytes = UInt64(max(0, bodyBytes))
    }

    private func clusterMetricsId(_ xi: Int) -> Int32 {
        let v = Int(exchanges[xi].view), k = Int(exchangeLog.records[xi].cluster)
        guard v >= 0, v < viewCapacity, k >= 0, k < views[v].clusters.count else { return -1 }
        return views[v].clusters[k].metricsId
    }

    /// The exchange is over (response out, or the connection ended): count it and log it.
    func obsEnd(_ xi: Int) {
        guard exchangeLog.telemetry.enabled, xi >= 0, exchangeLog.records[xi].active else { return }
        exchangeLog.records[xi].active = false
        let now = Reactor.monotonicNs()
        let r = exchangeLog.records[xi]
        let ex = exchanges[xi]
        let v = Int(ex.view)
        // A malformed head never got a snapshot: counted as `other`, logged without names.
        // (Only the buffers are copied out: copying the whole view would retain its balancer.)
        let view = v >= 0 && v < viewCapacity
            ? ViewLabels(listeners: views[v].listeners, routes: views[v].routes, clusters: views[v].clusters, table: views[v].table)
            : ViewLabels()
        var routeId: Int32 = 0
        var logged = true
        if ex.route >= 0 && Int(ex.route) < view.routes.count {
            routeId = view.routes[Int(ex.route)].metricsId
            logged = view.routes[Int(ex.route)].accessLog
        } else if ex.listener >= 0 && Int(ex.listener) < view.listeners.count {
            routeId = view.listeners[Int(ex.listener)].unmatchedMetricsId
        }
        let clusterId = clusterMetricsId(xi)
        let totalUs = (now - r.startNs) / 1000
        let firstByteUs = r.firstByteNs > 0 && r.upstreamNs > 0 ? (r.firstByteNs - r.upstreamNs) / 1000 : -1
        if r.stream {
            // L4 sessions are logged, not counted as HTTP requests.
            if r.sampled, let ring = exchangeLog.telemetry.log { writeAccessLine(xi, r, ex, view, nowNs: now, ring) }
            return
        }
        exchangeLog.telemetry.metrics?.record(route: routeId, cluster: clusterId, status: r.status,
                                               totalUs: totalUs, firstByteUs: firstByteUs)
        if logged && r.sampled, let ring = exchangeLog.telemetry.log {
            writeAccessLine(xi, r, ex, view, nowNs: now, ring)
        }
        if r.traced && r.traceSampled, let spans = exchangeLog.telemetry.spans {
            finishSpan(r, method: ex.method, routeId: routeId, clusterId: clusterId, nowNs: now, spans)
        }
    }
}

/// What the log line and metrics read from a snapshot view: plain buffers, no ARC.
struct ViewLabels {
    var listeners = UnsafeMutableBufferPointer<CompiledListener>(start: nil, count: 0)
    var routes = UnsafeMutableBufferPointer<CompiledRoute>(start: nil, count: 0)
    var clusters = UnsafeMutableBufferPointer<CompiledCluster>(start: nil, count: 0)
    var table: Unmanaged<RouteTable>? = nil
}
