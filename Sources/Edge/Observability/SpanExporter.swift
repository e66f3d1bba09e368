import Atomics
import CIOUring
import Glibc
import Protocols

/// Drains the workers' span rings and POSTs them in batches to the OTLP/HTTP
/// collector (`POST /v1/traces`, JSON encoding) from its own control-side
/// thread, once a second or sooner when a batch fills. A collector that is
/// down costs dropped spans, never a stalled worker.
final class SpanExporter: @unchecked Sendable {
    let config: TracingConfig
    let rings: [ByteRing]
    let exported = ManagedAtomic<Int>(0)
    let failed = ManagedAtomic<Int>(0)
    private let stopFlag = ManagedAtomic<Bool>(false)
    private var thread: pthread_t?
    static let batch = 512

    init(config: TracingConfig, rings: [ByteRing]) {
        self.config = config
        self.rings = rings
    }

    func start() { thread = WorkerThread.spawn(name: "edge-spans") { [self] in run() } }

    func stop() {
        stopFlag.store(true, ordering: .releasing)
        if let t = thread { pthread_join(t, nil) }
        thread = nil
    }

    private func run() {
        var pending: [SpanRecord] = []
        var lastSend = AdminServer.nowMs()
        while true {
            let stopping = stopFlag.load(ordering: .acquiring)
            for ring in rings {
                ring.drain { p, n in
                    var off = 0
                    while off + SpanRecord.size <= n {
                        pending.append(UnsafeRawPointer(p + off).loadUnaligned(as: SpanRecord.self))
                        off += SpanRecord.size
                    }
                }
            }
            let now = AdminServer.nowMs()
            if !pending.isEmpty && (pending.count >= Self.batch || now - lastSend >= 1000 || stopping) {
                while !pending.isEmpty {
                    let chunk = Array(pending.prefix(Self.batch))
                    pending.removeFirst(chunk.count)
                    if post(OTLPJSON.body(chunk, service: config.serviceName)) {
                        exported.wrappingIncrement(by: chunk.count, ordering: .relaxed)
                    } else {
                        failed.wrappingIncrement(by: chunk.count, ordering: .relaxed)
                    }
                }
                lastSend = now
            }
            if stopping { break }
            usleep(50_000)
        }
    }

    /// One blocking POST with 2 s timeouts; true on a 2xx answer.
    private func post(_ body: String) -> Bool {
        let addr = config.collector
        let fd = socket(addr.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var storage = addr.storage
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, addr.length) } }
        guard rc == 0 else { return false }
        let head = "POST /v1/traces HTTP/1.1\r\nHost: \(addr.text)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array((head + body).utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { b -> Int in
                guard let base = b.baseAddress else { return -1 }
                return Glibc.send(fd, base + off, b.count - off, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return false }
            off += n
        }
        var reply = [UInt8](repeating: 0, count: 64)
        let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 12 else { return false }
        return reply[9] == UInt8(ascii: "2")  // "HTTP/1.1 2xx"
    }
}

/// OTLP/HTTP JSON encoding of a batch (ids as hex, times as decimal strings).
enum OTLPJSON {
    static let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "HTTP"]

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    static func body(_ spans: [SpanRecord], service: String) -> String {
        let routes = MetricLabels.shared.routeLabels, clusters = MetricLabels.shared.clusterLabels
        let items = spans.map { s -> String in
            let method = Int(s.method) < methods.count ? methods[Int(s.method)] : "HTTP"
            let route: (listener: String, route: String) = Int(s.routeId) < routes.count && s.routeId >= 0 ? routes[Int(s.routeId)] : ("other", "other")
            var attrs = [
                attr("http.request.method", string: method),
                attr("http.route", string: route.route),
                attr("edge.listener", string: route.listener),
                #"{"key":"http.response.status_code","value":{"intValue":"\#(s.status)"}}"#,
            ]
            if s.clusterId >= 0 && Int(s.clusterId) < clusters.count { attrs.append(attr("edge.cluster", string: clusters[Int(s.clusterId)])) }
            let parent = s.parentSpanId == 0 ? "" : #","parentSpanId":"\#(hex(s.parentSpanId))""#
            let status = s.status >= 500 || s.status == 0 ? 2 : 0
            return #"{"traceId":"\#(hex(s.traceHi))\#(hex(s.traceLo))","spanId":"\#(hex(s.spanId))"\#(parent),"name":"\#(method) \#(AdminInspect.quote(route.route).dropFirst().dropLast())","kind":2,"startTimeUnixNano":"\#(s.startUnixNs)","endTimeUnixNano":"\#(s.endUnixNs)","attributes":[\#(attrs.joined(separator: ","))],"status":{"code":\#(status)}}"#
        }
        return #"{"resourceSpans":[{"resource":{"attributes":[\#(attr("service.name", string: service))]},"scopeSpans":[{"scope":{"name":"edge"},"spans":[\#(items.joined(separator: ","))]}]}]}"#
    }

    static func attr(_ key: String, string value: String) -> String {
        #"{"key":\#(AdminInspect.quote(key)),"value":{"stringValue":\#(AdminInspect.quote(value))}}"#
    }
}
