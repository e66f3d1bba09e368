/// Read-only view of the running server for the admin API. Called on the admin
/// thread, never on a reactor; the server implements it over its counters.
protocol AdminStatusProvider: AnyObject, Sendable {
    var totalWorkers: Int { get }
    var readyWorkers: Int { get }
    var isDraining: Bool { get }
    /// Prometheus text exposition of counters (already formatted).
    func renderMetrics() -> String
}
