import Atomics
import CIOUring
import Glibc

/// Control-plane owner of every health cell and of the checker's per-endpoint
/// bookkeeping. Cells are keyed by "cluster/endpoint" and never freed (old
/// snapshots may still point at them; one cell per distinct cluster+endpoint
/// ever configured), so health and ejection state survive reloads.
/// `configure` runs on the reloading thread, the checker's tick on the health
/// thread: both under `mutex`. Reactors never take it.
final class HealthRegistry: @unchecked Sendable {
    static let shared = HealthRegistry()

    private var mutex = pthread_mutex_t()
    private var endpointCells: [String: HealthCell] = [:]
    private var clusterCells: [String: HealthCell] = [:]
    /// Per-endpoint checker state, kept across reloads by key.
    private var tracks: [String: EndpointTrack] = [:]
    /// What the checker works on (the last published config).
    private(set) var plans: [ClusterPlan] = []

    init() { pthread_mutex_init(&mutex, nil) }

    func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    static func key(cluster: String, endpoint: String) -> String { "\(cluster)/\(endpoint)" }

    private static func newCell() -> HealthCell {
        let c = HealthCell.allocate(capacity: EndpointHealth.wordsPerCell)
        for i in 0..<EndpointHealth.wordsPerCell { (c + i).initialize(to: UnsafeAtomic<UInt32>.Storage(0)) }
        return c
    }

    /// The cell of one endpoint of one cluster (created on first use).
    func endpointCell(cluster: String, endpoint: String) -> HealthCell {
        withLock {
            let k = Self.key(cluster: cluster, endpoint: endpoint)
            if let c = endpointCells[k] { return c }
            let c = Self.newCell()
            endpointCells[k] = c
            return c
        }
    }

    func clusterCell(_ cluster: String) -> HealthCell {
        withLock {
            if let c = clusterCells[cluster] { return c }
            let c = Self.newCell()
            clusterCells[cluster] = c
            return c
        }
    }

    /// Takes the clusters of a config about to be published. Endpoints that
    /// left the config stop being checked; their state bits are cleared so a
    /// later re-add starts healthy.
    func configure(_ config: EdgeConfig) {
        var next: [ClusterPlan] = []
        var keep: [String: EndpointTrack] = [:]
        for c in config.clusters {
            let ccell = clusterCell(c.name)
            var eps: [EndpointTrack] = []
            for e in c.endpoints {
                let key = e.address.canonicalKey
                let k = Self.key(cluster: c.name, endpoint: key)
                let cell = endpointCell(cluster: c.name, endpoint: key)
                let t = withLock { tracks[k] } ?? EndpointTrack(key: k, endpoint: key, cell: cell)
                t.address = e.address.storage
                t.addressLength = e.address.length
                t.addressText = e.address.text
                keep[k] = t
                eps.append(t)
            }
            next.append(ClusterPlan(name: c.name, cell: ccell, endpoints: eps, check: c.resilience.healthCheck,
                                    outlier: c.resilience.outlier, panicPercent: c.resilience.panicThresholdPercent))
        }
        withLock {
            for (k, t) in tracks where keep[k] == nil {
                t.abortProbe()
                EndpointHealth.word(t.cell, EndpointHealth.stateWord).store(0, ordering: .relaxed)
                t.down = false
                t.ejectedUntilMs = 0
            }
            tracks = keep
            for p in next {
                // Checks switched off: nothing may stay marked by them.
                if p.check == nil { for t in p.endpoints { t.down = false; t.abortProbe() } }
                if p.outlier == nil { for t in p.endpoints { t.ejectedUntilMs = 0 } }
                for t in p.endpoints { t.publishState() }
                p.publishMode()
            }
            plans = next
        }
    }

    /// Prometheus lines for endpoint state and the workers' resilience counters.
    func renderMetrics(workers: [WorkerStats]) -> String {
        var out = "# HELP edge_endpoint_healthy Endpoint passes active health checks (1) or not (0).\n# TYPE edge_endpoint_healthy gauge\n"
        var ejected = "# HELP edge_endpoint_ejected Endpoint ejected by outlier detection (1) or not (0).\n# TYPE edge_endpoint_ejected gauge\n"
        var ejections = "# HELP edge_endpoint_ejections_total Times outlier detection ejected the endpoint.\n# TYPE edge_endpoint_ejections_total counter\n"
        var checks = "# HELP edge_health_checks_total Active health check probes by result.\n# TYPE edge_health_checks_total counter\n"
        withLock {
            for p in plans {
                for t in p.endpoints {
                    let labels = "cluster=\"\(p.name)\",endpoint=\"\(t.endpoint)\""
                    out += "edge_endpoint_healthy{\(labels)} \(t.down ? 0 : 1)\n"
                    ejected += "edge_endpoint_ejected{\(labels)} \(t.ejectedUntilMs > 0 ? 1 : 0)\n"
                    ejections += "edge_endpoint_ejections_total{\(labels)} \(t.timesEjectedTotal)\n"
                    checks += "edge_health_checks_total{\(labels),result=\"ok\"} \(t.checksOK)\n"
                    checks += "edge_health_checks_total{\(labels),result=\"fail\"} \(t.checksFailed)\n"
                }
            }
        }
        out += ejected + ejections + checks
        func family(_ name: String, _ help: String, _ value: (WorkerStats) -> Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for (i, w) in workers.enumerated() { out += "\(name){worker=\"\(i)\"} \(value(w))\n" }
        }
        family("edge_circuit_open_total", "Requests answered 503 because a cluster circuit breaker was at its limit.") { $0.circuitOpen.load(ordering: .relaxed) }
        family("edge_upstream_retries_total", "Upstream attempts retried on another endpoint.") { $0.retries.load(ordering: .relaxed) }
        family("edge_mirrored_requests_total", "Mirrored request copies answered by the mirror cluster (answers dropped).") { $0.mirrored.load(ordering: .relaxed) }
        return out
    }
}

/// One cluster as the checker sees it.
final class ClusterPlan {
    let name: String
    let cell: HealthCell
    let endpoints: [EndpointTrack]
    let check: HealthCheckConfig?
    let outlier: OutlierConfig?
    let panicPercent: Int

    init(name: String, cell: HealthCell, endpoints: [EndpointTrack], check: HealthCheckConfig?, outlier: OutlierConfig?, panicPercent: Int) {
        self.name = name; self.cell = cell; self.endpoints = endpoints
        self.check = check; self.outlier = outlier; self.panicPercent = panicPercent
    }

    /// Recomputes the cluster word the balancers read.
    func publishMode() {
        let n = endpoints.count
        var usable = 0  // by hand: runs every checker tick, must not allocate
        for t in endpoints where !t.down && t.ejectedUntilMs == 0 { usable += 1 }
        let mode: EndpointHealth.ClusterMode
        if usable == n { mode = .allUsable }
        else if usable * 100 < panicPercent * n { mode = .panic }
        else if usable == 0 { mode = .noneUsable }
        else { mode = .skipUnusable }
        EndpointHealth.word(cell, EndpointHealth.stateWord).store(mode.rawValue, ordering: .relaxed)
    }
}
