import CIOUring
import Glibc

/// Request mirroring: a copy of the request head goes to an endpoint of the
/// route's mirror cluster on its own upstream connection; the answer is
/// dropped unread and the connection closed, so the client never waits for
/// it. Only requests without a body are mirrored (the body is forwarded, not held).
extension Reactor {
    static let mirrorTimeoutMs: Int64 = 5_000

    func startMirror(_ c: Int32, _ route: CompiledRoute, _ req: inout RequestView) {
        let xi = Int(socks[Int(c)].exchange)
        let v = exchanges[xi].view
        let id = exchanges[xi].requestHeadBuf
        guard v >= 0, id >= 0, exchanges[xi].request.mode == .none, !exchanges[xi].upgradeRequested else { return }
        if route.mirrorPercent < 100 {
            let x = views[Int(v)].balancer?.random(100) ?? 0
            if x >= route.mirrorPercent { return }
        }
        let e = pickEndpoint(v, route.mirrorCluster, &req)
        guard e >= 0, views[Int(v)].endpoints[Int(e)].address.family != AF_UNSPEC, circuitAllows(v, e) else { return }
        let m = connectUpstream(v, e)
        guard m >= 0 else { return }
        socks[Int(m)].mirror = true
        enqueue(m, buffers.pointer(id), Int(exchanges[xi].requestHeadLength), id: id)
    }

    func mirrorConnected(_ u: Int32) {
        stats.bump(stats.upstreamOpened)
        armRecv(u)
        scheduleTimer(u, .upstreamResponse, afterMs: Reactor.mirrorTimeoutMs)
        flush(u)
    }

    /// Any answer (or EOF) means the mirror got the request: drop it and close.
    func mirrorAnswered(_ u: Int32) {
        stats.bump(stats.mirrored)
        releaseInput(u)
        closeSock(u)
    }
}
