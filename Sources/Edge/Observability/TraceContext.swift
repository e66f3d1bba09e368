import Glibc
import Protocols

/// One finished, sampled span as the reactor hands it to the exporter:
/// fixed size (a power of two, so records never straddle the ring's wrap).
struct SpanRecord {
    static let size = 128
    var traceHi: UInt64 = 0
    var traceLo: UInt64 = 0
    var spanId: UInt64 = 0
    var parentSpanId: UInt64 = 0
    var startUnixNs: Int64 = 0
    var endUnixNs: Int64 = 0
    var routeId: Int32 = 0
    var clusterId: Int32 = -1
    var status: UInt16 = 0
    /// `HTTPMethod` raw value (the exporter names it).
    var method: UInt8 = 0
}

/// W3C Trace Context (`traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`):
/// parse the caller's, or start a new trace; Edge adds a span of its own and
/// sends the upstream a traceparent naming that span as parent. `tracestate`
/// passes through untouched. No allocation.
extension Reactor {
    @inline(__always) static func isTraceparent(_ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> Bool {
        guard name.length == 11, Int(name.offset) + 11 <= buf.count else { return false }
        let want: StaticString = "traceparent"
        let w = want.utf8Start
        for k in 0..<11 where (buf[Int(name.offset) + k] | 0x20) != w[k] { return false }
        return true
    }

    @inline(__always) private static func hexValue(_ b: UInt8) -> UInt64? {
        switch b {
        case 48...57: return UInt64(b - 48)
        case 97...102: return UInt64(b - 87)
        default: return nil  // the spec allows lower-case hex only
        }
    }

    private static func hex(_ p: UnsafeRawBufferPointer, _ at: Int, _ digits: Int) -> UInt64? {
        var v: UInt64 = 0
        for k in 0..<digits {
            guard let d = hexValue(p[at + k]) else { return nil }
            v = v << 4 | d
        }
        return v
    }

    /// Fills the record's trace context from the request (or a new trace), deciding sampling.
    func beginTrace(_ r: inout ExchangeRecord, _ request: NeutralRequestHead) {
        r.traced = true
        exchangeLog.sampleCounter &+= 1
        let seed = requestIdSeed ^ (exchangeLog.sampleCounter &* 0x9E37_79B9_7F4A_7C15)
        r.spanId = Reactor.mix(seed &+ 1) | 1  // never all zero
        for f in request.fields where Reactor.isTraceparent(request.bytes, f.name) {
            let start = Int(f.value.offset), n = Int(f.value.length)
            guard n >= 55, start >= 0, start + n <= request.bytes.count else { break }
            let v = UnsafeRawBufferPointer(rebasing: request.bytes[start..<(start + n)])
            guard v[2] == 0x2D, v[35] == 0x2D, v[52] == 0x2D, let version = Reactor.hex(v, 0, 2), version != 0xFF,
                  let hi = Reactor.hex(v, 3, 16), let lo = Reactor.hex(v, 19, 16), hi | lo != 0,
                  let parent = Reactor.hex(v, 36, 16), parent != 0, let flags = Reactor.hex(v, 53, 2),
                  version != 0 || n == 55 else { break }
            r.traceHi = hi; r.traceLo = lo; r.parentSpanId = parent
            r.traceSampled = flags & 1 == 1  // parent-based: the caller decided
            return
        }
        // No (valid) traceparent: a new trace, head-sampled by ratio.
        r.traceHi = Reactor.mix(seed &+ 2)
        r.traceLo = Reactor.mix(seed &+ 3) | 1
        r.parentSpanId = 0
        r.traceSampled = Reactor.mix(seed &+ 4) <= exchangeLog.telemetry.traceThreshold
    }

    /// `traceparent` for the upstream: same trace, Edge's span as parent.
    @inline(__always) func appendTraceparent(_ xi: Int, _ w: inout HeadWriter) {
        guard exchangeLog.telemetry.spans != nil else { return }
        let r = exchangeLog.records[xi]
        guard r.active && r.traced else { return }
        w.append("traceparent: 00-")
        w.appendHex(r.traceHi, minDigits: 16); w.appendHex(r.traceLo, minDigits: 16)
        w.appendByte(0x2D)
        w.appendHex(r.spanId, minDigits: 16)
        w.append(r.traceSampled ? "-01\r\n" : "-00\r\n")
    }

    /// Whether a request field is the caller's traceparent that Edge rewrites.
    @inline(__always) func replacesTraceparent(_ buf: UnsafeRawBufferPointer, _ f: HeaderField) -> Bool {
        exchangeLog.telemetry.spans != nil && f.kind == .other && Reactor.isTraceparent(buf, f.name)
    }

    /// Hands a sampled span to the exporter (dropped if its ring is full).
    func finishSpan(_ r: ExchangeRecord, method: HTTPMethod, routeId: Int32, clusterId: Int32, nowNs: Int64, _ ring: ByteRing) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let endUnix = Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
        // Written into the (free again) line scratch: records are exactly SpanRecord.size bytes.
        let slot = UnsafeMutableRawPointer(exchangeLog.line)
        slot.initializeMemory(as: UInt8.self, repeating: 0, count: SpanRecord.size)
        var s = SpanRecord()
        s.traceHi = r.traceHi; s.traceLo = r.traceLo; s.spanId = r.spanId; s.parentSpanId = r.parentSpanId
        s.endUnixNs = endUnix
        s.startUnixNs = endUnix &- (nowNs &- r.startNs)
        s.routeId = routeId; s.clusterId = clusterId; s.status = r.status; s.method = method.rawValue
        slot.storeBytes(of: s, as: SpanRecord.self)
        ring.push(exchangeLog.line, SpanRecord.size)
    }
}
