import ArgumentParser
import Glibc

/// `edge gen-certs --hostname NAME [--out DIR]`: a CA, server certificates
/// (ECDSA P-256 and RSA-2048) and a client certificate for demos and tests.
struct GenCertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen-certs",
        abstract: "Write a demo CA, server (ECDSA and RSA) and client certificates."
    )

    @Option(name: .long, help: "Host name the server certificates are for (also *.NAME).")
    var hostname: String = "localhost"

    @Option(name: .long, help: "Directory to write into (created if missing).")
    var out: String = "certs"

    @Option(name: .long, help: "Validity in days.")
    var days: Int = 825

    func run() throws {
        guard TLSServerContext.isValidServerName(hostname.lowercased()), !hostname.hasPrefix("*.") else {
            Console.error("--hostname: '\(hostname)' is not a host name")
            throw ExitCode(1)
        }
        guard (1...3650).contains(days) else { Console.error("--days: must be between 1 and 3650"); throw ExitCode(1) }
        if mkdir(out, 0o755) != 0 && errno != EEXIST {
            Console.error("\(out): cannot create directory: \(FileManagerLite.lastError())")
            throw ExitCode(1)
        }
        do {
            let files = try CertificateFactory.writeDemoSet(hostname: hostname.lowercased(), dir: out, days: days)
            print("wrote \(files.map { "\(out)/\($0)" }.joined(separator: " "))")
        } catch {
            Console.error("gen-certs: \(error)")
            throw ExitCode(1)
        }
    }
}
