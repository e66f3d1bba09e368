import ArgumentParser

/// `edge validate --config FILE`: parse and check the config, print a one-line
/// summary (exit 0) or the first `file:line: field: problem` (exit 1).
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a config file and exit (0 = valid, 1 = invalid)."
    )

    @Option(name: [.short, .long], help: "Path to the YAML config file.")
    var config: String

    func run() throws {
        do {
            let cfg = try ConfigLoader.load(path: config)
            for w in cfg.warnings { Console.error("warning: " + w) }
            print(cfg.summary)
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }
    }
}
