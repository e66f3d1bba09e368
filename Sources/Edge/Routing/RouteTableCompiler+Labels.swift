/// Metric ids and access-log labels of listeners, routes and clusters
/// (see Observability/MetricLabels.swift). Control thread only.
extension Compilation {
    mutating func label(listener cl: inout CompiledListener, _ l: ListenerConfig, firstRoute: Int) {
        cl.label = arena.intern(l.name)
        cl.unmatchedMetricsId = MetricLabels.shared.route(listener: l.name, route: MetricLabels.unmatched)
        for (k, r) in l.routes.enumerated() where firstRoute + k < parts.routes.count {
            let name = r.name ?? "\(k)"
            parts.routes[firstRoute + k].metricsId = MetricLabels.shared.route(listener: l.name, route: name)
            parts.routes[firstRoute + k].label = arena.intern(name)
            parts.routes[firstRoute + k].accessLog = r.accessLog
        }
    }

    mutating func label(cluster cc: inout CompiledCluster, _ c: ClusterConfig) {
        cc.metricsId = MetricLabels.shared.cluster(c.name)
        cc.label = arena.intern(c.name)
    }
}
