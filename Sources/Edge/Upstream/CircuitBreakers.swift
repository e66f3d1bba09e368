import CIOUring
import Glibc

/// One reactor's in-flight numbers for one cluster of one snapshot view: what
/// the circuit breakers compare with their per-worker limits.
struct ClusterCounters {
    /// Upstream sockets open (pooled ones included), connects still pending,
    /// requests in flight, and requests in flight that were retried.
    var connections: Int32 = 0
    var pending: Int32 = 0
    var requests: Int32 = 0
    var retries: Int32 = 0
}

/// Circuit breaking: per-cluster limits on connections, pending connects,
/// requests and retries, checked before a request takes an upstream. Over a
/// limit the request gets 503 `x-edge-error: circuit_open` at once (requests
/// in flight are untouched). Plus the passive outlier-detection reports.
extension Reactor {
    @inline(__always) func clusterOf(_ v: Int32, _ e: Int32) -> Int {
        let view = views[Int(v)]
        guard e >= 0, Int(e) < view.endpoints.count else { return -1 }
        let cl = Int(view.endpoints[Int(e)].cluster)
        return cl >= 0 && cl < view.clusters.count ? cl : -1
    }

    @inline(__always) func counters(_ v: Int32, _ cluster: Int) -> UnsafeMutablePointer<ClusterCounters>? {
        guard cluster >= 0, cluster < views[Int(v)].clusters.count, let base = views[Int(v)].clusterCounters else { return nil }
        return base + cluster
    }

    /// True when the cluster of endpoint `e` may take one more request now: it
    /// is under max_requests and either an idle pooled connection to `e` exists
    /// or a new one stays under max_connections and max_pending_requests.
    @inline(__always) func circuitAllows(_ v: Int32, _ e: Int32) -> Bool {
        let cl = clusterOf(v, e)
        guard let k = counters(v, cl) else { return true }
        let r = views[Int(v)].clusters[cl].resilience
        if k.pointee.requests >= r.maxRequests { return false }
        if let counts = views[Int(v)].poolCounts, counts[Int(e)] > 0 { return true }
        return k.pointee.connections < r.maxConnections && k.pointee.pending < r.maxPending
    }

    /// The exchange now counts as a request in flight to the cluster of `e`.
    @inline(__always) func countRequest(_ v: Int32, _ e: Int32) {
        if let k = counters(v, clusterOf(v, e)) { k.pointee.requests &+= 1 }
    }

    /// The exchange ends: it no longer counts (nor its retry).
    @inline(__always) func uncountRequest(_ v: Int32, _ e: Int32, retried: Bool) {
        guard let k = counters(v, clusterOf(v, e)) else { return }
        k.pointee.requests &-= 1
        if retried { k.pointee.retries &-= 1 }
    }

    /// A new upstream socket for endpoint `e` (connecting).
    @inline(__always) func countConnection(_ v: Int32, _ e: Int32) {
        guard let k = counters(v, clusterOf(v, e)) else { return }
        k.pointee.connections &+= 1
        k.pointee.pending &+= 1
    }

    /// The upstream socket's connect completed successfully.
    @inline(__always) func connectionEstablished(_ u: Int32) {
        let s = socks[Int(u)]
        guard s.view >= 0, let k = counters(s.view, clusterOf(s.view, s.endpoint)) else { return }
        k.pointee.pending &-= 1
    }

    /// Called from maybeFree before the socket lets go of its view.
    @inline(__always) func upstreamSlotFreed(_ u: Int32) {
        let s = socks[Int(u)]
        guard s.view >= 0, s.endpoint >= 0, let k = counters(s.view, clusterOf(s.view, s.endpoint)) else { return }
        k.pointee.connections &-= 1
        if !s.connected { k.pointee.pending &-= 1 }
    }

    // MARK: Outlier detection reports

    /// The endpoint's health cell when its cluster counts failure streaks.
    @inline(__always) private func outlierCell(_ u: Int32) -> HealthCell? {
        let s = socks[Int(u)]
        guard s.view >= 0 else { return nil }
        let cl = clusterOf(s.view, s.endpoint)
        guard cl >= 0, views[Int(s.view)].clusters[cl].resilience.countsFailures,
              Int(s.endpoint) < views[Int(s.view)].endpointHealth.count else { return nil }
        return views[Int(s.view)].endpointHealth[Int(s.endpoint)]
    }

    @inline(__always) func reportResponse(_ u: Int32, status: UInt16) {
        guard let cell = outlierCell(u) else { return }
        if status >= 500 { EndpointHealth.record5xx(cell) } else { EndpointHealth.recordSuccess(cell) }
    }

    /// least_latency clusters: the time to this response head feeds the endpoint's peak EWMA.
    @inline(__always) func observeLatency(_ u: Int32, since startMs: Int64) {
        let s = socks[Int(u)]
        guard s.view >= 0 else { return }
        let cl = clusterOf(s.view, s.endpoint)
        guard cl >= 0, views[Int(s.view)].clusters[cl].balance == .leastLatency else { return }
        views[Int(s.view)].balancer?.observeLatency(endpoint: s.endpoint, rttUs: (nowMs &- startMs) &* 1000, nowMs: nowMs)
    }

    @inline(__always) func reportGatewayFailure(_ u: Int32) {
        if let cell = outlierCell(u) { EndpointHealth.record5xx(cell) }
    }

    @inline(__always) func reportConnectFailure(_ u: Int32) {
        if let cell = outlierCell(u) { EndpointHealth.recordConnectFailure(cell) }
    }
}
