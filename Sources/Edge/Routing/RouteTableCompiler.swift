import Glibc
import Protocols

/// Turns a validated `EdgeConfig` into the flat `RouteTable` the reactors read.
/// Runs on the control thread; allocation and String work are fine here.
enum RouteTableCompiler {
    static func compile(_ config: EdgeConfig) -> RouteTable {
        var bytes: [UInt8] = []
        var spans: [(offset: Int, count: Int)] = []
        func intern(_ b: [UInt8]) -> Int { spans.append((bytes.count, b.count)); bytes += b; return spans.count - 1 }

        var clusterIndex: [String: Int32] = [:]
        var clusters: [CompiledCluster] = []
        var endpoints: [CompiledEndpoint] = []
        var slots: [Int32] = []
        for (ci, c) in config.clusters.enumerated() {
            clusterIndex[c.name] = Int32(ci)
            let first = Int32(endpoints.count), firstSlot = Int32(slots.count)
            for e in c.endpoints {
                let w = max(1, min(e.weight, 1000))
                for _ in 0..<w { slots.append(Int32(endpoints.count)) }
                endpoints.append(CompiledEndpoint(address: e.address.storage, length: e.address.length,
                                                  weight: Int32(w), cluster: Int32(ci)))
            }
            clusters.append(CompiledCluster(
                firstEndpoint: first, endpointCount: Int32(c.endpoints.count),
                firstSlot: firstSlot, slotCount: Int32(slots.count) - firstSlot,
                connectTimeoutMs: clampMs(c.connectTimeoutMs), maxIdlePerEndpoint: Int32(max(0, min(c.maxIdlePerEndpoint, 1 << 20))),
                idleTimeoutMs: clampMs(c.idleTimeoutMs)))
        }

        // Routes keep interned-span indices until the arena exists.
        struct Pending { var route: CompiledRoute; var host: Int?; var path: Int?; var head: Int?; var body: Int? }
        var pending: [Pending] = []
        var listeners: [CompiledListener] = []
        for l in config.listeners {
            let first = Int32(pending.count)
            for r in l.routes {
                var cr = CompiledRoute(hostMatch: .any, host: .empty, pathMatch: .any, path: .empty, methodMask: 0,
                                       cluster: -1, stripPrefix: r.stripPrefix, timeoutMs: clampMs(r.timeoutMs),
                                       directHead: .empty, directBody: .empty)
                var p = Pending(route: cr, host: nil, path: nil, head: nil, body: nil)
                if let h = r.match.host, h != "*" {
                    cr.hostMatch = .exact
                    p.host = intern(Array(hostWithoutPort(h).lowercased().utf8))
                }
                if let exact = r.match.pathExact {
                    cr.pathMatch = .exact; p.path = intern(Array(exact.utf8))
                } else if let prefix = r.match.pathPrefix, prefix != "/" || r.stripPrefix {
                    cr.pathMatch = .prefix; p.path = intern(Array(prefix.utf8))
                }
                for m in r.match.methods { cr.methodMask |= UInt16(1) << UInt16(methodKind(m).rawValue) }
                switch r.action {
                case .cluster(let name):
                    cr.cluster = clusterIndex[name] ?? -1
                case .direct(let d):
                    var head = "HTTP/1.1 \(d.status) \(reasonPhrase(UInt16(clamping: d.status)))\r\n"
                    var hasType = false
                    for (k, v) in d.headers {
                        if k.lowercased() == "content-length" || k.lowercased() == "connection" { continue }
                        if k.lowercased() == "content-type" { hasType = true }
                        head += "\(k): \(v)\r\n"
                    }
                    if !hasType && !d.body.isEmpty { head += "Content-Type: text/plain\r\n" }
                    let bodyless = d.status == 204 || d.status == 304 || d.status < 200
                    if !bodyless { head += "Content-Length: \(d.body.utf8.count)\r\n" }
                    p.head = intern(Array(head.utf8))
                    p.body = intern(bodyless ? [] : Array(d.body.utf8))
                }
                p.route = cr
                pending.append(p)
            }
            listeners.append(CompiledListener(
                firstRoute: first, routeCount: Int32(pending.count) - first, limits: l.http.limits,
                maxBodyBytes: l.http.maxBodyBytes, headerTimeoutMs: clampMs(l.http.headerTimeoutMs),
                idleTimeoutMs: clampMs(l.http.idleTimeoutMs), bodyTimeoutMs: clampMs(l.http.bodyTimeoutMs)))
        }

        let arena = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { arena.copyMemory(from: b, byteCount: $0.count) } }
        func resolve(_ i: Int?) -> StaticBytes {
            guard let i else { return .empty }
            return StaticBytes(base: UnsafeRawPointer(arena + spans[i].offset), count: spans[i].count)
        }
        let routes = pending.map { p -> CompiledRoute in
            var r = p.route
            r.host = resolve(p.host); r.path = resolve(p.path)
            r.directHead = resolve(p.head); r.directBody = resolve(p.body)
            return r
        }
        return RouteTable(listeners: listeners, routes: routes, clusters: clusters,
                          endpoints: endpoints, endpointSlots: slots, arena: arena)
    }

    static func clampMs(_ v: Int) -> Int32 { Int32(clamping: max(1, v)) }

    static func hostWithoutPort(_ h: String) -> String {
        if h.hasPrefix("[") { return h }
        if let colon = h.lastIndex(of: ":") { return String(h[..<colon]) }
        return h
    }

    static func methodKind(_ token: String) -> HTTPMethod {
        switch token.uppercased() {
        case "GET": return .get
        case "HEAD": return .head
        case "POST": return .post
        case "PUT": return .put
        case "DELETE": return .delete
        case "CONNECT": return .connect
        case "OPTIONS": return .options
        case "TRACE": return .trace
        case "PATCH": return .patch
        default: return .other
        }
    }
}
