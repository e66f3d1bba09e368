/// Process-wide observability: one `WorkerTelemetry` per reactor (metrics
/// shard, access-log ring), the access-log writer thread, and the scrape
/// that merges the shards into Prometheus text. Built on the control thread at start.
final class Telemetry: @unchecked Sendable {
    let workers: [WorkerTelemetry]
    let writer: AccessLogWriter?
    let labels = MetricLabels.shared

    init(config: ObservabilityConfig, workers count: Int) throws {
        var list: [WorkerTelemetry] = []
        var rings: [ByteRing] = []
        let format = config.accessLog.map { AccessLogFormat.compile($0) }
        for _ in 0..<count {
            var t = WorkerTelemetry()
            t.metrics = MetricsShard(histograms: config.metrics.histograms)
            t.histograms = config.metrics.histograms
            if let a = config.accessLog, let format {
                let ring = ByteRing(bytes: a.bufferBytes)
                rings.append(ring)
                t.log = ring
                t.format = format
                t.sampleThreshold = a.sample >= 1 ? .max : UInt64(max(0, a.sample) * 18_446_744_073_709_549_568.0)
            }
            list.append(t)
        }
        workers = list
        writer = try config.accessLog.map { try AccessLogWriter(path: $0.path, rings: rings) }
    }

    func worker(_ i: Int) -> WorkerTelemetry { i >= 0 && i < workers.count ? workers[i] : WorkerTelemetry() }

    func start() { writer?.start() }
    func stop() { writer?.stop() }
    func reopenLog() { writer?.reopen() }
}
