import Atomics
import CIOUring
import Glibc
import Logging

/// Owns the process: publishes compiled snapshots, opens listeners, starts one
/// pinned reactor thread per worker, serves the admin API, and turns signals
/// into reloads (SIGHUP) and graceful drains (SIGTERM/SIGINT). The control
/// thread never touches a connection; it only publishes snapshots and flips
/// flags the reactors poll.
final class EdgeServer: AdminStatusProvider, @unchecked Sendable {
    let workers: [WorkerStats]
    let reloader: Reloader
    let publisher: SnapshotPublisher
    private let drainFlag = ManagedAtomic<Bool>(false)
    /// Access log and labelled metrics (Observability/Telemetry.swift); set once at start.
    var telemetry: Telemetry? = nil
    /// A worker still behind the latest publication this long after it was
    /// published is reported stuck (readiness 503); adoption normally takes one loop turn.
    static let adoptionGraceMs: Int64 = 2_000

    init(workers: [WorkerStats], reloader: Reloader, publisher: SnapshotPublisher) {
        self.workers = workers
        self.reloader = reloader
        self.publisher = publisher
    }

    static func run(config: EdgeConfig, configPath: String, logger: Logger) throws -> Int32 {
        let cpus = WorkerThread.allowedCPUs()
        let count = max(1, config.runtime.workers ?? max(cpus.count, 1))
        let publisher = SnapshotPublisher()
        let listenerSet = ListenerSet(workers: count)
        let reloader = Reloader(configPath: configPath, config: config, publisher: publisher,
                                listenerSet: listenerSet, logger: logger)
        // Started by an upgrading edge: take its listening sockets instead of binding.
        switch UpgradeHandoff.receiveIfInherited() {
        case .failure(let e): throw ListenSocket.OpenError(description: "binary upgrade: \(e)")
        case .success(let n) where n > 0: logger.info("binary upgrade: took over listening sockets", metadata: ["sockets": "\(n)"])
        default: break
        }
        _ = BinaryUpgrade.ownBinary
        // Binds every listener up front: a busy port fails startup with a clear message.
        try reloader.publish(config)

        // Signals are taken synchronously by this thread; workers inherit the mask.
        var mask = sigset_t()
        sigemptyset(&mask)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2] { sigaddset(&mask, s) }
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        signal(SIGPIPE, SIG_IGN)

        let telemetry = try Telemetry(config: config.observability, workers: count)
        let stats = (0..<count).map { w in var s = WorkerStats(); s.telemetry = telemetry.worker(w); return s }
        let server = EdgeServer(workers: stats, reloader: reloader, publisher: publisher)
        server.telemetry = telemetry
        telemetry.start()
        reloader.attach(workers: stats)
        let runtime = config.runtime
        // Head buffers are sized at start (see Reactor.init); leave room for reloads.
        let headBytes = max(config.listeners.map { $0.http.limits.maxHeaderBytes }.max() ?? 32768, 32768)
        let admission = Admission(maxConnections: runtime.maxConnections)
        var threads: [pthread_t] = []
        for w in 0..<count {
            let cpu: Int32 = cpus.isEmpty ? -1 : cpus[w % cpus.count]
            let st = stats[w]
            let log = logger
            guard let t = WorkerThread.spawn(name: "edge-worker-\(w)", { @Sendable in
                if cpu >= 0 && edge_pin_current_thread(cpu) == 0 { st.cpu.store(Int(cpu), ordering: .relaxed) }
                do {
                    let reactor = try Reactor(index: w, publisher: publisher, runtime: runtime,
                                              maxHeaderBytes: headBytes, stats: st, admission: admission)
                    reactor.run()
                } catch {
                    log.critical("worker \(w) failed to start: \(error)")
                    st.state.store(3, ordering: .releasing)
                }
            }) else {
                throw ListenSocket.OpenError(description: "cannot start worker thread \(w)")
            }
            threads.append(t)
        }

