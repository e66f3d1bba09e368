import Protocols

/// Access-log records of L4 sessions (TCP listeners): one line when the
/// relay ends, with the bytes moved each way. A relay lets go of its snapshot
/// once connected, so the names the line shows are copied at connect time.
extension Reactor {
    /// The session picked its endpoint; `u` < 0: no upstream connection could be opened.
    func obsStreamBegin(_ xi: Int, cluster: Int32, endpoint e: Int32, upstream u: Int32) {
        guard exchangeLog.telemetry.enabled else { return }
        var r = ExchangeRecord()
        r.active = true
        r.stream = true
        r.startNs = Reactor.monotonicNs()
        r.upstreamNs = r.startNs
        r.cluster = cluster
        r.endpoint = e
        if u < 0 { r.cause = e < 0 ? "no_endpoint" : "upstream_connect_failed" }
        if exchangeLog.telemetry.log != nil {
            exchangeLog.sampleCounter &+= 1
            r.sampled = Reactor.mix(requestIdSeed ^ (exchangeLog.sampleCounter &* 0xD1B5_4A32_D192_ED03)) <= exchangeLog.telemetry.sampleThreshold
        }
        if r.sampled {
            var w = HeadWriter(exchangeLog.text + xi * ExchangeLog.textStride + ExchangeLog.idOffset, capacity: ExchangeLog.idBytes)
            appendRequestId(&w)
            r.idLength = UInt16(w.count)
            keepStreamNames(xi, cluster: cluster, endpoint: e)
        }
        exchangeLog.records[xi] = r
    }

    private func keepStreamNames(_ xi: Int, cluster: Int32, endpoint e: Int32) {
        let base = exchangeLog.streamText + xi * ExchangeLog.streamStride
        base.initialize(repeating: 0, count: ExchangeLog.streamStride)
        let v = Int(exchanges[xi].view)
        guard v >= 0, v < viewCapacity else { return }
        func keep(_ b: StaticBytes, _ slot: Int) {
            guard let src = b.base else { return }
            let n = min(b.count, 63)
            (base + slot * 64).pointee = UInt8(n)
            (base + slot * 64 + 1).update(from: src.assumingMemoryBound(to: UInt8.self), count: n)
        }
        let l = Int(exchanges[xi].listener)
        if l >= 0 && l < views[v].listeners.count { keep(views[v].listeners[l].label, 0) }
        if cluster >= 0 && Int(cluster) < views[v].clusters.count { keep(views[v].clusters[Int(cluster)].label, 1) }
        if e >= 0, let t = views[v].table { keep(t._withUnsafeGuaranteedRef { $0.endpointKey(Int(e)) }, 2) }
    }

    /// A kept name (0 listener, 1 cluster, 2 endpoint) as pointer and length.
    func streamName(_ xi: Int, _ slot: Int) -> (UnsafePointer<UInt8>, Int) {
        let p = exchangeLog.streamText + xi * ExchangeLog.streamStride + slot * 64
        return (UnsafePointer(p + 1), Int(p.pointee))
    }

    /// The relay is ending: remember the bytes each way before the counters reset.
    func obsRelayBytes(_ a: Int32, _ b: Int32) {
        guard exchangeLog.telemetry.enabled, a >= 0, b >= 0 else { return }
        let (c, u) = socks[Int(a)].kind == .client ? (a, b) : (b, a)
        let xi = Int(socks[Int(c)].exchange)
        guard xi >= 0, exchangeLog.records[xi].active, exchangeLog.records[xi].stream else { return }
        exchangeLog.records[xi].relayIn = socks[Int(c)].relayedBytes
        exchangeLog.records[xi].relayOut = socks[Int(u)].relayedBytes
    }

    /// An HTTP exchange turned into a relay (101): it is logged now, while its snapshot is still held.
    func obsUpgraded(_ c: Int32) {
        let xi = Int(socks[Int(c)].exchange)
        guard exchangeLog.telemetry.enabled, xi >= 0, !exchangeLog.records[xi].stream else { return }
        obsEnd(xi)
    }
}
