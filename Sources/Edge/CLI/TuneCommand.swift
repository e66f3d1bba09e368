import ArgumentParser
import CIOUring
import Glibc

/// `edge tune check|apply`: compare the host with a tuning profile, or apply it.
struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Check or apply host tuning profiles (sysctl, rlimits, CPU governor).",
        discussion: "Profiles: \(ProfileLocator.profiles.joined(separator: ", ")). Files are read from --dir, "
            + "else from tuning/ next to the binary, /etc/edge/tuning or ./tuning, else the built-in copies.",
        subcommands: [TuneCheckCommand.self, TuneApplyCommand.self]
    )
}

/// Loads and parses a profile and the limits.d file (exit 2 on a bad file).
private struct LoadedProfile {
    var name: String
    var source: String
    var settings: [SysctlSetting]
    var limits: [LimitEntry]
    var limitsText: String
    var profileText: String

    static func load(_ name: String, dir: String?) throws -> LoadedProfile {
        do {
            let p = try ProfileLocator.load(name, dir: dir)
            let settings = try SysctlFile.parse(p.text, file: p.source)
            // The limits file is optional with --dir (built-in copy otherwise).
            let l = (try? ProfileLocator.load(ProfileLocator.limitsFile, dir: dir))
                ?? ProfileLocator.Found(text: EmbeddedTuning.files[ProfileLocator.limitsFile] ?? "", source: "embedded")
            let limits = try LimitsFile.parse(l.text, file: l.source)
            return LoadedProfile(name: name, source: p.source, settings: settings, limits: limits,
                                 limitsText: l.text, profileText: p.text)
        } catch let e as ProfileLocator.NotFound {
            Console.error("edge tune: \(e.description)")
            throw ExitCode(2)
        } catch let e as TuneFileError {
            Console.error("edge tune: \(e.description)")
            throw ExitCode(2)
        }
    }
}

/// `edge tune check [--profile NAME] [--dir DIR]`.
struct TuneCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Print live values next to a profile's; exit 1 when an important setting differs."
    )

    @Option(name: .long, help: "Profile: throughput, latency or many-connections.")
    var profile: String = "throughput"

    @Option(name: .long, help: "Directory holding the profiles (default: found next to the binary).")
    var dir: String?

    func run() throws {
        let p = try LoadedProfile.load(profile, dir: dir)
        let snapshot = SystemProbe.snapshot(keys: p.settings.map(\.key))
        let rows = TuneReport.rows(profile: profile, settings: p.settings, limits: p.limits, snapshot: snapshot)
        print("edge tune check: profile \(profile) (\(p.source))")
        print("")
        print(TuneReport.render(rows), terminator: "")
        print("")
        print(TuneReport.summary(rows, profile: profile))
        let code = TuneReport.exitCode(rows)
        if code != 0 { throw ExitCode(code) }
    }
}

/// `edge tune apply --profile NAME [--dry-run] [--no-persist] [--dir DIR]`.
struct TuneApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Write a profile's sysctls (never lowering a higher live value), the CPU governor, "
            + "and persist them in /etc/sysctl.d and /etc/security/limits.d. Root only."
    )

    static let sysctlDest = "/etc/sysctl.d/60-edge.conf"
    static let limitsDest = "/etc/security/limits.d/edge.conf"

    @Option(name: .long, help: "Profile: throughput, latency or many-connections.")
    var profile: String

    @Flag(name: .long, help: "Print what would be done; change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Only change live values; do not write /etc/sysctl.d or /etc/security/limits.d.")
    var noPersist = false

    @Option(name: .long, help: "Directory holding the profiles (default: found next to the binary).")
    var dir: String?

    func run() throws {
        let p = try LoadedProfile.load(profile, dir: dir)
        if !dryRun && !SystemProbe.isRoot() {
            Console.error("edge tune apply: must run as root (sudo edge tune apply --profile \(profile)); "
                + "--dry-run shows the commands without changing anything")
            throw ExitCode(1)
        }
        let snapshot = SystemProbe.snapshot(keys: p.settings.map(\.key))
        var failures = 0
        print("edge tune apply: profile \(profile) (\(p.source))\(dryRun ? " — dry run, nothing is changed" : "")")
        for s in p.settings {
            let rule = TuneRules.rule(for: s.key)
            guard let current = snapshot.sysctl[s.key] else {
                print("# skip \(s.key): not present on this kernel (module not loaded?)")
                continue
            }
            if TuneCompare.satisfies(rule, wanted: s.value, current: current) {
                print("# ok   \(s.key) = \(current)")
                continue
            }
            let value = TuneCompare.valueToApply(rule, wanted: s.value, current: current)
            let cmd = TuneReport.sysctlCommand(s.key, value)
            if dryRun {
                print("\(cmd)    # now: \(current)")
            } else if let err = SystemProbe.writeSysctl(s.key, value) {
                failures += s.ignoreFailure ? 0 : 1
                print("FAILED \(cmd): \(err)")
            } else {
                print("\(cmd)    # was: \(current)")
            }
        }
        for path in SystemProbe.governorPaths() {
            let now = SystemProbe.readSmall(path).map { TuneText.trim($0) } ?? "?"
            if now == "performance" { continue }
            if dryRun {
                print("echo performance > \(path)    # now: \(now)")
            } else if let err = SystemProbe.writeFile(path, "performance\n") {
                failures += 1
                print("FAILED echo performance > \(path): \(err)")
            } else {
                print("echo performance > \(path)    # was: \(now)")
            }
        }
        if !noPersist {
            persist(p.profileText, to: Self.sysctlDest, what: "profile \(profile) (applied at boot by systemd-sysctl)",
                    failures: &failures)
            if access("/etc/security/limits.d", F_OK) != 0 {
                print("# skip \(Self.limitsDest): /etc/security/limits.d does not exist (no PAM limits)")
            } else {
                persist(p.limitsText, to: Self.limitsDest, what: "nofile/memlock for user edge (PAM sessions)",
                        failures: &failures)
            }
        }
        let nofile = LimitsFile.wanted("nofile", in: p.limits) ?? .value(TuneReport.defaultNofile)
        print("# rlimits are per process: run edge under tuning/edge.service (LimitNOFILE=\(nofile), "
            + "LimitMEMLOCK=infinity) or `ulimit -n \(nofile); ulimit -l unlimited` before `edge run`")
        if failures > 0 {
            Console.error("edge tune apply: \(failures) change\(failures == 1 ? "" : "s") failed")
            throw ExitCode(1)
        }
    }

    private func persist(_ text: String, to path: String, what: String, failures: inout Int) {
        if dryRun {
            print("write \(path)    # \(what)")
        } else if let err = SystemProbe.writeFile(path, text) {
            failures += 1
            print("FAILED write \(path): \(err)")
        } else {
            print("wrote \(path)    # \(what)")
        }
    }
}
