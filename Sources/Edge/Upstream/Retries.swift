import CIOUring
import Glibc
import Protocols

/// Why an attempt failed, as `RetryConfig.On` bits.
enum RetryCause: UInt8 {
    case connectFailure = 1, reset = 2, status502 = 4, status503 = 8, status504 = 16, idempotentTimeout = 32

    static func forStatus(_ s: UInt16) -> RetryCause? {
        switch s {
        case 502: return .status502
        case 503: return .status503
        case 504: return .status504
        default: return nil
        }
    }
}

/// Retries on another endpoint: a failed attempt (connect failure, reset,
/// 502/503/504, timeout of an idempotent request) is resent, after a jittered
/// exponential backoff, to the next usable endpoint of the cluster, while the
/// attempts, the cluster's retry budget and its max_retries allow. Only
/// requests without a body are retried (the body is not held once forwarded).
extension Reactor {
    /// Tries another attempt for the exchange upstream `u` serves. True when a
    /// new attempt is under way (`u` is then closed); false when the caller
    /// must fail the exchange as before.
    func retryAttempt(_ c: Int32, _ u: Int32, _ cause: RetryCause) -> Bool {
        let xi = Int(socks[Int(c)].exchange)
        guard xi >= 0 else { return false }
        let ex = exchanges[xi]
        let v = ex.view
        guard v >= 0, !socks[Int(c)].closing, ex.phase == .proxying, !ex.responseStarted, !ex.upgradeRequested,
              ex.request.mode == .none, ex.requestHeadBuf >= 0, !socks[Int(c)].isStream else { return false }
        let e = ex.countedEndpoint
        let cl = clusterOf(v, e)
        guard cl >= 0 else { return false }
        let r = views[Int(v)].clusters[cl].resilience
        guard r.retryOn & cause.rawValue != 0, ex.attempts < r.attempts else { return false }
        if cause == .idempotentTimeout && !Reactor.isIdempotent(ex.method) { return false }
        guard let k = counters(v, cl) else { return false }
        if !ex.retryCounted {
            // Budget: retries in flight ≤ budget% of requests in flight (at least a few), and max_retries.
            let budget = max(Int32(RetryConfig.minRetryConcurrency), k.pointee.requests &* r.budgetPercent / 100)
            guard k.pointee.retries < budget, k.pointee.retries < r.maxRetries else { return false }
        }
        let next = views[Int(v)].balancer?.retryEndpoint(cluster: Int32(cl), previous: e) ?? -1
        guard next >= 0, views[Int(v)].endpoints[Int(next)].address.family != AF_UNSPEC else { return false }
        detach(c, u)
        closeSock(u)
        let n = connectUpstream(v, next, delayMs: backoffMs(v, r, attempt: Int(ex.attempts)))
        guard n >= 0 else { return false }
        if !ex.retryCounted { k.pointee.retries &+= 1; exchanges[xi].retryCounted = true }
        exchanges[xi].attempts &+= 1
        stats.bump(stats.retries)
        if let active = views[Int(v)].active {
            if e >= 0 { active[Int(e)] -= 1 }
            active[Int(next)] += 1
        }
        exchanges[xi].countedEndpoint = next
        let id = exchanges[xi].requestHeadBuf
        enqueue(n, buffers.pointer(id), Int(exchanges[xi].requestHeadLength), id: id)
        link(c, n)
        return true
    }

    /// base × 2^(attempt-1), capped, then jittered into [d/2, d].
    @inline(__always) private func backoffMs(_ v: Int32, _ r: CompiledResilience, attempt: Int) -> Int64 {
        let shift = min(max(attempt - 1, 0), 20)
        let d = min(Int64(r.backoffBaseMs) << Int64(shift), Int64(r.backoffMaxMs))
        if d <= 1 { return d }
        let half = d / 2
        let x = Int64(truncatingIfNeeded: views[Int(v)].balancer?.random(Int32(truncatingIfNeeded: min(half + 1, Int64(Int32.max)))) ?? 0)
        return half + x
    }

    static func isIdempotent(_ m: HTTPMethod) -> Bool {
        switch m {
        case .get, .head, .options, .put, .delete, .trace: return true
        default: return false
        }
    }
}

extension Reactor {
    /// `x-edge-attempts: N` when the exchange needed more than one attempt.
    @inline(__always) func appendAttempts(_ w: inout HeadWriter, _ xi: Int) {
        let n = exchanges[xi].attempts
        if n <= 1 { return }
        w.append("x-edge-attempts: ")
        w.appendDecimal(UInt64(n))
        w.append("\r\n")
    }

    /// The timeout of one attempt: the cluster's per_try_timeout when shorter than the route's.
    @inline(__always) func perTryTimeoutMs(_ v: Int32, _ e: Int32, _ routeMs: Int32) -> Int32 {
        let cl = clusterOf(v, e)
        guard cl >= 0 else { return routeMs }
        let t = views[Int(v)].clusters[cl].resilience.perTryTimeoutMs
        return t > 0 && t < routeMs ? t : routeMs
    }
}
