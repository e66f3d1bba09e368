import Atomics

/// Counters and lifecycle flags one reactor shares with the control thread.
/// Written by the reactor with relaxed atomics (no lock, no ARC: `UnsafeAtomic`
/// is a plain pointer), read by the admin API.
struct WorkerStats: @unchecked Sendable {
    let requests = UnsafeAtomic<Int>.create(0)
    let accepted = UnsafeAtomic<Int>.create(0)
    let activeConnections = UnsafeAtomic<Int>.create(0)
    let upstreamOpened = UnsafeAtomic<Int>.create(0)
    let upstreamErrors = UnsafeAtomic<Int>.create(0)
    let clientErrors = UnsafeAtomic<Int>.create(0)
    /// Request heads that trickled in and were switched to paced reads.
    let pacedHeads = UnsafeAtomic<Int>.create(0)
    /// Bytes moved by L4 relays (TCP listeners, upgraded connections).
    let relayBytes = UnsafeAtomic<Int>.create(0)
    /// TCP relays started in copy mode, and `relay: auto` relays switched to splice.
    let relayCopyStarted = UnsafeAtomic<Int>.create(0)
    let relaySpliceSwitches = UnsafeAtomic<Int>.create(0)
    /// UDP: open sessions, datagrams client→upstream and back, datagrams dropped.
    let udpSessions = UnsafeAtomic<Int>.create(0)
    let udpDatagramsIn = UnsafeAtomic<Int>.create(0)
    let udpDatagramsOut = UnsafeAtomic<Int>.create(0)
    let udpDropped = UnsafeAtomic<Int>.create(0)
    /// 0 = starting, 1 = serving, 2 = stopped, 3 = failed.
    let state = UnsafeAtomic<Int>.create(0)
    /// Set by the control thread: stop accepting and finish in-flight requests.
    let drain = UnsafeAtomic<Bool>.create(false)
    /// Set by the control thread when the drain deadline passed: exit now.
    let stop = UnsafeAtomic<Bool>.create(false)
    /// Generation of the snapshot this worker adopted last (RCU quiescent point).
    let adoptedGeneration = UnsafeAtomic<Int>.create(0)
    /// Snapshots this worker still keeps alive for in-flight requests.
    let liveSnapshots = UnsafeAtomic<Int>.create(0)
    /// New connections turned away at accept, by `Refusal` reason.
    let refused = (0..<Refusal.count).map { _ in UnsafeAtomic<Int>.create(0) }
    /// Smoothed duration of one event-loop turn in microseconds (load shedding input).
    let loopLagUs = UnsafeAtomic<Int>.create(0)
    /// Request bodies cut for arriving slower than min_body_rate; responses cut
    /// because the client stopped reading (body_timeout while sending).
    let slowBodies = UnsafeAtomic<Int>.create(0)
    let slowReaders = UnsafeAtomic<Int>.create(0)
    /// TLS: handshakes completed, of which resumed, and failures by `TLSFailure`.
    let tlsHandshakes = UnsafeAtomic<Int>.create(0)
    let tlsResumed = UnsafeAtomic<Int>.create(0)
    /// Upstream TLS handshakes, of which resumed.
    let tlsUpstreamHandshakes = UnsafeAtomic<Int>.create(0)
    let tlsUpstreamResumed = UnsafeAtomic<Int>.create(0)
    let tlsFailures = (0..<TLSFailure.allCases.count).map { _ in UnsafeAtomic<Int>.create(0) }
    /// Requests refused by a cluster circuit breaker; attempts retried (Upstream/).
    let circuitOpen = UnsafeAtomic<Int>.create(0)
    let retries = UnsafeAtomic<Int>.create(0)
    let mirrored = UnsafeAtomic<Int>.create(0)
    /// CPU the worker pinned itself to, -1 if not pinned.
    let cpu = UnsafeAtomic<Int>.create(-1)
    /// Metrics shard and access-log ring of this worker (Observability/), set before it starts.
    var telemetry = WorkerTelemetry()
    /// HTTP/2 counters (HTTP2/HTTP2Stats.swift).
    let http2 = HTTP2Stats()
    /// Response-cache counters (Cache/CacheStats.swift).
    let cache = CacheStats()
    /// DTLS counters (Transport/DTLS/DTLSStats.swift).
    let dtls = DTLSStats()
    let http3 = HTTP3Stats()

    @inline(__always) func bump(_ a: UnsafeAtomic<Int>, _ by: Int = 1) {
        a.wrappingIncrement(by: by, ordering: .relaxed)
    }
}
