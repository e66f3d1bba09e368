/// JSON bodies of `GET /config`, `GET /clusters` and `GET /listeners`,
/// built from the running (last accepted) config. Secrets never appear: the
/// admin token shows only where it comes from.
enum AdminInspect {
    /// The same RFC 8259 escaping as the JSON log lines.
    static func quote(_ s: String) -> String { JSONLogHandler.quote(s) }

    static func object(_ pairs: [(String, String)]) -> String {
        "{" + pairs.map { "\(quote($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ",") + "]" }

    static func config(_ c: EdgeConfig) -> String {
        var admin: [(String, String)] = [("address", quote(c.admin.addressText))]
        if let source = c.admin.auth.tokenSource {
            admin.append(("token", quote("<redacted: from \(source)>")))
            admin.append(("auth_reads", "\(c.admin.auth.authReads)"))
        }
        var root: [(String, String)] = [
            ("runtime", object([("workers", c.runtime.workers.map { "\($0)" } ?? quote("auto")),
                                ("drain_timeout_ms", "\(c.runtime.drainTimeoutMs)"),
                                ("log_format", quote(c.runtime.logFormat))])),
            ("admin", object(admin)),
            ("metrics", object([("histograms", "\(c.observability.metrics.histograms)")])),
        ]
        if let a = c.observability.accessLog {
            root.append(("access_log", object([("path", quote(a.path)), ("format", quote(a.format.rawValue)),
                                               ("sample", "\(a.sample)"), ("buffer_bytes", "\(a.bufferBytes)")])))
        }
        root.append(("listeners", array(c.listeners.map(listener))))
        root.append(("clusters", array(c.clusters.map { cl in
            object([("name", quote(cl.name)), ("balance", quote(cl.balance.rawValue)),
                    ("connect_timeout_ms", "\(cl.connectTimeoutMs)"),
                    ("endpoints", array(cl.endpoints.map { e in
                        object([("address", quote(e.hostName.map { _ in e.address.text } ?? e.address.text)), ("weight", "\(e.weight)")])
                    }))])
        })))
        return object(root)
    }

    static func listener(_ l: ListenerConfig) -> String {
        var pairs: [(String, String)] = [("name", quote(l.name)), ("address", quote(l.address.text)),
                                         ("protocol", quote(l.proto.rawValue))]
        if let s = l.streamCluster { pairs.append(("cluster", quote(s))) }
        pairs.append(("routes", array(l.routes.enumerated().map { k, r in route(r, index: k) })))
        return object(pairs)
    }

    static func route(_ r: RouteConfig, index: Int) -> String {
        var pairs: [(String, String)] = [("name", quote(r.name ?? "\(index)"))]
        var match: [(String, String)] = []
        if let h = r.match.host { match.append(("host", quote(h))) }
        if let p = r.match.pathPrefix { match.append(("path_prefix", quote(p))) }
        if let p = r.match.pathExact { match.append(("path", quote(p))) }
        if let p = r.match.pathRegex { match.append(("path_regex", quote(p))) }
        if !r.match.methods.isEmpty { match.append(("methods", array(r.match.methods.map(quote)))) }
        pairs.append(("match", object(match)))
        switch r.action {
        case .cluster(let c): pairs.append(("cluster", quote(c)))
        case .weighted(let arms): pairs.append(("clusters", array(arms.map { object([("name", quote($0.name)), ("weight", "\($0.weight)")]) })))
        case .direct(let d): pairs.append(("direct_response", object([("status", "\(d.status)")])))
        }
        pairs.append(("timeout_ms", "\(r.timeoutMs)"))
        pairs.append(("access_log", "\(r.accessLog)"))
        return object(pairs)
    }

    static func clusters(_ c: EdgeConfig, telemetry: Telemetry?) -> String {
        let ids = telemetry.map { _ in MetricLabels.shared.clusterLabels } ?? []
        return array(c.clusters.map { cl in
            var pairs: [(String, String)] = [("name", quote(cl.name)), ("balance", quote(cl.balance.rawValue))]
            pairs.append(("endpoints", array(cl.endpoints.map { e in
                let state = e.resolveFailure == nil ? "active" : "unresolved"
                var ep: [(String, String)] = [("address", quote(e.address.text)), ("weight", "\(e.weight)"), ("state", quote(state))]
                if let h = e.hostName { ep.append(("host", quote(h))) }
                return object(ep)
            })))
            if let t = telemetry, let id = ids.firstIndex(of: cl.name) {
                let s = t.clusterSummary(id)
                pairs.append(("in_flight", "\(s.inFlight)"))
                pairs.append(("requests", "\(s.requests)"))
                pairs.append(("upstream_connections", "\(s.connects)"))
                pairs.append(("pool_hits", "\(s.poolHits)"))
                pairs.append(("mean_latency_ms", s.meanLatencyMs.map { "\($0)" } ?? "null"))
            }
            return object(pairs)
        })
    }

    static func listeners(_ c: EdgeConfig, workers: Int) -> String {
        array(c.listeners.map { l in
            object([("name", quote(l.name)), ("address", quote(l.address.text)), ("protocol", quote(l.proto.rawValue)),
                    ("routes", "\(l.routes.count)"), ("workers", "\(workers)"),
                    ("max_connections", "\(l.maxConnections)")])
        })
    }
}

extension Telemetry {
    struct ClusterSummary { var inFlight: Int64; var requests: UInt64; var connects: UInt64; var poolHits: UInt64; var meanLatencyMs: Double? }

    func clusterSummary(_ id: Int) -> ClusterSummary {
        var s = ClusterSummary(inFlight: 0, requests: 0, connects: 0, poolHits: 0, meanLatencyMs: nil)
        var started: UInt64 = 0, finished: UInt64 = 0, sumUs: UInt64 = 0, count: UInt64 = 0
        let base = id * MetricsShard.histogramsPerId * LatencyBuckets.words
        for w in workers {
            guard let m = w.metrics, id >= 0, id < MetricLabels.maxClusters else { continue }
            started &+= MetricsShard.read(m.clusterStarted, id)
            finished &+= MetricsShard.read(m.clusterFinished, id)
            s.connects &+= MetricsShard.read(m.clusterConnects, id)
            s.poolHits &+= MetricsShard.read(m.clusterPoolHits, id)
            for c in 0..<StatusClass.count { s.requests &+= MetricsShard.read(m.clusterCounts, id * StatusClass.count + c) }
            if m.histograms {
                sumUs &+= MetricsShard.read(m.clusterHistograms, base + LatencyBuckets.count)
                count &+= MetricsShard.read(m.clusterHistograms, base + LatencyBuckets.count + 1)
            }
        }
        s.inFlight = max(0, Int64(bitPattern: started &- finished))
        if count > 0 { s.meanLatencyMs = Double(sumUs) / Double(count) / 1000 }
        return s
    }
}
