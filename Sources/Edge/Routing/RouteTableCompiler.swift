import CIOUring
import Glibc
import Protocols

/// Turns a validated `EdgeConfig` into the flat `RouteTable` the reactors read.
/// Runs on the control thread; allocation and String work are fine here. It
/// never fails: the loader already validated everything (a regex that somehow
/// does not compile here becomes a condition that never holds).
package enum RouteTableCompiler {
    package static func compile(_ config: EdgeConfig, generation: Int = 1) -> RouteTable {
        var c = Compilation(arena: ByteArena())
        let workers = max(config.runtime.workers ?? 0, allowedCPUCount(), 1)
        c.addClusters(config.clusters, workers: max(config.runtime.workers ?? allowedCPUCount(), 1))
        var index = RouteIndexParts()
        for l in config.listeners {
            let first = c.parts.routes.count
            for r in l.routes { c.addRoute(r) }
            let count = c.parts.routes.count - first
            RouteIndexBuilder.addListener(routes: c.parts.routes, first: first, count: count, into: &index)
            var cl = CompiledListener(
                firstRoute: Int32(first), routeCount: Int32(count), limits: l.http.limits,
                maxBodyBytes: l.http.maxBodyBytes, headerTimeoutMs: clampMs(l.http.headerTimeoutMs),
                idleTimeoutMs: clampMs(l.http.idleTimeoutMs), bodyTimeoutMs: clampMs(l.http.bodyTimeoutMs))
            if let name = l.streamCluster, l.proto == .udp || l.proto == .dtls {
                cl.isDatagram = true
                cl.isDTLS = l.proto == .dtls
                cl.streamCluster = c.clusterIndex[name] ?? -1
                cl.udpSessionTimeoutMs = clampMs(l.udpSessionTimeoutMs)
                cl.udpMaxSessions = Int32(clamping: l.udpMaxSessions)
            } else if l.proto == .tcp || l.proto == .tls {
                // `protocol: tls` is a stream listener whose client side is TLS (Stream/TLSRelay.swift).
                cl.isStream = true
                cl.streamCluster = l.streamCluster.flatMap { c.clusterIndex[$0] } ?? -1
                cl.streamIdleTimeoutMs = clampMs(l.streamIdleTimeoutMs)
                RouteTableCompiler.addRelaySettings(l, to: &cl)
            }
            cl.acceptsProxyProtocol = l.acceptsProxyProtocol
            cl.proxyHeaderTimeoutMs = clampMs(l.proxyProtocolTimeoutMs)
            cl.maxConnections = Int32(clamping: l.maxConnections)
            cl.maxConnectionsPerIP = Int32(clamping: l.maxConnectionsPerIP)
            cl.minBodyRate = Int32(clamping: l.http.minBodyRate)
            if let t = l.tls, let context = t.context {
                cl.tlsContext = context.retainedPointer()
                cl.tlsHandshakeTimeoutMs = clampMs(t.handshakeTimeoutMs)
                cl.tlsMaxHandshakes = Int32(clamping: t.maxHandshakes)
            }
            c.label(listener: &cl, l, firstRoute: first)
            cl.http2 = CompiledHTTP2(l.http2)
            if l.http3.enabled, let q = l.quicContext {
                cl.http3 = CompiledHTTP3(l.http3, altSvc: c.arena.intern("Alt-Svc: h3=\":\(l.address.port)\"; ma=86400\r\n"))
                cl.quicContext = q.retainedPointer()
            }
            c.parts.listeners.append(cl)
        }
        let table = RouteTable(parts: c.parts, index: index, arena: c.arena, generation: generation, workerSlots: workers)
        if let policies = PolicyCompiler.compile(config, workers: workers) {
            table.policySet = policies
            table.policyHot = policies.hot
        }
        // Connection-counter slots are pinned by the table that uses them (see Admission).
        Admission.assignCounterSlots(table, names: config.listeners.map(\.name))
        return table
    }

    static func clampMs(_ v: Int) -> Int32 { Int32(clamping: max(1, v)) }

    /// CPUs this process may run on (what `workers: auto` uses).
    static func allowedCPUCount() -> Int { max(WorkerThread.allowedCPUs().count, 1) }

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

/// Mutable state of one compile: the arrays being filled and the arena their
/// `StaticBytes` point into.
struct Compilation {
    var parts = RouteTableParts()
    let arena: ByteArena
    var clusterIndex: [String: Int32] = [:]
    /// Pattern text → index in `parts.regexes` (each pattern compiled once).
    var regexIndex: [String: Int32] = [:]

    init(arena: ByteArena) { self.arena = arena }

    mutating func regex(_ pattern: String) -> Int32 {
        if let i = regexIndex[pattern] { return i }
        let compiled: CompiledRegex
        switch Regex.compile(pattern) {
        case .success(let r): compiled = r
        case .failure: compiled = CompiledRegex(code: nil, jit: false)
        }
        parts.regexes.append(compiled)
        let i = Int32(parts.regexes.count - 1)
        regexIndex[pattern] = i
        return i
    }

    mutating func addRoute(_ r: RouteConfig) {
        var cr = CompiledRoute(
            hostMatch: .any, host: .empty, pathMatch: .any, path: .empty, pathRegex: -1, methodMask: 0,
            firstHeaderMatcher: 0, headerMatcherCount: 0, firstQueryMatcher: 0, queryMatcherCount: 0,
            cluster: -1, firstSplit: 0, splitCount: 0, splitTotalWeight: 0,
            stripPrefix: r.stripPrefix, hasPrefixRewrite: false, prefixRewrite: .empty, hostRewrite: .empty,
            firstRequestEdit: 0, requestEditCount: 0, firstResponseEdit: 0, responseEditCount: 0,
            timeoutMs: RouteTableCompiler.clampMs(r.timeoutMs), directHead: .empty, directBody: .empty)
        addMatch(r.match, to: &cr)
        addAction(r.action, to: &cr)
        if let p = r.prefixRewrite {
            cr.hasPrefixRewrite = true
            cr.prefixRewrite = arena.intern(p)
        }
        if let h = r.hostRewrite { cr.hostRewrite = arena.intern(h) }
        (cr.firstRequestEdit, cr.requestEditCount) = addEdits(r.requestHeaders)
        (cr.firstResponseEdit, cr.responseEditCount) = addEdits(r.responseHeaders)
        if let m = r.mirror, let ci = clusterIndex[m.cluster] {
            cr.mirrorCluster = ci
            cr.mirrorPercent = Int32(m.percent)
        }
        if let cc = r.cache { cr.cache = CompiledCacheSettings(cc) }
        if let z = r.compression { cr.compression = CompiledCompression(z, arena: arena) }
        parts.routes.append(cr)
    }

    private mutating func addMatch(_ m: RouteMatchConfig, to cr: inout CompiledRoute) {
        if let h = m.host, h != "*" {
            if h.hasPrefix("*.") {
                cr.hostMatch = .wildcard
                cr.host = arena.internLower(String(h.dropFirst()))   // ".example.com"
            } else {
                cr.hostMatch = .exact
                cr.host = arena.internLower(h)
            }
        }
        if let p = m.pathExact {
            cr.pathMatch = .exact; cr.path = arena.intern(p)
        } else if let p = m.pathPrefix {
            cr.pathMatch = .prefix; cr.path = arena.intern(p)
        } else if let p = m.pathRegex {
            cr.pathMatch = .regex; cr.pathRegex = regex(p)
        }
        for method in m.methods {
            cr.methodMask |= UInt16(1) << UInt16(RouteTableCompiler.methodKind(method).rawValue)
        }
        cr.firstHeaderMatcher = Int32(parts.matchers.count)
        for h in m.headers { parts.matchers.append(matcher(arena.internLower(h.name), h.kind)) }
        cr.headerMatcherCount = Int32(parts.matchers.count) - cr.firstHeaderMatcher
        cr.firstQueryMatcher = Int32(parts.matchers.count)
        for q in m.query { parts.matchers.append(matcher(arena.intern(q.name), q.kind)) }
        cr.queryMatcherCount = Int32(parts.matchers.count) - cr.firstQueryMatcher
    }

    private mutating func matcher(_ name: StaticBytes, _ kind: HeaderMatchConfig.Kind) -> CompiledMatcher {
        switch kind {
        case .exact(let v): return CompiledMatcher(kind: .exact, name: name, value: arena.intern(v), regex: -1)
        case .present(let p): return CompiledMatcher(kind: p ? .present : .absent, name: name, value: .empty, regex: -1)
        case .regex(let pattern): return CompiledMatcher(kind: .regex, name: name, value: .empty, regex: regex(pattern))
        }
    }

    private mutating func addAction(_ action: RouteAction, to cr: inout CompiledRoute) {
        switch action {
        case .cluster(let name):
            cr.cluster = clusterIndex[name] ?? -1
        case .weighted(let arms):
            cr.cluster = -2
            cr.firstSplit = Int32(parts.splits.count)
            var total: Int32 = 0
            // Zero-weight arms are kept out: they can never be picked.
            for arm in arms where arm.weight > 0 {
                guard let ci = clusterIndex[arm.name] else { continue }
                total = total.addingReportingOverflow(Int32(clamping: arm.weight)).partialValue
                parts.splits.append(CompiledSplit(cluster: ci, cumulativeWeight: total))
            }
            cr.splitCount = Int32(parts.splits.count) - cr.firstSplit
            cr.splitTotalWeight = total
        case .direct(let d):
            var head = "HTTP/1.1 \(d.status) \(reasonPhrase(UInt16(clamping: d.status)))\r\n"
            var hasType = false
            for (k, v) in d.headers {
                let lower = k.lowercased()
                if lower == "content-length" || lower == "connection" { continue }
                if lower == "content-type" { hasType = true }
                head += "\(k): \(v)\r\n"
            }
            if !hasType && !d.body.isEmpty { head += "Content-Type: text/plain\r\n" }
            let bodyless = d.status == 204 || d.status == 304 || d.status < 200
            if !bodyless { head += "Content-Length: \(d.body.utf8.count)\r\n" }
            cr.directHead = arena.intern(head)
            cr.directStatus = UInt16(clamping: d.status)
            cr.directBody = bodyless ? .empty : arena.intern(d.body)
        }
    }

    /// remove, then set, then add (the order the head writer applies them).
    private mutating func addEdits(_ e: HeaderEditsConfig) -> (Int32, Int32) {
        let first = Int32(parts.headerEdits.count)
        let arena = self.arena
        func edit(_ op: CompiledHeaderEdit.Op, _ name: String, _ value: String) -> CompiledHeaderEdit {
            CompiledHeaderEdit(op: op, name: arena.intern(name), lowerName: arena.internLower(name), value: arena.intern(value))
        }
        for n in e.remove { parts.headerEdits.append(edit(.remove, n, "")) }
        for (n, v) in e.set { parts.headerEdits.append(edit(.set, n, v)) }
        for (n, v) in e.add { parts.headerEdits.append(edit(.add, n, v)) }
        return (first, Int32(parts.headerEdits.count) - first)
    }
}
