import Synchronization

/// Stable metric ids for the label sets the config defines: one per
/// (listener, route) and one per cluster, kept across reloads so counters
/// never reset, and capped so the series count is bounded by config, never by
/// client input (ids past the cap share the `other` series, id 0).
/// Control thread only (the compiler assigns, the scrape reads).
final class MetricLabels: Sendable {
    static let shared = MetricLabels()
    static let maxRoutes = 1024
    static let maxClusters = 512
    /// Route label of requests no route matched.
    static let unmatched = "none"

    private struct State {
        var routes: [String: Int32] = [:]
        var routeLabels: [(listener: String, route: String)] = [("other", "other")]
        var clusters: [String: Int32] = [:]
        var clusterLabels: [String] = ["other"]
    }
    private let state = Mutex(State())

    func route(listener: String, route: String) -> Int32 {
        state.withLock { s in
            let key = listener + "\u{0}" + route
            if let id = s.routes[key] { return id }
            guard s.routeLabels.count < Self.maxRoutes else { return 0 }
            let id = Int32(s.routeLabels.count)
            s.routeLabels.append((listener, route))
            s.routes[key] = id
            return id
        }
    }

    func cluster(_ name: String) -> Int32 {
        state.withLock { s in
            if let id = s.clusters[name] { return id }
            guard s.clusterLabels.count < Self.maxClusters else { return 0 }
            let id = Int32(s.clusterLabels.count)
            s.clusterLabels.append(name)
            s.clusters[name] = id
            return id
        }
    }

    var routeLabels: [(listener: String, route: String)] { state.withLock { $0.routeLabels } }
    var clusterLabels: [String] { state.withLock { $0.clusterLabels } }
}
