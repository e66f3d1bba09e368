import CIOUring
import Glibc
import Logging

/// Result of the last reload, reported by the admin API.
struct ReloadStatus: Sendable {
    var generation: Int
    var ok: Bool
    var message: String
    var unixTime: Int
    /// Workers serving `generation` when the result was reported, of all workers.
    var workersAdopted = 0
    var workers = 0
    var json: String {
        var escaped = ""
        for ch in message.unicodeScalars {
            switch ch {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: if ch.value < 0x20 { escaped += " " } else { escaped.unicodeScalars.append(ch) }
            }
        }
        return "{\"generation\":\(generation),\"ok\":\(ok),\"time\":\(unixTime),\"workers_adopted\":\(workersAdopted),\"workers\":\(workers),\"message\":\"\(escaped)\"}"
    }
}

/// Loads, validates and publishes a new configuration. Serialised by a mutex
/// because SIGHUP (control thread) and `POST /reload` (admin thread) both call
/// it; a rejected config leaves the running snapshot untouched.
final class Reloader: @unchecked Sendable {
    let configPath: String
    private let publisher: SnapshotPublisher
    private let listenerSet: ListenerSet
    private let logger: Logger
    private var mutex = pthread_mutex_t()
    private var generation = 0
    private var status = ReloadStatus(generation: 0, ok: true, message: "initial config", unixTime: 0)
    /// The config the current snapshot was compiled from (guarded by `mutex`).
    private var running: EdgeConfig
    /// The reactors' counters, set once they exist (guarded by `mutex`).
    private var workers: [WorkerStats] = []
    /// How long a reload waits for every worker to adopt it before answering.
    static let adoptionWaitMs: Int64 = 1_000

    init(configPath: String, config: EdgeConfig, publisher: SnapshotPublisher, listenerSet: ListenerSet, logger: Logger) {
        self.configPath = configPath
        self.running = config
        self.publisher = publisher
        self.listenerSet = listenerSet
        self.logger = logger
        pthread_mutex_init(&mutex, nil)
    }

    /// Lets reload results report which workers adopted them.
    func attach(workers: [WorkerStats]) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        self.workers = workers
    }

    /// Waits (bounded) until every worker serves `generation`; returns how many do.
    /// A worker adopts on its next loop turn (≤ 10 ms when idle), so a worker
    /// still behind after the wait is stuck and the reload result says so.
    private func awaitAdoption(_ generation: Int) -> Int {
        let deadline = Reactor.monotonicMs() + Reloader.adoptionWaitMs
        while true {
            let adopted = workers.filter { $0.adoptedGeneration.load(ordering: .acquiring) >= generation }.count
            if adopted == workers.count || Reactor.monotonicMs() >= deadline { return adopted }
            usleep(1_000)
        }
    }

    /// Runs `body` with the listening sockets; no reload runs meanwhile (binary upgrade).
    func withListenerSockets<T>(_ body: ([(key: String, fds: [Int32])]) -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body(listenerSet.all)
    }

    /// Publishes `config` (first start or reload). Throws on listener bind errors.
    func publish(_ config: EdgeConfig) throws {
        let fds = try listenerSet.sockets(for: config.listeners)
        let quicFds = try listenerSet.quicSockets(for: config.listeners)
        generation += 1
        let table = RouteTableCompiler.compile(config, generation: generation)
        // Per-worker regex match data for every reactor actually running.
        table.prepareForWorkers(listenerSet.workers)
        HealthRegistry.shared.configure(config)
        publisher.publish(Publication(generation: generation, table: table, listenerFds: fds, quicFds: quicFds))
        running = config
    }

    /// Re-reads the config file and publishes it if valid.
    @discardableResult
    func reload(trigger: String) -> ReloadStatus {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let now = Int(time(nil))
        let next: EdgeConfig
        do {
            next = try ConfigLoader.load(path: configPath)
        } catch {
            status = ReloadStatus(generation: generation, ok: false, message: error.description, unixTime: now)
            logger.error("reload rejected; keeping the running config", metadata: ["trigger": "\(trigger)", "error": "\(error.description)"])
            return status
        }
        for w in next.warnings { logger.warning("\(w)", metadata: ["trigger": "\(trigger)"]) }
        if next.runtime.workers != running.runtime.workers {
            logger.warning("runtime.workers changes apply on restart only", metadata: ["trigger": "\(trigger)"])
        }
        do {
            try publish(next)
        } catch {
            status = ReloadStatus(generation: generation, ok: false, message: "\(error)", unixTime: now)
            logger.error("reload rejected; keeping the running config", metadata: ["trigger": "\(trigger)", "error": "\(error)"])
            return status
        }
        let adopted = awaitAdoption(generation)
        var message = "reloaded \(configPath)"
        if adopted < workers.count {
            let behind = workers.indices.filter { workers[$0].adoptedGeneration.load(ordering: .acquiring) < generation }
            message += "; \(workers.count - adopted) of \(workers.count) workers have not adopted generation \(generation) yet (workers \(behind.map(String.init).joined(separator: ",")))"
            logger.warning("reload not adopted by every worker", metadata: ["trigger": "\(trigger)", "generation": "\(generation)", "behind": "\(behind)"])
        }
        status = ReloadStatus(generation: generation, ok: true, message: message, unixTime: now,
                              workersAdopted: adopted, workers: workers.count)
        logger.info("reloaded", metadata: ["trigger": "\(trigger)", "generation": "\(generation)"])
        return status
    }

    /// Publishes an updated copy of the running config (DNS refresh), not the file.
    func republish(_ next: EdgeConfig, trigger: String) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        do {
            try publish(next)
            logger.info("republished", metadata: ["trigger": "\(trigger)", "generation": "\(generation)"])
        } catch {
            logger.error("republish failed", metadata: ["trigger": "\(trigger)", "error": "\(error)"])
        }
    }

    var lastStatus: ReloadStatus {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return status
    }

    /// The running config (copy), safe from any thread.
    var config: EdgeConfig {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return running
    }
}
