import CIOUring
import Glibc
import Protocols

/// SNI routing without termination (HAProxy's `req.ssl_sni`): a `protocol: tcp`
/// listener with `routes: [{ match: { sni: NAME }, cluster: C }]` peeks at the
/// ClientHello with recv(MSG_PEEK), so the bytes stay in the socket and reach
/// the upstream first, untouched, through whichever relay runs. The hello is
/// parsed by `ClientHelloPeek` (Protocols/TLS) into a per-reactor scratch;
/// routing reuses the listener's route index with the SNI as the host (exact
/// before wildcard, then the listener's `cluster` as the default). No SNI and
/// no match go to that default, or close; garbage and a slow hello close.
extension Reactor {
    /// Bytes peeked at once; a ClientHello needing more (16 KiB message plus
    /// record headers) is refused.
    static let helloPeekBytes = 18 * 1024
    /// Reassembled handshake message (`ClientHelloPeek`'s scratch).
    static let helloScratchBytes = 16 * 1024

    /// A TCP-listener client past its PROXY header (if any): SNI-routed
    /// listeners wait for the ClientHello, the others connect at once.
    func streamClientReady(_ c: Int32) {
        let i = Int(c)
        let l = listenerSettings(c)
        guard l.relay.routesBySNI else { streamConnect(c, cluster: l.streamCluster); return }
        socks[i].stream.sniPending = true
        socks[i].stream.sniNeed = 1
        scheduleTimer(c, .sniPeek, afterMs: Int64(l.relay.sniTimeoutMs))
        armPollIn(c)
        // The hello may already wait behind a PROXY header (readiness is edge-like).
        sniReadable(c)
    }

    /// Readiness while waiting for the ClientHello: peek, parse, route.
    func sniReadable(_ c: Int32) {
        let i = Int(c)
        guard socks[i].stream.sniPending, !socks[i].closing else { return }
        let n = recv(socks[i].fd, helloPeek, Reactor.helloPeekBytes, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n < 0 && errno == EAGAIN { return }
        // EOF or an error before a whole hello: nothing to route.
        if n <= 0 { closeSock(c); return }
        // Nothing can change before this many bytes (a trickled hello is parsed a few times, not per byte).
        if n < Int(socks[i].stream.sniNeed) { return }
        let input = UnsafeRawBufferPointer(start: helloPeek, count: n)
        let scratch = UnsafeMutableRawBufferPointer(start: helloPeek + Reactor.helloPeekBytes, count: Reactor.helloScratchBytes)
        var host = UnsafeRawBufferPointer(start: nil, count: 0)
        switch ClientHelloPeek.parse(input, scratch: scratch) {
        case .needMore(let atLeast):
            if n >= Reactor.helloPeekBytes { stats.bump(stats.clientErrors); closeSock(c); return }
            socks[i].stream.sniNeed = Int32(clamping: atLeast)
            return
        case .sni(let name, _):
            guard name.offset >= 0, name.length >= 0, name.end <= scratch.count else { closeSock(c); return }
            host = UnsafeRawBufferPointer(rebasing: scratch[Int(name.offset)..<name.end])
        case .noSNI:
            break
        case .notTLS, .malformed:
            stats.bump(stats.clientErrors)
            closeSock(c)
            return
        }
        socks[i].stream.sniPending = false
        cancelTimer(c)
        let cluster = sniCluster(c, host)
        if cluster < 0 { closeSock(c); return }
        streamConnect(c, cluster: cluster)
    }

    /// Cluster of the route matching `host` (empty = no SNI: only the default matches), or -1.
    private func sniCluster(_ c: Int32, _ host: UnsafeRawBufferPointer) -> Int32 {
        let xi = Int(socks[Int(c)].exchange)
        let v = exchanges[xi].view
        guard v >= 0, let t = views[Int(v)].table else { return -1 }
        var req = RequestView.stream(clientIP: clientAddressText(c))
        req.host = host
        let listener = Int(exchanges[xi].listener)
        let r = t._withUnsafeGuaranteedRef { $0.match(listener: listener, req, worker: index) }
        guard r >= 0, r < views[Int(v)].routes.count else { return -1 }
        return views[Int(v)].routes[r].cluster
    }
}
