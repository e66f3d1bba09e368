import Edge
import Protocols

// FuzzAPI exists for the libFuzzer targets in Fuzz/ only (scripts/fuzz). It is
// the smallest public surface that lets that separate package drive the
// internal config loader: YAML text in, `ConfigLoader.parse` (what `edge
// validate` / `edge run` use, minus reading the file), then on success
// `RouteTableCompiler.compile` and a few `RouteTable.match` /
// `ReactorBalancer.pick` calls on the result. No sockets and no files. Host
// names in endpoints are resolved by the loader with getaddrinfo; the fuzz
// package links a stub that refuses every lookup, so nothing leaves the
// process there either. Nothing in Edge calls this (EdgeTestSupport is not
// linked into the `edge` binary); it is not a stable API.
// A broken invariant is returned as a message; the fuzz target turns it into
// a crash for libFuzzer (nothing here traps).

public enum FuzzEntry {
    /// Requests matched against every listener of a config that loads.
    nonisolated(unsafe) static let probes: [MicroBenchRequest] = [
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "POST /api/v1/items?x=1&y=2 HTTP/1.1\r\nHost: API.Example.com.:8080\r\nX-Tenant: a\r\nCookie: s=1\r\n\r\n",
        "DELETE http://www.example.org/static/a.css HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
        "GET /health HTTP/1.0\r\n\r\n",
    ].compactMap { MicroBenchRequest(head: $0) }

    /// Loads `bytes` as an Edge YAML config (invalid UTF-8 is replaced, as a
    /// file read would). `valid` says whether it is a valid config. A valid
    /// config is also compiled into a route table and probed; an invalid one
    /// must yield a `fuzz.yaml[:line]: ...` error message. `violation` names
    /// the broken invariant, nil when all hold.
    public static func loadConfig(_ bytes: UnsafeRawBufferPointer) -> (valid: Bool, violation: String?) {
        let text = String(decoding: bytes, as: UTF8.self)
        let config: EdgeConfig
        do {
            config = try ConfigLoader.parse(yaml: text, file: "fuzz.yaml")
        } catch {
            let d = error.description
            if !d.hasPrefix("fuzz.yaml") || error.problem.isEmpty {
                return (false, "config error message is not `file:line: field: problem`: \(d)")
            }
            return (false, nil)
        }
        if config.listeners.isEmpty { return (true, "a valid config has no listener") }
        _ = config.summary
        return (true, check(config, RouteTableCompiler.compile(config)))
    }

    /// What `edge validate` would print for the text: the summary line, or the
    /// `fuzz.yaml:line: field: problem` error (for looking at corpus entries).
    public static func describeConfig(_ bytes: UnsafeRawBufferPointer) -> String {
        do {
            return try ConfigLoader.parse(yaml: String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml").summary
        } catch {
            return error.description
        }
    }

    static func check(_ config: EdgeConfig, _ table: RouteTable) -> String? {
        let routeTotal = config.routeCount
        guard table.listeners.count == config.listeners.count, table.clusters.count == config.clusters.count,
              table.routes.count >= routeTotal else {
            return "route table shape: \(table.listeners.count) listeners, \(table.clusters.count) clusters, "
                + "\(table.routes.count) routes for a config with \(config.listeners.count), "
                + "\(config.clusters.count), \(routeTotal)"
        }
        for l in 0..<table.listeners.count {
            let cl = table.listeners[l]
            let first = Int(cl.firstRoute), end = first + Int(cl.routeCount)
            for p in probes {
                let r = table.match(listener: l, p.view.pointee, worker: 0)
                if r != -1 && (r < first || r >= end) {
                    return "listener \(l) matched route \(r), outside its routes \(first)..<\(end)"
                }
            }
        }
        guard table.clusters.count > 0 else { return nil }
        var balancer = ReactorBalancer(table: table, seed: 7)
        defer { balancer.deallocate() }
        let active = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(table.endpoints.count, 1))
        defer { active.deallocate() }
        active.initialize(repeating: 0)
        for c in 0..<table.clusters.count {
            let first = Int(table.clusters[c].firstEndpoint), end = first + Int(table.clusters[c].endpointCount)
            for p in probes {
                let e = Int(balancer.pick(cluster: Int32(c), request: UnsafePointer(p.view),
                                          active: UnsafePointer(active.baseAddress.unsafelyUnwrapped)))
                if e != -1 && (e < first || e >= end || e >= table.endpoints.count) {
                    return "cluster \(c) picked endpoint \(e), outside its endpoints \(first)..<\(end)"
                }
            }
        }
        return nil
    }
}

extension FuzzEntry {
    /// JWT parsing (split, base64url, header and claims JSON) over arbitrary
    /// bytes; the broken invariant, nil when all hold.
    public static func parseJWT(_ bytes: UnsafeRawBufferPointer) -> String? {
        JWTParserCheck.check(bytes)
    }
}

extension FuzzEntry {
    /// The HMAC `Authorization` header parser and the IMF-fixdate parser over
    /// arbitrary bytes; the broken invariant, nil when all hold.
    public static func parseHMAC(_ bytes: UnsafeRawBufferPointer) -> String? {
        HMACParserCheck.check(bytes)
    }
}

extension FuzzEntry {
    /// Datagrams through the DTLS listen (cookie) path or a DTLS server SSL
    /// (`DTLSFuzzTarget` in Edge's Transport/DTLS/); the broken invariant, nil when all hold.
    public static func dtlsDatagrams(_ bytes: UnsafeRawBufferPointer) -> String? {
        DTLSFuzzTarget.run(bytes)
    }
}
