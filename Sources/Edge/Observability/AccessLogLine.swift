import Glibc

/// Formats one access-log line in the worker's scratch buffer, following the
/// compiled format (JSON: every field; text: the template), and appends it
/// to the worker's ring. No String, no allocation; a line that overflows the
/// scratch buffer or the ring is dropped and counted.
extension Reactor {
    func writeAccessLine(_ xi: Int, _ r: ExchangeRecord, _ ex: Exchange, _ view: ViewLabels, nowNs: Int64, _ ring: ByteRing) {
        let format = exchangeLog.telemetry.format
        var w = LineWriter(exchangeLog.line, capacity: ExchangeLog.lineBytes - 1)
        let text = exchangeLog.text + xi * ExchangeLog.textStride
        if r.stream { writeStreamLine(&w, xi, r, ex, format, nowNs: nowNs) } else {
        for op in format.ops {
            w.bytes(op.literal.base, op.literal.count)
            guard let field = op.field else { continue }
            switch field {
            case .time, .requestId, .client: writeSharedField(&w, field, r, ex, format.json, text: text)
            case .listener:
                let l = Int(ex.listener)
                if l >= 0 && l < view.listeners.count { string(&w, format.json, view.listeners[l].label) } else { null(&w, format.json) }
            case .route:
                let k = Int(ex.route)
                if k >= 0 && k < view.routes.count { string(&w, format.json, view.routes[k].label) } else { null(&w, format.json) }
            case .cluster:
                let k = Int(r.cluster)
                if k >= 0 && k < view.clusters.count { string(&w, format.json, view.clusters[k].label) } else { null(&w, format.json) }
            case .endpoint:
                if r.endpoint >= 0, let t = view.table {
                    let key = t._withUnsafeGuaranteedRef { $0.endpointKey(Int(r.endpoint)) }
                    string(&w, format.json, key)
                } else { null(&w, format.json) }
            case .method: string(&w, format.json, text + ExchangeLog.methodOffset, Int(r.methodLength))
            case .authority: string(&w, format.json, text + ExchangeLog.authorityOffset, Int(r.authorityLength))
            case .path: string(&w, format.json, text + ExchangeLog.pathOffset, Int(r.pathLength))
            case .proto:
                if format.json { w.byte(0x22) }
                if ex.versionMinor == 0 { w.text("HTTP/1.0") } else { w.text("HTTP/1.1") }
                if format.json { w.byte(0x22) }
            case .status: w.decimal(UInt64(r.status))
            case .bytesIn: w.decimal(r.bytesIn &+ ex.request.payloadBytes)
            case .bytesOut: w.decimal(ex.response.payloadBytes &+ r.localBodyBytes)
            case .connectMs: millis(&w, format.json, from: r.upstreamNs, to: r.connectedNs)
            case .firstByteMs: millis(&w, format.json, from: r.upstreamNs, to: r.firstByteNs)
            case .totalMs: w.millis(us: (nowNs - r.startNs) / 1000)
            case .error:
                if let cause = r.cause {
                    string(&w, format.json, cause.utf8Start, cause.utf8CodeUnitCount)
                } else { null(&w, format.json) }
            case .tlsVersion, .sni, .consumer:
                null(&w, format.json)
            }
        }
        }
        if w.overflowed {
            ring.dropped.store(ring.dropped.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
            return
        }
        w.count = min(w.count, ExchangeLog.lineBytes - 1)
        exchangeLog.line[w.count] = 0x0A
        ring.push(exchangeLog.line, w.count + 1)
    }

    /// The line of an L4 session: same fields, HTTP ones null, bytes each way.
    private func writeStreamLine(_ w: inout LineWriter, _ xi: Int, _ r: ExchangeRecord, _ ex: Exchange, _ format: AccessLogFormat, nowNs: Int64) {
        let text = exchangeLog.text + xi * ExchangeLog.textStride
        for op in format.ops {
            w.bytes(op.literal.base, op.literal.count)
            guard let field = op.field else { continue }
            switch field {
            case .time, .requestId, .client: writeSharedField(&w, field, r, ex, format.json, text: text)
            case .listener: let (p, n) = streamName(xi, 0); string(&w, format.json, p, n)
            case .cluster: let (p, n) = streamName(xi, 1); string(&w, format.json, p, n)
            case .endpoint:
                let (p, n) = streamName(xi, 2)
                if n > 0 { string(&w, format.json, p, n) } else { null(&w, format.json) }
            case .proto:
                if format.json { w.byte(0x22) }
                // `protocol: tls` listeners: the client side was TLS (the line is written before the session is freed).
                if ex.client >= 0 && socks[Int(ex.client)].transport == .tls { w.text("tls") } else { w.text("tcp") }
                if format.json { w.byte(0x22) }
            case .bytesIn: w.decimal(r.relayIn)
            case .bytesOut: w.decimal(r.relayOut)
            case .connectMs: millis(&w, format.json, from: r.upstreamNs, to: r.connectedNs)
            case .totalMs: w.millis(us: (nowNs - r.startNs) / 1000)
            case .error:
                if let cause = r.cause { string(&w, format.json, cause.utf8Start, cause.utf8CodeUnitCount) } else { null(&w, format.json) }
            case .route, .method, .authority, .path, .status, .firstByteMs, .tlsVersion, .sni, .consumer:
                null(&w, format.json)
            }
        }
    }

    /// Fields written alike on HTTP and L4 lines.
    @inline(__always) private func writeSharedField(_ w: inout LineWriter, _ field: AccessLogField, _ r: ExchangeRecord, _ ex: Exchange,
                                                    _ json: Bool, text: UnsafeMutablePointer<UInt8>) {
        switch field {
        case .time:
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            if json { w.byte(0x22) }
            w.rfc3339(seconds: Int64(ts.tv_sec), millis: Int64(ts.tv_nsec) / 1_000_000)
            if json { w.byte(0x22) }
        case .requestId: string(&w, json, text + ExchangeLog.idOffset, Int(r.idLength))
        case .client:
            let ip = clientAddressText(ex.client)
            string(&w, json, ip.baseAddress?.assumingMemoryBound(to: UInt8.self), ip.count)
        default: break
        }
    }

    @inline(__always) private func string(_ w: inout LineWriter, _ json: Bool, _ p: UnsafePointer<UInt8>?, _ n: Int) {
        if json {
            w.byte(0x22); w.jsonEscaped(UnsafeRawPointer(p), n); w.byte(0x22)
        } else {
            w.plain(UnsafeRawPointer(p), n)
        }
    }

    @inline(__always) private func string(_ w: inout LineWriter, _ json: Bool, _ b: StaticBytes) {
        string(&w, json, b.base?.assumingMemoryBound(to: UInt8.self), b.count)
    }

    @inline(__always) private func null(_ w: inout LineWriter, _ json: Bool) {
        if json { w.text("null") } else { w.byte(UInt8(ascii: "-")) }
    }

    @inline(__always) private func millis(_ w: inout LineWriter, _ json: Bool, from a: Int64, to b: Int64) {
        if a > 0 && b >= a { w.millis(us: (b - a) / 1000) } else { null(&w, json) }
    }
}
