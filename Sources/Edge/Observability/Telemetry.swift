/// Process-wide observability: one `WorkerTelemetry` per reactor (metrics
/// shard, access-log ring), the access-log writer thread, and the scrape
/// that merges the shards into Prometheus text. Built on the control thread at start.
final class Telemetry: @unchecked Sendable {
    let workers: [WorkerTelemetry]
    let writer: AccessLogWriter?
    let exporter: SpanExporter?
    let labels = MetricLabels.shared

    init(config: ObservabilityConfig, workers count: Int) throws {
        var list: [WorkerTelemetry] = []
        var rings: [ByteRing] = []
        var spanRings: [ByteRing] = []
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
                t.sampleThreshold = Telemetry.threshold(a.sample)
            }
            if let tr = config.tracing {
                let ring = ByteRing(bytes: 4096 * SpanRecord.size)
                spanRings.append(ring)
                t.spans = ring
                t.traceThreshold = Telemetry.threshold(tr.sample)
            }
            list.append(t)
        }
        workers = list
        writer = try config.accessLog.map { try AccessLogWriter(path: $0.path, rings: rings) }
        exporter = config.tracing.map { SpanExporter(config: $0, rings: spanRings) }
    }

    /// A ratio in 0...1 as the largest random draw that is still sampled.
    static func threshold(_ ratio: Double) -> UInt64 {
        if ratio >= 1 { return .max }
        if ratio <= 0 { return 0 }
        return UInt64(ratio * 18_446_744_073_709_549_568.0)
    }

    func worker(_ i: Int) -> WorkerTelemetry { i >= 0 && i < workers.count ? workers[i] : WorkerTelemetry() }

    func start() { writer?.start(); exporter?.start() }
    func stop() { writer?.stop(); exporter?.stop() }
    func reopenLog() { writer?.reopen() }
}
