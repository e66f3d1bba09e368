import ArgumentParser

/// The `edge` command: `run`, `validate`, `version`. The root only dispatches.
/// Public because the thin `edge` executable target (Sources/EdgeMain) runs it.
public struct EdgeCommand: ParsableCommand {
    public init() {}
    public static let configuration = CommandConfiguration(
        commandName: "edge",
        abstract: "Edge: an io_uring reverse proxy.",
        version: EdgeVersion.string,
        subcommands: [RunCommand.self, ValidateCommand.self, ReloadCommand.self, UpgradeCommand.self, TuneCommand.self, GenCertsCommand.self, VersionCommand.self]
    )
}

/// Build identity printed by `edge version` and `edge --version`.
enum EdgeVersion {
    static let string = "0.1.0-dev"
}

/// `edge version`.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")
    func run() throws {
        print("edge \(EdgeVersion.string)")
    }
}

/// Writes CLI messages to stderr without touching the global `stderr`
/// (not concurrency-safe in Swift 6).
enum Console {
    static func error(_ message: String) {
        JSONLogHandler.writeLine(2, message.hasSuffix("\n") ? message : message + "\n")
    }
}
