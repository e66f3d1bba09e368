/// Read-only view of the running server for the admin API. Called on the admin
/// thread, never on a reactor; the server implements it over its counters.
protocol AdminStatusProvider: AnyObject, Sendable {
    var totalWorkers: Int { get }
    var readyWorkers: Int { get }
    var isDraining: Bool { get }
    /// Workers still serving an older snapshot well after a publication (stuck), with how many publications behind.
    var laggingWorkers: [(worker: Int, behind: Int)] { get }
    /// Prometheus text exposition of counters (already formatted).
    func renderMetrics() -> String
    /// Re-reads and publishes the config file (POST /reload).
    func reload() -> ReloadStatus
    /// Result of the last reload attempt (GET /reload).
    var lastReload: ReloadStatus { get }
    /// Starts a graceful drain, like SIGTERM (POST /drain).
    func beginDrain()
}