        let health = HealthChecker(logger: logger)
        health.start()
        defer { health.stop() }
        // Shared (Redis) rate limits: idle unless a snapshot has one.
        let sharedLimits = SharedLimitSync(publisher: publisher, logger: logger)
        sharedLimits.start()
        defer { sharedLimits.stop() }
        var admin: AdminServer? = nil
        if let address = config.admin.address {
            admin = try AdminServer(address: address, provider: server, logger: logger)
            admin?.extras = AdminExtras(auth: config.admin.auth, server: server)
            admin?.start()
        }

        // Wait for every reactor to come up (or fail).
        let startDeadline = Reactor.monotonicMs() + 10_000
        while Reactor.monotonicMs() < startDeadline {
            if stats.contains(where: { $0.state.load(ordering: .acquiring) == 3 }) { break }
            if stats.allSatisfy({ $0.state.load(ordering: .acquiring) == 1 }) { break }
            usleep(5_000)
        }
        if stats.contains(where: { $0.state.load(ordering: .acquiring) != 1 }) {
            logger.critical("not all workers started; stopping")
            for s in stats { s.stop.store(true, ordering: .relaxed) }
            for t in threads { pthread_join(t, nil) }
            admin?.stop()
            return 1
        }
        let pidFile = config.runtime.pidFile
        if let pidFile { writePidFile(pidFile, logger: logger) }
        let pins = stats.map { "\($0.cpu.load(ordering: .relaxed))" }.joined(separator: ",")
        for l in config.listeners {
            logger.info("listening", metadata: ["listener": "\(l.name)", "address": "\(l.address.text)", "workers": "\(count)", "cpus": "\(pins)"])
        }
        UpgradeHandoff.signalReady()  // no-op unless an upgrading edge started this one

