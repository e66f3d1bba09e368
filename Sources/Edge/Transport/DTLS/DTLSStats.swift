import Atomics

/// Why a DTLS client got no session (label values of `edge_dtls_failures_total`).
enum DTLSFailure: Int, CaseIterable {
    /// The handshake failed (bad records, no shared cipher, alert...).
    case handshake
    /// The handshake did not finish within `tls.handshake_timeout`.
    case timeout
    /// A valid cookie arrived while the worker was at `tls.max_handshakes` or `udp.max_sessions`.
    case overCapacity
    /// The established session failed (bad record, alert other than close_notify).
    case session

    var label: String {
        switch self {
        case .handshake: return "handshake"
        case .timeout: return "timeout"
        case .overCapacity: return "over_capacity"
        case .session: return "session"
        }
    }
}

/// Per-worker DTLS counters (relaxed atomics, one writer: the worker).
final class DTLSStats: Sendable {
    /// Handshakes completed, handshakes in progress (gauge).
    let handshakes = UnsafeAtomic<Int>.create(0)
    let handshaking = UnsafeAtomic<Int>.create(0)
    /// HelloVerifyRequests sent (ClientHellos without a valid cookie).
    let helloVerifyRequests = UnsafeAtomic<Int>.create(0)
    /// Datagrams from unknown clients that were neither a ClientHello nor a valid cookie (no state kept).
    let dropped = UnsafeAtomic<Int>.create(0)
    /// Decrypted datagrams relayed to the cluster, and replies encrypted back.
    let plaintextIn = UnsafeAtomic<Int>.create(0)
    let plaintextOut = UnsafeAtomic<Int>.create(0)
    let failures = (0..<DTLSFailure.allCases.count).map { _ in UnsafeAtomic<Int>.create(0) }

    @inline(__always) func bump(_ a: UnsafeAtomic<Int>, _ by: Int = 1) { a.wrappingIncrement(by: by, ordering: .relaxed) }
    @inline(__always) func fail(_ f: DTLSFailure) { bump(failures[f.rawValue]) }
}

/// `/metrics` lines of the DTLS listeners (rendered on the admin thread).
enum DTLSMetrics {
    static func render(_ workers: [WorkerStats], into out: inout String) {
        func family(_ name: String, _ help: String, _ type: String, _ value: (DTLSStats) -> Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (i, w) in workers.enumerated() { out += "\(name){worker=\"\(i)\"} \(value(w.dtls))\n" }
        }
        family("edge_dtls_handshakes_total", "DTLS handshakes completed.", "counter") { $0.handshakes.load(ordering: .relaxed) }
        family("edge_dtls_handshakes_active", "DTLS handshakes in progress.", "gauge") { $0.handshaking.load(ordering: .relaxed) }
        family("edge_dtls_hello_verify_requests_total", "HelloVerifyRequests sent (ClientHellos without a valid cookie).", "counter") { $0.helloVerifyRequests.load(ordering: .relaxed) }
        family("edge_dtls_dropped_datagrams_total", "Datagrams from clients without a session that were not a ClientHello (no state kept).", "counter") { $0.dropped.load(ordering: .relaxed) }
        family("edge_dtls_datagrams_in_total", "Decrypted DTLS datagrams relayed to the cluster.", "counter") { $0.plaintextIn.load(ordering: .relaxed) }
        family("edge_dtls_datagrams_out_total", "Cluster datagrams encrypted back to DTLS clients.", "counter") { $0.plaintextOut.load(ordering: .relaxed) }
        out += "# HELP edge_dtls_failures_total DTLS clients that failed or were refused, by reason.\n# TYPE edge_dtls_failures_total counter\n"
        for (i, w) in workers.enumerated() {
            for f in DTLSFailure.allCases {
                out += "edge_dtls_failures_total{worker=\"\(i)\",reason=\"\(f.label)\"} \(w.dtls.failures[f.rawValue].load(ordering: .relaxed))\n"
            }
        }
    }
}
