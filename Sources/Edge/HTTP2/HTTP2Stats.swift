import Atomics

/// HTTP/2 counters one reactor shares with the control thread (relaxed atomics,
/// like the rest of `WorkerStats`). Each attack defence counts what it stopped.
struct HTTP2Stats: @unchecked Sendable {
    let connections = UnsafeAtomic<Int>.create(0)
    let streams = UnsafeAtomic<Int>.create(0)
    /// Streams the client reset before their response (Rapid Reset input).
    let earlyResets = UnsafeAtomic<Int>.create(0)
    /// Connections ended with GOAWAY ENHANCE_YOUR_CALM, by cause.
    let rapidReset = UnsafeAtomic<Int>.create(0)
    let glitchLimit = UnsafeAtomic<Int>.create(0)
    let flood = UnsafeAtomic<Int>.create(0)
    let continuationFlood = UnsafeAtomic<Int>.create(0)
    /// Header lists over max_header_list (HPACK bomb or just too large) → 431 or GOAWAY.
    let headerListTooLarge = UnsafeAtomic<Int>.create(0)
    /// Connections closed because a stream stalled on the client's window (or a
    /// header block never finished) for body_timeout.
    let stalls = UnsafeAtomic<Int>.create(0)
    /// Streams refused by the h2 → h1 translation rules.
    let malformed = UnsafeAtomic<Int>.create(0)
    /// Protocol errors nghttp2 reported (bad frames, compression errors).
    let protocolErrors = UnsafeAtomic<Int>.create(0)
    /// Bytes nghttp2 holds on this worker right now (its allocator is routed here).
    let sessionBytes = UnsafeAtomic<Int>.create(0)
    /// Upstream HTTP/2: connections opened, streams started on them, GOAWAYs received.
    let upstreamConnections = UnsafeAtomic<Int>.create(0)
    let upstreamStreams = UnsafeAtomic<Int>.create(0)
    let upstreamGoaways = UnsafeAtomic<Int>.create(0)
}

extension EdgeServer {
    /// The `edge_http2_*` families of /metrics.
    func renderHTTP2Metrics(_ out: inout String) {
        func family(_ name: String, _ help: String, _ type: String, _ value: (HTTP2Stats) -> Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (i, w) in workers.enumerated() { out += "\(name){worker=\"\(i)\"} \(value(w.http2))\n" }
        }
        family("edge_http2_connections_total", "HTTP/2 connections started.", "counter") { $0.connections.load(ordering: .relaxed) }
        family("edge_http2_streams_total", "HTTP/2 streams (requests) started.", "counter") { $0.streams.load(ordering: .relaxed) }
        family("edge_http2_early_resets_total", "Streams reset by the client before their response.", "counter") { $0.earlyResets.load(ordering: .relaxed) }
        family("edge_http2_rapid_reset_total", "Connections ended for resetting streams too fast (CVE-2023-44487).", "counter") { $0.rapidReset.load(ordering: .relaxed) }
        family("edge_http2_glitch_limit_total", "Connections ended for too many glitches (empty frames, PING/SETTINGS floods...).", "counter") { $0.glitchLimit.load(ordering: .relaxed) }
        family("edge_http2_flood_total", "Connections ended by nghttp2's flood limits (unanswered SETTINGS/PING acks).", "counter") { $0.flood.load(ordering: .relaxed) }
        family("edge_http2_continuation_flood_total", "Connections ended for too many CONTINUATION frames (CVE-2024-28182).", "counter") { $0.continuationFlood.load(ordering: .relaxed) }
        family("edge_http2_header_list_too_large_total", "Requests whose decoded header list exceeded max_header_list (HPACK bomb).", "counter") { $0.headerListTooLarge.load(ordering: .relaxed) }
        family("edge_http2_stalls_total", "Connections closed for a stream stalled on the client (zero window, unfinished header block).", "counter") { $0.stalls.load(ordering: .relaxed) }
        family("edge_http2_malformed_total", "Streams refused by the HTTP/2 to HTTP/1.1 translation rules.", "counter") { $0.malformed.load(ordering: .relaxed) }
        family("edge_http2_protocol_errors_total", "HTTP/2 protocol errors reported by nghttp2.", "counter") { $0.protocolErrors.load(ordering: .relaxed) }
        family("edge_http2_upstream_connections_total", "HTTP/2 connections opened to upstreams (protocol: http2 clusters).", "counter") { $0.upstreamConnections.load(ordering: .relaxed) }
        family("edge_http2_upstream_streams_total", "Requests sent as streams on upstream HTTP/2 connections.", "counter") { $0.upstreamStreams.load(ordering: .relaxed) }
        family("edge_http2_upstream_goaways_total", "GOAWAY frames received from upstreams.", "counter") { $0.upstreamGoaways.load(ordering: .relaxed) }
        family("edge_http2_session_bytes", "Bytes nghttp2 holds on this worker.", "gauge") { $0.sessionBytes.load(ordering: .relaxed) }
    }
}
