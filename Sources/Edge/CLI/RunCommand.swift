import ArgumentParser
import Logging

/// `edge run --config FILE`: load the config (exit 1 with the error if it is
/// bad), set up logging and resource limits, then hand over to `EdgeServer`.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the proxy until SIGTERM/SIGINT (then drain and exit)."
    )

    @Option(name: [.short, .long], help: "Path to the YAML config file.")
    var config: String

    func run() throws {
        // Before anything touches OpenSSL (the config loader builds TLS contexts).
        TLSMemory.install()
        let cfg: EdgeConfig
        do {
            cfg = try ConfigLoader.load(path: config)
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }
        LoggingSetup.bootstrap(format: cfg.runtime.logFormat, level: cfg.runtime.logLevel)
        let logger = Logger(label: "edge")
        for w in cfg.warnings { logger.warning("\(w)") }
        ResourceLimits.raiseFileLimit(logger: logger)
        let code: Int32
        do {
            code = try EdgeServer.run(config: cfg, configPath: config, logger: logger)
        } catch {
            logger.critical("edge stopped: \(error)")
            throw ExitCode(1)
        }
        if code != 0 { throw ExitCode(code) }
    }
}
