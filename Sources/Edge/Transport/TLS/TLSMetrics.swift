/// `/metrics` lines of the TLS listeners (rendered on the admin thread).
enum TLSMetrics {
    static func render(_ workers: [WorkerStats], into out: inout String) {
        out += "# HELP edge_tls_handshakes_total TLS handshakes completed (full and resumed).\n# TYPE edge_tls_handshakes_total counter\n"
        for (i, w) in workers.enumerated() { out += "edge_tls_handshakes_total{worker=\"\(i)\"} \(w.tlsHandshakes.load(ordering: .relaxed))\n" }
        out += "# HELP edge_tls_resumed_total TLS handshakes that resumed a session (tickets).\n# TYPE edge_tls_resumed_total counter\n"
        for (i, w) in workers.enumerated() { out += "edge_tls_resumed_total{worker=\"\(i)\"} \(w.tlsResumed.load(ordering: .relaxed))\n" }
        out += "# HELP edge_tls_upstream_handshakes_total Upstream TLS handshakes (clusters with tls).\n# TYPE edge_tls_upstream_handshakes_total counter\n"
        for (i, w) in workers.enumerated() { out += "edge_tls_upstream_handshakes_total{worker=\"\(i)\"} \(w.tlsUpstreamHandshakes.load(ordering: .relaxed))\n" }
        out += "# HELP edge_tls_upstream_resumed_total Upstream TLS handshakes that resumed a session.\n# TYPE edge_tls_upstream_resumed_total counter\n"
        for (i, w) in workers.enumerated() { out += "edge_tls_upstream_resumed_total{worker=\"\(i)\"} \(w.tlsUpstreamResumed.load(ordering: .relaxed))\n" }
        out += "# HELP edge_tls_handshake_failures_total TLS connections that failed before or during the handshake, by reason.\n# TYPE edge_tls_handshake_failures_total counter\n"
        for (i, w) in workers.enumerated() {
            for f in TLSFailure.allCases {
                out += "edge_tls_handshake_failures_total{worker=\"\(i)\",reason=\"\(f.label)\"} \(w.tlsFailures[f.rawValue].load(ordering: .relaxed))\n"
            }
        }
    }
}
