/// Prometheus text for the labelled request metrics: the scrape sums every
/// worker's shard (admin thread; allocation is fine here).
extension Telemetry {
    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }

    static let classLabels = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"]

    private func sum(_ pick: (MetricsShard) -> UnsafeMutablePointer<MetricsShard.Word>, _ i: Int) -> UInt64 {
        var total: UInt64 = 0
        for w in workers { if let m = w.metrics { total &+= MetricsShard.read(pick(m), i) } }
        return total
    }

    func renderMetrics() -> String {
        var out = ""
        let routes = labels.routeLabels, clusters = labels.clusterLabels
        let histograms = workers.first?.histograms ?? false
        out += "# HELP edge_http_requests_total HTTP requests finished, by listener, route, status class and protocol.\n"
        out += "# TYPE edge_http_requests_total counter\n"
        for (id, l) in routes.enumerated() {
            let base = "listener=\"\(Self.escape(l.listener))\",route=\"\(Self.escape(l.route))\""
            for c in 0..<StatusClass.count {
                let n = sum({ $0.routeCounts }, id * StatusClass.count + c)
                if n > 0 { out += "edge_http_requests_total{\(base),code_class=\"\(Self.classLabels[c])\",protocol=\"http/1.1\"} \(n)\n" }
            }
        }
        out += "# HELP edge_cluster_requests_total Proxied HTTP requests finished, by cluster and status class.\n"
        out += "# TYPE edge_cluster_requests_total counter\n"
        for (id, name) in clusters.enumerated() {
            for c in 0..<StatusClass.count {
                let n = sum({ $0.clusterCounts }, id * StatusClass.count + c)
                if n > 0 { out += "edge_cluster_requests_total{cluster=\"\(Self.escape(name))\",code_class=\"\(Self.classLabels[c])\"} \(n)\n" }
            }
        }
        let perCluster: [(String, String, (MetricsShard) -> UnsafeMutablePointer<MetricsShard.Word>)] = [
            ("edge_cluster_upstream_connections_total", "New upstream connections opened.", { $0.clusterConnects }),
            ("edge_cluster_pool_hits_total", "Requests sent on a pooled keep-alive connection.", { $0.clusterPoolHits }),
            ("edge_cluster_retries_total", "Requests resent after a stale pooled connection.", { $0.clusterRetries }),
        ]
        for (name, help, pick) in perCluster {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for (id, c) in clusters.enumerated() { out += "\(name){cluster=\"\(Self.escape(c))\"} \(sum(pick, id))\n" }
        }
        out += "# HELP edge_cluster_requests_in_flight Proxied requests started and not finished.\n# TYPE edge_cluster_requests_in_flight gauge\n"
        for (id, c) in clusters.enumerated() {
            let inFlight = Int64(bitPattern: sum({ $0.clusterStarted }, id) &- sum({ $0.clusterFinished }, id))
            out += "edge_cluster_requests_in_flight{cluster=\"\(Self.escape(c))\"} \(max(0, inFlight))\n"
        }
        if histograms {
            let routeLabels = routes.map { "listener=\"\(Self.escape($0.listener))\",route=\"\(Self.escape($0.route))\"" }
            let clusterLabels = clusters.map { "cluster=\"\(Self.escape($0))\"" }
            histogram(&out, "edge_http_request_duration_seconds", "Time from request head to response end, per route.", routeLabels, { $0.routeHistograms }, kind: 0)
            histogram(&out, "edge_http_upstream_first_byte_seconds", "Time from picking the upstream to its response head, per route.", routeLabels, { $0.routeHistograms }, kind: 1)
            histogram(&out, "edge_cluster_request_duration_seconds", "Time from request head to response end, per cluster.", clusterLabels, { $0.clusterHistograms }, kind: 0)
            histogram(&out, "edge_cluster_upstream_first_byte_seconds", "Time from picking the upstream to its response head, per cluster.", clusterLabels, { $0.clusterHistograms }, kind: 1)
        }
        if let exporter {
            out += "# HELP edge_spans_exported_total Sampled spans accepted by the OTLP collector.\n# TYPE edge_spans_exported_total counter\n"
            out += "edge_spans_exported_total \(exporter.exported.load(ordering: .relaxed))\n"
            out += "# HELP edge_spans_failed_total Sampled spans the collector did not accept (down, timeout, non-2xx).\n# TYPE edge_spans_failed_total counter\n"
            out += "edge_spans_failed_total \(exporter.failed.load(ordering: .relaxed))\n"
            out += "# HELP edge_spans_dropped_total Sampled spans dropped because a worker's span buffer was full.\n# TYPE edge_spans_dropped_total counter\n"
            out += "edge_spans_dropped_total \(exporter.rings.reduce(0) { $0 + $1.dropped.load(ordering: .relaxed) })\n"
        }
        if let writer {
            out += "# HELP edge_access_log_lines_total Access-log lines queued for the writer.\n# TYPE edge_access_log_lines_total counter\n"
            out += "edge_access_log_lines_total \(writer.rings.reduce(0) { $0 + $1.written.load(ordering: .relaxed) })\n"
            out += "# HELP edge_access_log_dropped_total Access-log lines dropped because a worker's buffer was full.\n# TYPE edge_access_log_dropped_total counter\n"
            out += "edge_access_log_dropped_total \(writer.rings.reduce(0) { $0 + $1.dropped.load(ordering: .relaxed) })\n"
            out += "# HELP edge_access_log_reopens_total Access-log file reopened (SIGUSR1).\n# TYPE edge_access_log_reopens_total counter\n"
            out += "edge_access_log_reopens_total \(writer.reopens.load(ordering: .relaxed))\n"
        }
        return out
    }

    private func histogram(_ out: inout String, _ name: String, _ help: String, _ labels: [String],
                           _ pick: (MetricsShard) -> UnsafeMutablePointer<MetricsShard.Word>, kind: Int) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (id, label) in labels.enumerated() {
            let base = (id * MetricsShard.histogramsPerId + kind) * LatencyBuckets.words
            let count = sum(pick, base + LatencyBuckets.count + 1)
            if count == 0 { continue }
            var cumulative: UInt64 = 0
            for b in 0..<LatencyBuckets.count {
                cumulative &+= sum(pick, base + b)
                let le = b < LatencyBuckets.boundsUs.count ? Self.seconds(LatencyBuckets.boundsUs[b]) : "+Inf"
                out += "\(name)_bucket{\(label),le=\"\(le)\"} \(cumulative)\n"
            }
            out += "\(name)_sum{\(label)} \(Self.seconds(Int64(sum(pick, base + LatencyBuckets.count))))\n"
            out += "\(name)_count{\(label)} \(count)\n"
        }
    }

    /// Microseconds as decimal seconds without float noise ("0.0025").
    static func seconds(_ us: Int64) -> String {
        let whole = us / 1_000_000, frac = us % 1_000_000
        if frac == 0 { return "\(whole).0" }
        var f = String(frac)
        while f.count < 6 { f = "0" + f }
        while f.hasSuffix("0") { f.removeLast() }
        return "\(whole).\(f)"
    }
}
