import Atomics
import CIOUring
import Glibc
import Logging

/// Owns the process: compiles the route table, opens listeners, starts one
/// pinned reactor thread per worker, serves the admin API, and turns
/// SIGTERM/SIGINT into a graceful drain. The control thread never touches a
/// connection; it only flips flags the reactors poll.
final class EdgeServer: AdminStatusProvider, @unchecked Sendable {
    let workers: [WorkerStats]
    let table: RouteTable
    private let drainFlag = ManagedAtomic<Bool>(false)

    init(workers: [WorkerStats], table: RouteTable) {
        self.workers = workers
        self.table = table
    }

    static func run(config: EdgeConfig, configPath: String, logger: Logger) throws -> Int32 {
        let table = RouteTableCompiler.compile(config)
        let cpus = WorkerThread.allowedCPUs()
        let count = max(1, config.runtime.workers ?? max(cpus.count, 1))

        // Bind everything up front so a busy port fails startup with a clear message.
        var fds: [[Int32]] = []
        do {
            for _ in 0..<count {
                var row: [Int32] = []
                for l in config.listeners { row.append(try ListenSocket.open(l.address, listener: l.name)) }
                fds.append(row)
            }
        } catch {
            for row in fds { for fd in row { close(fd) } }
            throw error
        }

        // Signals are taken synchronously by this thread; workers inherit the mask.
        var mask = sigset_t()
        sigemptyset(&mask)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&mask, s) }
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        signal(SIGPIPE, SIG_IGN)

        let stats = (0..<count).map { _ in WorkerStats() }
        let server = EdgeServer(workers: stats, table: table)
        let listenerIds = (0..<config.listeners.count).map { Int32($0) }
        let runtime = config.runtime
        var threads: [pthread_t] = []
        for w in 0..<count {
            let cpu: Int32 = cpus.isEmpty ? -1 : cpus[w % cpus.count]
            let myFds = fds[w]
            let st = stats[w]
            let log = logger
            guard let t = WorkerThread.spawn(name: "edge-worker-\(w)", { @Sendable in
                if cpu >= 0 && edge_pin_current_thread(cpu) == 0 { st.cpu.store(Int(cpu), ordering: .relaxed) }
                do {
                    let reactor = try Reactor(index: w, table: table, runtime: runtime, listenerFds: myFds,
                                              listenerIds: listenerIds, stats: st)
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

        var admin: AdminServer? = nil
        if let address = config.admin.address {
            admin = try AdminServer(address: address, provider: server, logger: logger)
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
        let pins = stats.map { "\($0.cpu.load(ordering: .relaxed))" }.joined(separator: ",")
        for l in config.listeners {
            logger.info("listening", metadata: ["listener": "\(l.name)", "address": "\(l.address.text)", "workers": "\(count)", "cpus": "\(pins)"])
        }

        // Control loop: signals only (reload arrives with the routing issue).
        var ts = timespec(tv_sec: 0, tv_nsec: 100_000_000)
        var drainDeadline: Int64 = 0
        while true {
            var info = siginfo_t()
            let sig = sigtimedwait(&mask, &info, &ts)
            if sig == SIGTERM || sig == SIGINT {
                if drainDeadline == 0 {
                    logger.info("draining", metadata: ["signal": "\(sig)", "timeout_ms": "\(config.runtime.drainTimeoutMs)"])
                    server.drainFlag.store(true, ordering: .relaxed)
                    for s in stats { s.drain.store(true, ordering: .relaxed) }
                    drainDeadline = Reactor.monotonicMs() + Int64(config.runtime.drainTimeoutMs)
                } else {
                    break  // second signal: stop now
                }
            } else if sig == SIGHUP {
                logger.warning("SIGHUP: reload is not implemented yet; config unchanged")
            }
            if drainDeadline > 0 {
                if stats.allSatisfy({ $0.state.load(ordering: .acquiring) >= 2 }) { break }
                if Reactor.monotonicMs() > drainDeadline {
                    logger.warning("drain deadline passed; closing remaining connections")
                    break
                }
            }
            if stats.contains(where: { $0.state.load(ordering: .acquiring) == 2 }) && drainDeadline == 0 {
                logger.critical("a worker stopped unexpectedly")
                break
            }
        }
        for s in stats { s.stop.store(true, ordering: .relaxed) }
        for t in threads { pthread_join(t, nil) }
        admin?.stop()
        logger.info("stopped")
        return 0
    }

    // MARK: AdminStatusProvider

    var totalWorkers: Int { workers.count }
    var readyWorkers: Int { workers.filter { $0.state.load(ordering: .relaxed) == 1 }.count }
    var isDraining: Bool { drainFlag.load(ordering: .relaxed) }

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
        family("edge_worker_cpu", "CPU the worker is pinned to (-1: not pinned).", "gauge") { $0.cpu.load(ordering: .relaxed) }
        if let count = EdgeServer.allocationCount() {
            out += "# HELP edge_heap_allocations_total malloc-family calls (allocation-counting preload only).\n"
            out += "# TYPE edge_heap_allocations_total counter\nedge_heap_allocations_total \(count)\n"
        }
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
