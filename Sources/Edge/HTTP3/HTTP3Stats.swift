import Atomics

/// QUIC and HTTP/3 counters one reactor shares with the control thread
/// (relaxed atomics, like the rest of `WorkerStats`).
struct HTTP3Stats: @unchecked Sendable {
    let datagramsIn = UnsafeAtomic<Int>.create(0)
    let datagramsOut = UnsafeAtomic<Int>.create(0)
    let connections = UnsafeAtomic<Int>.create(0)
    let activeConnections = UnsafeAtomic<Int>.create(0)
    let handshakes = UnsafeAtomic<Int>.create(0)
    let handshakesCompleted = UnsafeAtomic<Int>.create(0)
    let streams = UnsafeAtomic<Int>.create(0)
    /// Datagrams ngtcp2_accept refused or that decode as nothing (garbage, truncated Initials).
    let rejected = UnsafeAtomic<Int>.create(0)
    /// Initials dropped by the per-worker connection or handshake caps.
    let refused = UnsafeAtomic<Int>.create(0)
    let retriesSent = UnsafeAtomic<Int>.create(0)
    let retryTokensValid = UnsafeAtomic<Int>.create(0)
    let retryTokensInvalid = UnsafeAtomic<Int>.create(0)
    let statelessResets = UnsafeAtomic<Int>.create(0)
    /// Datagrams for a connection id another worker owns (steering missed).
    let misrouted = UnsafeAtomic<Int>.create(0)
    let handshakeTimeouts = UnsafeAtomic<Int>.create(0)
    let idleTimeouts = UnsafeAtomic<Int>.create(0)
    /// Request header sections refused by the h3 → h1 translation rules.
    let malformed = UnsafeAtomic<Int>.create(0)
    /// Bytes ngtcp2 and nghttp3 hold on this worker (their allocators are routed here).
    let libraryBytes = UnsafeAtomic<Int>.create(0)
}

extension EdgeServer {
    /// The `edge_quic_*` / `edge_http3_*` families of /metrics.
    func renderHTTP3Metrics(_ out: inout String) {
        func family(_ name: String, _ help: String, _ type: String, _ value: (HTTP3Stats) -> Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (i, w) in workers.enumerated() { out += "\(name){worker=\"\(i)\"} \(value(w.http3))\n" }
        }
        family("edge_quic_datagrams_in_total", "QUIC datagrams received.", "counter") { $0.datagramsIn.load(ordering: .relaxed) }
        family("edge_quic_datagrams_out_total", "QUIC datagrams sent.", "counter") { $0.datagramsOut.load(ordering: .relaxed) }
        family("edge_quic_connections_total", "QUIC connections created.", "counter") { $0.connections.load(ordering: .relaxed) }
        family("edge_quic_connections_active", "Open QUIC connections.", "gauge") { $0.activeConnections.load(ordering: .relaxed) }
        family("edge_quic_handshakes_active", "QUIC handshakes in progress.", "gauge") { $0.handshakes.load(ordering: .relaxed) }
        family("edge_quic_handshakes_completed_total", "QUIC handshakes completed.", "counter") { $0.handshakesCompleted.load(ordering: .relaxed) }
        family("edge_quic_rejected_total", "Datagrams that never became a connection (garbage, truncated or bad Initials).", "counter") { $0.rejected.load(ordering: .relaxed) }
        family("edge_quic_refused_total", "Initials dropped by the per-worker connection or handshake caps.", "counter") { $0.refused.load(ordering: .relaxed) }
        family("edge_quic_retries_total", "Retry packets sent (address validation).", "counter") { $0.retriesSent.load(ordering: .relaxed) }
        family("edge_quic_retry_tokens_valid_total", "Initials carrying a valid Retry token.", "counter") { $0.retryTokensValid.load(ordering: .relaxed) }
        family("edge_quic_retry_tokens_invalid_total", "Initials carrying an invalid or expired token.", "counter") { $0.retryTokensInvalid.load(ordering: .relaxed) }
        family("edge_quic_stateless_resets_total", "Stateless resets sent for unknown connection ids.", "counter") { $0.statelessResets.load(ordering: .relaxed) }
        family("edge_quic_misrouted_total", "Datagrams for a connection id owned by another worker.", "counter") { $0.misrouted.load(ordering: .relaxed) }
        family("edge_quic_handshake_timeouts_total", "Connections closed for not finishing the handshake in time.", "counter") { $0.handshakeTimeouts.load(ordering: .relaxed) }
        family("edge_quic_idle_timeouts_total", "Connections closed by the idle timeout.", "counter") { $0.idleTimeouts.load(ordering: .relaxed) }
        family("edge_http3_streams_total", "HTTP/3 request streams.", "counter") { $0.streams.load(ordering: .relaxed) }
        family("edge_http3_malformed_total", "HTTP/3 requests refused by the translation rules.", "counter") { $0.malformed.load(ordering: .relaxed) }
        family("edge_quic_library_bytes", "Bytes ngtcp2 and nghttp3 hold on this worker.", "gauge") { $0.libraryBytes.load(ordering: .relaxed) }
    }
}
