import Logging

/// Installs the process-wide swift-log backend once, from `runtime.log_format`
/// and `runtime.log_level` (already validated by the loader).
enum LoggingSetup {
    /// Calls `LoggingSystem.bootstrap`; swift-log allows this only once per process.
    static func bootstrap(format: String, level: String) {
        let lvl = Logger.Level(rawValue: level) ?? .info
        let json = format == "json"
        LoggingSystem.bootstrap { label in makeHandler(json: json, level: lvl, label: label) }
    }

    static func makeHandler(json: Bool, level: Logger.Level, label: String) -> any LogHandler {
        if json {
            var h = JSONLogHandler(label: label)
            h.logLevel = level
            return h
        }
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = level
        return h
    }
}
