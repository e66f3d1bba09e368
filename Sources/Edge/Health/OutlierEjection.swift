import Atomics
import Logging

/// Passive outlier detection (Envoy semantics): reactors count consecutive
/// 5xx answers and connect failures per endpoint in its health cell; each
/// checker tick ejects an endpoint whose streak reached a threshold for
/// base_ejection_time × times ejected (capped at max_ejection_time), never
/// more than max_ejection_percent of the cluster at once, and returns it when
/// the time is up.
enum OutlierEjection {
    static func apply(_ p: ClusterPlan, now: Int64, logger: Logger) {
        guard let o = p.outlier else { return }
        let n = p.endpoints.count
        // Counted by hand: this runs every tick and must not allocate.
        var ejectedCount = 0
        for t in p.endpoints where t.ejectedUntilMs > 0 { ejectedCount += 1 }
        for t in p.endpoints {
            let fives = EndpointHealth.word(t.cell, EndpointHealth.consecutive5xxWord)
            let connects = EndpointHealth.word(t.cell, EndpointHealth.consecutiveConnectWord)
            if t.ejectedUntilMs > 0 {
                guard now >= t.ejectedUntilMs else { continue }
                t.ejectedUntilMs = 0
                ejectedCount -= 1
                fives.store(0, ordering: .relaxed); connects.store(0, ordering: .relaxed)
                t.publishState()
                logger.info("endpoint returned from ejection", metadata: ["endpoint": "\(t.key)"])
                continue
            }
            let f = Int(fives.load(ordering: .relaxed)), c = Int(connects.load(ordering: .relaxed))
            let tripped = (o.consecutive5xx > 0 && f >= o.consecutive5xx)
                || (o.consecutiveConnectFailures > 0 && c >= o.consecutiveConnectFailures)
            guard tripped, ejectedCount * 100 < o.maxEjectionPercent * n else { continue }
            t.timesEjected = min(t.timesEjected + 1, 1_000_000)
            t.timesEjectedTotal += 1
            let ms = min(Int64(o.baseEjectionMs) * Int64(t.timesEjected), Int64(o.maxEjectionMs))
            t.ejectedUntilMs = now + max(ms, 1)
            ejectedCount += 1
            fives.store(0, ordering: .relaxed); connects.store(0, ordering: .relaxed)
            t.publishState()
            logger.warning("endpoint ejected", metadata: ["endpoint": "\(t.key)", "for_ms": "\(ms)", "times": "\(t.timesEjected)"])
        }
    }
}