        var ts = timespec(tv_sec: 0, tv_nsec: 100_000_000)
        var drainDeadline: Int64 = 0
        var nextDNS = Reactor.monotonicMs() + 1_000
        let dns = DNSRefresher()
        while true {
            var info = siginfo_t()
            let sig = sigtimedwait(&mask, &info, &ts)
            if sig == SIGTERM || sig == SIGINT {
                if drainDeadline == 0 {
                    logger.info("draining", metadata: ["signal": "\(sig)", "timeout_ms": "\(reloader.config.runtime.drainTimeoutMs)"])
                    server.startDrain()
                    drainDeadline = Reactor.monotonicMs() + Int64(reloader.config.runtime.drainTimeoutMs)
                } else {
                    break  // second signal: stop now
                }
            } else if sig == SIGHUP && drainDeadline == 0 {
                reloader.reload(trigger: "SIGHUP")
            } else if sig == SIGUSR1 {
                telemetry.reopenLog()  // logrotate renamed the access log
            } else if sig == SIGUSR2 && drainDeadline == 0 {
                // Binary upgrade: drain only once the new process serves.
                if BinaryUpgrade.run(reloader: reloader, adminSocket: admin?.listeningSocket, adminAddress: config.admin.address?.text,
                                     pidFile: pidFile, logger: logger) {
                    admin?.markHandedOver()
                    BinaryUpgrade.gentleDrain.store(true, ordering: .relaxed)
                    server.startDrain()
                    drainDeadline = Reactor.monotonicMs() + Int64(reloader.config.runtime.drainTimeoutMs)
                }
            }
            if server.drainFlag.load(ordering: .relaxed) && drainDeadline == 0 {
                // POST /drain
                logger.info("draining", metadata: ["trigger": "admin", "timeout_ms": "\(reloader.config.runtime.drainTimeoutMs)"])
                drainDeadline = Reactor.monotonicMs() + Int64(reloader.config.runtime.drainTimeoutMs)
            }
            publisher.collect(workers: stats)
            if drainDeadline > 0 {
                if stats.allSatisfy({ $0.state.load(ordering: .acquiring) >= 2 }) { break }
                if Reactor.monotonicMs() > drainDeadline {
                    logger.warning("drain deadline passed; closing remaining connections")
                    break
                }
            } else if Reactor.monotonicMs() >= nextDNS {
                nextDNS = Reactor.monotonicMs() + 1_000
                dns.refreshIfDue(reloader: reloader, logger: logger)
            }
            if stats.contains(where: { $0.state.load(ordering: .acquiring) == 2 }) && drainDeadline == 0 {
                logger.critical("a worker stopped unexpectedly")
                break
            }
        }
        for s in stats { s.stop.store(true, ordering: .relaxed) }
        for t in threads { pthread_join(t, nil) }
        telemetry.stop()
        admin?.stop()
        // After an upgrade the pid file names the new process: leave it.
        if let pidFile, let text = try? ConfigLoader.readFile(pidFile), text.split(separator: "\n").first == "\(getpid())" { unlink(pidFile) }
        logger.info("stopped")
        return 0
    }

    private static func writePidFile(_ path: String, logger: Logger) {
        let text = "\(getpid())\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            logger.warning("cannot write pid file", metadata: ["path": "\(path)", "error": "\(String(cString: strerror(errno)))"])
            return
        }
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Readiness turns 503 first, then reactors stop accepting and finish in-flight requests.
    func startDrain() {
        drainFlag.store(true, ordering: .relaxed)
        for s in workers { s.drain.store(true, ordering: .relaxed) }
    }

    // MARK: AdminStatusProvider

    var totalWorkers: Int { workers.count }
    var readyWorkers: Int { workers.filter { $0.state.load(ordering: .relaxed) == 1 }.count }
    var isDraining: Bool { drainFlag.load(ordering: .relaxed) }
    var laggingWorkers: [(worker: Int, behind: Int)] {
        guard Reactor.monotonicMs() - publisher.publishedAtMs >= EdgeServer.adoptionGraceMs else { return [] }
        return workers.indices.compactMap { i in
            let n = publisher.lag(of: workers[i])
            return n > 0 ? (i, n) : nil
        }
    }
    func reload() -> ReloadStatus { reloader.reload(trigger: "admin") }
    var lastReload: ReloadStatus { reloader.lastStatus }
    func beginDrain() { startDrain() }

    func renderMetrics() -> String {
        var out = ""
        func family(_ name: String, _ help: String, _ type: String, _ value: (WorkerStats) -> Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (i, w) in workers.enumerated() { out += "\(name){worker=\"\(i)\"} \(value(w))\n" }
        }
        family("edge_requests_total", "HTTP requests started.", "counter") { $0.requests.load(ordering: .relaxed) }
        family("edge_connections_accepted_total", "Client connections accepted.", "counter") { $0.accepted.load(ordering: .relaxed) }
        family("edge_connections_active", "Open client connections.", "gauge") { $0.activeConnections.load(ordering: .relaxed) }
        family("edge_upstream_connections_opened_total", "Upstream connections opened.", "counter") { $0.upstreamOpened.load(ordering: .relaxed) }
        family("edge_upstream_errors_total", "Upstream failures (refused, reset, timeout, bad response).", "counter") { $0.upstreamErrors.load(ordering: .relaxed) }
        family("edge_client_errors_total", "Requests refused as malformed or over limits.", "counter") { $0.clientErrors.load(ordering: .relaxed) }
        family("edge_paced_heads_total", "Request heads that trickled in tiny reads and were read on the pacing tick.", "counter") { $0.pacedHeads.load(ordering: .relaxed) }
        family("edge_relay_bytes_total", "Bytes moved by L4 relays (TCP listeners, upgraded connections), counted when a relay ends.", "counter") { $0.relayBytes.load(ordering: .relaxed) }
        family("edge_relay_copy_started_total", "TCP relays started in user-space copy mode (relay: copy | auto).", "counter") { $0.relayCopyStarted.load(ordering: .relaxed) }
        family("edge_relay_splice_switches_total", "relay: auto connections switched from copy to splice after a bulk run.", "counter") { $0.relaySpliceSwitches.load(ordering: .relaxed) }
        family("edge_udp_sessions_active", "Open UDP sessions.", "gauge") { $0.udpSessions.load(ordering: .relaxed) }
        family("edge_udp_datagrams_in_total", "UDP datagrams from clients forwarded upstream.", "counter") { $0.udpDatagramsIn.load(ordering: .relaxed) }
        family("edge_udp_datagrams_out_total", "UDP datagrams from upstreams sent back to clients.", "counter") { $0.udpDatagramsOut.load(ordering: .relaxed) }
        family("edge_udp_dropped_total", "UDP datagrams dropped (session limit, send errors).", "counter") { $0.udpDropped.load(ordering: .relaxed) }
        out += "# HELP edge_connections_refused_total New connections turned away at accept (limits, load shedding).\n# TYPE edge_connections_refused_total counter\n"
        for (i, w) in workers.enumerated() {
            for r in 0..<Refusal.count {
                let label = Refusal(rawValue: r)?.label ?? "other"
                out += "edge_connections_refused_total{worker=\"\(i)\",reason=\"\(label)\"} \(w.refused[r].load(ordering: .relaxed))\n"
            }
        }
        family("edge_loop_lag_microseconds", "Smoothed event-loop turn duration (load shedding refuses new connections above runtime.max_loop_lag).", "gauge") { $0.loopLagUs.load(ordering: .relaxed) }
        family("edge_slow_request_bodies_total", "Requests cut for a body slower than min_body_rate or silent for body_timeout.", "counter") { $0.slowBodies.load(ordering: .relaxed) }
        family("edge_slow_readers_total", "Responses cut because the client stopped reading for body_timeout.", "counter") { $0.slowReaders.load(ordering: .relaxed) }
        family("edge_worker_cpu", "CPU the worker is pinned to (-1: not pinned).", "gauge") { $0.cpu.load(ordering: .relaxed) }
        family("edge_snapshot_generation", "Config snapshot generation the worker serves new requests with.", "gauge") { $0.adoptedGeneration.load(ordering: .relaxed) }
        family("edge_worker_snapshot_generation", "Config snapshot generation the worker serves new requests with.", "gauge") { $0.adoptedGeneration.load(ordering: .relaxed) }
        family("edge_worker_snapshot_lag", "Published config snapshots the worker has not adopted yet (0 = serving the latest).", "gauge") { self.publisher.lag(of: $0) }
        family("edge_snapshots_live", "Snapshots the worker keeps alive (current + ones with in-flight requests).", "gauge") { $0.liveSnapshots.load(ordering: .relaxed) }
        TLSMetrics.render(workers, into: &out)
        DTLSMetrics.render(workers, into: &out)
        out += HealthRegistry.shared.renderMetrics(workers: workers)
        renderHTTP2Metrics(&out)
        renderCacheMetrics(&out)
        renderHTTP3Metrics(&out)
        let r = reloader.lastStatus
        out += "# HELP edge_config_last_reload_success Whether the last reload was accepted.\n# TYPE edge_config_last_reload_success gauge\n"
        out += "edge_config_last_reload_success \(r.ok ? 1 : 0)\n"
        if let count = EdgeServer.allocationCount() {
            out += "# HELP edge_heap_allocations_total malloc-family calls (allocation-counting preload only).\n"
            out += "# TYPE edge_heap_allocations_total counter\nedge_heap_allocations_total \(count)\n"
        }
        out += telemetry?.renderMetrics() ?? ""
        out += SharedLimitLink.shared.renderMetrics(workers: workers.count)
        return out
    }

    /// Reads the counter of the allocation-counting LD_PRELOAD library used by
    /// the allocation benchmark, when it is loaded.
    static func allocationCount() -> UInt64? {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "edge_alloc_count") else { return nil }
        typealias Fn = @convention(c) () -> UInt64
        return unsafeBitCast(sym, to: Fn.self)()
    }
}
