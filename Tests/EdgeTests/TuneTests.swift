import XCTest
@testable import Edge

/// `edge tune`: parsing of the shipped tuning files, the comparison rules and
/// the report built from a (fake) host snapshot.
final class TuneTests: XCTestCase {
    /// <repo>/tuning, found from this file's path.
    static let tuningDir: String = {
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(3)  // Tests/EdgeTests/TuneTests.swift
        return "/" + parts.joined(separator: "/") + "/tuning"
    }()

    func readTuning(_ file: String) throws -> String {
        try XCTUnwrap(SystemProbe.readSmall(Self.tuningDir + "/" + file), "cannot read tuning/\(file)")
    }

    // MARK: shipped files

    func testEveryShippedProfileParsesWithAReasonPerSetting() throws {
        for name in ProfileLocator.profiles {
            let text = try readTuning(name + ".conf")
            let settings = try SysctlFile.parse(text, file: name)
            XCTAssertGreaterThanOrEqual(settings.count, 10, name)
            for s in settings {
                XCTAssertFalse(s.reason.isEmpty, "\(name).conf:\(s.line): \(s.key) has no reason comment above it")
                XCTAssertTrue(s.key.contains("."), "\(name): \(s.key)")
                XCTAssertFalse(s.value.isEmpty)
            }
            let keys = Set(settings.map(\.key))
            for required in ["net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.ip_local_port_range",
                             "net.ipv4.tcp_tw_reuse", "net.core.netdev_max_backlog", "net.ipv4.tcp_fin_timeout",
                             "fs.file-max", "fs.nr_open"] {
                XCTAssertTrue(keys.contains(required), "\(name) lacks \(required)")
            }
            // A profile must satisfy itself.
            for s in settings {
                XCTAssertTrue(TuneCompare.satisfies(TuneRules.rule(for: s.key), wanted: s.value, current: s.value), "\(name): \(s.key)")
            }
        }
    }

    func testShippedProfileValues() throws {
        let t = try SysctlFile.parse(try readTuning("throughput.conf"))
        let byKey = Dictionary(uniqueKeysWithValues: t.map { ($0.key, $0.value) })
        XCTAssertEqual(byKey["net.core.somaxconn"], "65535")
        XCTAssertEqual(byKey["net.ipv4.ip_local_port_range"], "10000 65535")
        XCTAssertEqual(byKey["net.ipv4.tcp_rmem"], "4096 131072 16777216")
        let l = try SysctlFile.parse(try readTuning("latency.conf"))
        XCTAssertTrue(l.contains { $0.key == "net.core.busy_poll" && $0.value == "50" })
        XCTAssertTrue(l.contains { $0.key == "net.ipv4.tcp_notsent_lowat" })
        let m = try SysctlFile.parse(try readTuning("many-connections.conf"))
        XCTAssertTrue(m.contains { $0.key == "net.ipv4.tcp_max_tw_buckets" })
        // nr_open must allow the LimitNOFILE of edge.service / limits.d.
        let limits = try LimitsFile.parse(try readTuning("limits.d/edge.conf"))
        guard case .value(let nofile)? = LimitsFile.wanted("nofile", in: limits) else { return XCTFail("nofile") }
        for profile in [t, l, m] {
            let nrOpen = try XCTUnwrap(profile.first { $0.key == "fs.nr_open" }.flatMap { UInt64($0.value) })
            XCTAssertGreaterThanOrEqual(nrOpen, nofile)
        }
    }

    func testLimitsFile() throws {
        let entries = try LimitsFile.parse(try readTuning("limits.d/edge.conf"))
        XCTAssertEqual(entries.count, 4)
        XCTAssertTrue(entries.allSatisfy { !$0.reason.isEmpty && $0.domain == "edge" })
        XCTAssertEqual(LimitsFile.wanted("nofile", in: entries), .value(1_048_576))
        XCTAssertEqual(LimitsFile.wanted("memlock", in: entries), .unlimited)
        XCTAssertNil(LimitsFile.wanted("nproc", in: entries))

        XCTAssertThrowsError(try LimitsFile.parse("edge soft nofile\n")) {
            XCTAssertEqual(($0 as? TuneFileError)?.line, 1)
        }
        XCTAssertThrowsError(try LimitsFile.parse("# x\nedge medium nofile 10\n")) {
            XCTAssertEqual(($0 as? TuneFileError)?.description, "<limits>:2: type must be soft, hard or -, got 'medium'")
        }
        XCTAssertThrowsError(try LimitsFile.parse("edge - nofile lots\n"))
        let mixed = try LimitsFile.parse("a soft nofile 9000000\na hard nofile 100\nb - nofile 200\n")
        XCTAssertEqual(LimitsFile.wanted("nofile", in: mixed), .value(200), "hard/- lines win over soft")
    }

    func testSystemdUnit() throws {
        let unit = try readTuning("edge.service")
        for line in ["LimitNOFILE=1048576", "LimitMEMLOCK=infinity", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                     "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM"] {
            XCTAssertTrue(unit.split(separator: "\n").contains { $0 == line }, "edge.service lacks \(line)")
        }
    }

    func testEmbeddedCopiesMatchFiles() throws {
        for file in ProfileLocator.profiles.map({ $0 + ".conf" }) + [ProfileLocator.limitsFile, ProfileLocator.unitFile] {
            XCTAssertEqual(EmbeddedTuning.files[file], try readTuning(file),
                           "Sources/Edge/Tuning/EmbeddedTuning.swift is stale for \(file): run tuning/embed-profiles.sh")
        }
    }

    // MARK: parser

    func testSysctlParser() throws {
        let text = """
            # header

            # reason one
            net.core.somaxconn=4096
            ; reason two
              -net.ipv4.ip_local_port_range =  1024\t 65535  \r
            # stale reason

            kernel/sched_domain/x.y = 1
            """
        let s = try SysctlFile.parse(text, file: "t.conf")
        XCTAssertEqual(s, [
            SysctlSetting(key: "net.core.somaxconn", value: "4096", reason: "reason one", line: 4),
            SysctlSetting(key: "net.ipv4.ip_local_port_range", value: "1024 65535", reason: "reason two", line: 6,
                          ignoreFailure: true),
            SysctlSetting(key: "kernel.sched_domain.x/y", value: "1", reason: "", line: 9),
        ])
        XCTAssertEqual(s[0].procPath, "/proc/sys/net/core/somaxconn")
        XCTAssertEqual(s[2].procPath, "/proc/sys/kernel/sched_domain/x.y")

        let bad: [(String, String)] = [
            ("net.core.somaxconn\n", "t.conf:1: expected 'key = value', got 'net.core.somaxconn'"),
            ("= 5\n", "t.conf:1: missing key before '='"),
            ("a.b =\n", "t.conf:1: a.b: missing value"),
            ("a b = 1\n", "t.conf:1: key 'a b' contains blanks"),
            ("a.b = 1 # why\n", "t.conf:1: a.b: inline comments are not allowed in sysctl.d files; put the reason on the line above"),
            ("a.b = 1\n\na.b = 2\n", "t.conf:3: a.b: duplicate setting (first on line 1)"),
        ]
        for (input, message) in bad {
            XCTAssertThrowsError(try SysctlFile.parse(input, file: "t.conf"), input) {
                XCTAssertEqual(($0 as? TuneFileError)?.description, message)
            }
        }
    }

    // MARK: comparison

    func testRules() {
        XCTAssertEqual(TuneRules.rule(for: "net.core.somaxconn"), .atLeast)
        XCTAssertEqual(TuneRules.rule(for: "net.ipv4.tcp_fin_timeout"), .atMost)
        XCTAssertEqual(TuneRules.rule(for: "net.ipv4.ip_local_port_range"), .rangeWidth)
        XCTAssertEqual(TuneRules.rule(for: "net.ipv4.tcp_tw_reuse"), .exact)
        XCTAssertTrue(TuneRules.isImportant("net.core.somaxconn"))
        XCTAssertFalse(TuneRules.isImportant("net.core.busy_poll"))
    }

    func testCompare() {
        let cases: [(TuneRule, String, String, Bool)] = [
            (.atLeast, "65535", "65535", true),
            (.atLeast, "65535", "131072", true),
            (.atLeast, "65535", "4096", false),
            (.atLeast, "4096 131072 16777216", "4096 131072 33554432", true),
            (.atLeast, "4096 65536 16777216", "4096 16384 4194304", false),
            (.atLeast, "4096 65536 16777216", "4096 65536", false),        // field count differs
            (.atLeast, "fq", "fq", true),                                  // non-numeric: exact
            (.atLeast, "fq", "pfifo_fast", false),
            (.atMost, "15", "60", false),
            (.atMost, "15", "10", true),
            (.atMost, "16384", "4294967295", false),
            (.rangeWidth, "10000 65535", "32768 60999", false),
            (.rangeWidth, "10000 65535", "1024 65535", true),
            (.rangeWidth, "10000 65535", "5000 60535", true),              // same width, shifted
            (.rangeWidth, "10000 65535", "65535 10000", false),            // inverted
            (.exact, "1", "1", true),
            (.exact, "1", "2", false),
            (.exact, "a  b", "a\tb", true),
        ]
        for (rule, wanted, current, expect) in cases {
            XCTAssertEqual(TuneCompare.satisfies(rule, wanted: wanted, current: current), expect, "\(rule) \(wanted) vs \(current)")
        }
        XCTAssertEqual(TuneCompare.status(key: "net.core.somaxconn", wanted: "65535", current: "4096"), .fix)
        XCTAssertEqual(TuneCompare.status(key: "net.core.busy_poll", wanted: "50", current: "0"), .warn)
        XCTAssertEqual(TuneCompare.status(key: "net.core.busy_poll", wanted: "50", current: "50"), .ok)
        XCTAssertEqual(TuneCompare.status(key: "net.netfilter.nf_conntrack_max", wanted: "1", current: nil), .notApplicable)
    }

    func testValueToApplyNeverLowers() {
        XCTAssertEqual(TuneCompare.valueToApply(.atLeast, wanted: "4096 65536 16777216", current: "8192 16384 4194304"),
                       "8192 65536 16777216")
        XCTAssertEqual(TuneCompare.valueToApply(.atMost, wanted: "15", current: "10"), "10")
        XCTAssertEqual(TuneCompare.valueToApply(.atMost, wanted: "15", current: "60"), "15")
        XCTAssertEqual(TuneCompare.valueToApply(.rangeWidth, wanted: "10000 65535", current: "32768 60999"), "10000 65535")
        XCTAssertEqual(TuneCompare.valueToApply(.atLeast, wanted: "65535", current: nil), "65535")
        XCTAssertEqual(TuneCompare.describe(.rangeWidth, wanted: "10000 65535"), "10000 65535 (width >= 55535)")
        XCTAssertEqual(TuneCompare.describe(.atLeast, wanted: "1"), ">= 1")
        XCTAssertEqual(TuneReport.sysctlCommand("a.b", "1 2"), "sysctl -w 'a.b=1 2'")
        XCTAssertEqual(TuneReport.sysctlCommand("a.b", "1"), "sysctl -w a.b=1")
    }

    // MARK: report

    func testReportOnAFakeHost() throws {
        let settings = try SysctlFile.parse("""
            # r
            net.core.somaxconn = 65535
            # r
            net.core.busy_poll = 50
            # r
            net.netfilter.nf_conntrack_max = 1048576
            # r
            net.ipv4.ip_local_port_range = 10000 65535
            """)
        let limits = try LimitsFile.parse("edge - nofile 1048576\nedge - memlock unlimited\n")
        var host = SystemSnapshot()
        host.sysctl = ["net.core.somaxconn": "4096", "net.core.busy_poll": "0", "net.ipv4.ip_local_port_range": "1024 65535"]
        host.nofile = RLimitPair(soft: .value(1024), hard: .value(524288))
        host.memlockKiB = RLimitPair(soft: .value(8192), hard: .value(8192))
        host.governors = ["powersave", "performance"]
        host.kernelRelease = "6.1.0-18-amd64"
        host.ioUringDisabled = "0"
        host.nicIRQs = [NICIRQ(interface: "eth0", irq: 40, name: "eth0-TxRx-0", cpus: "0"),
                        NICIRQ(interface: "eth0", irq: 41, name: "eth0-TxRx-1", cpus: "1")]
        let rows = TuneReport.rows(profile: "throughput", settings: settings, limits: limits, snapshot: host)
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0.setting, $0) })

        XCTAssertEqual(byName["kernel"]?.status, .ok)
        XCTAssertEqual(byName["kernel.io_uring_disabled"]?.status, .ok)
        XCTAssertEqual(byName["net.core.somaxconn"],
                       TuneRow(setting: "net.core.somaxconn", current: "4096", wanted: ">= 65535", status: .fix,
                               fix: "sysctl -w net.core.somaxconn=65535"))
        XCTAssertEqual(byName["net.core.busy_poll"]?.status, .warn)
        XCTAssertEqual(byName["net.netfilter.nf_conntrack_max"]?.status, .notApplicable)
        XCTAssertEqual(byName["net.netfilter.nf_conntrack_max"]?.current, "absent")
        XCTAssertEqual(byName["net.ipv4.ip_local_port_range"]?.status, .ok)
        // Hard limit 524288 >= 65536 but < 1048576: advisory.
        XCTAssertEqual(byName["rlimit NOFILE (soft/hard)"]?.status, .warn)
        XCTAssertEqual(byName["rlimit NOFILE (soft/hard)"]?.current, "1024/524288")
        XCTAssertEqual(byName["rlimit MEMLOCK (soft/hard)"]?.status, .warn, "kernel >= 5.12: memcg, not memlock")
        XCTAssertEqual(byName["rlimit MEMLOCK (soft/hard)"]?.current, "8192 KiB/8192 KiB")
        XCTAssertEqual(byName["cpu governor"]?.status, .warn)
        XCTAssertEqual(byName["cpu governor"]?.current, "performance x1, powersave x1")
        XCTAssertEqual(byName["irq affinity eth0"]?.current, "2 irqs on cpus 0 1")
        XCTAssertEqual(TuneReport.exitCode(rows), 1)

        // Old kernel, io_uring disabled, tiny nofile, no cpufreq: all important.
        host.kernelRelease = "5.10.0-28-amd64"
        host.ioUringDisabled = "2"
        host.nofile = RLimitPair(soft: .value(1024), hard: .value(4096))
        host.sysctl["net.core.somaxconn"] = "65535"
        host.governors = []
        host.nicIRQs = nil
        let rows2 = TuneReport.rows(profile: "throughput", settings: settings, limits: limits, snapshot: host)
        let by2 = Dictionary(uniqueKeysWithValues: rows2.map { ($0.setting, $0) })
        XCTAssertEqual(by2["kernel"]?.status, .fix)
        XCTAssertEqual(by2["kernel.io_uring_disabled"]?.fix, "sysctl -w kernel.io_uring_disabled=0")
        XCTAssertEqual(by2["rlimit NOFILE (soft/hard)"]?.status, .fix)
        XCTAssertEqual(by2["rlimit MEMLOCK (soft/hard)"]?.status, .fix, "kernel < 5.12 charges rings to memlock")
        XCTAssertEqual(by2["net.core.somaxconn"]?.status, .ok)
        XCTAssertEqual(by2["cpu governor"]?.status, .notApplicable)
        XCTAssertEqual(by2["irq affinity"]?.status, .notApplicable)

        // A host that matches: exit 0, and the table renders every row.
        host.kernelRelease = "6.8.0"
        host.ioUringDisabled = nil
        host.nofile = RLimitPair(soft: .value(1_048_576), hard: .value(1_048_576))
        host.memlockKiB = RLimitPair(soft: .unlimited, hard: .unlimited)
        host.sysctl["net.core.busy_poll"] = "100"
        host.governors = ["performance", "performance"]
        let rows3 = TuneReport.rows(profile: "latency", settings: settings, limits: limits, snapshot: host)
        XCTAssertEqual(TuneReport.exitCode(rows3), 0)
        let table = TuneReport.render(rows3)
        XCTAssertEqual(table.split(separator: "\n").count, rows3.count + 1)
        XCTAssertTrue(table.hasPrefix("SETTING"))
        XCTAssertEqual(TuneReport.summary(rows3, profile: "latency"), "all settings match profile 'latency'")
    }

    func testKernelVersion() {
        XCTAssertTrue(TuneReport.kernelVersion("6.18.44-fc-v669")! == (6, 18))
        XCTAssertTrue(TuneReport.kernelVersion("5.4.0")! == (5, 4))
        XCTAssertNil(TuneReport.kernelVersion("garbage"))
    }

    // MARK: locating the files

    func testSearchDirs() {
        let dirs = ProfileLocator.searchDirs(exePath: "/opt/edge/bin/edge", cwd: "/home/u")
        XCTAssertEqual(dirs.first, "/opt/edge/tuning")
        XCTAssertTrue(dirs.contains("/opt/edge/share/edge/tuning"))
        XCTAssertEqual(Array(dirs.suffix(2)), ["/etc/edge/tuning", "/home/u/tuning"])
        let repo = ProfileLocator.searchDirs(exePath: "/w/repo/.build/x86_64-unknown-linux-gnu/release/edge", cwd: nil)
        XCTAssertTrue(repo.contains("/w/repo/tuning"))
        XCTAssertEqual(ProfileLocator.normalize("/a/b/../c/./d/.."), "/a/c")
        XCTAssertEqual(ProfileLocator.parent("/a"), "/")
    }

    func testLoadWithDirAndUnknownProfile() throws {
        let found = try ProfileLocator.load("latency", dir: Self.tuningDir)
        XCTAssertEqual(found.source, Self.tuningDir + "/latency.conf")
        XCTAssertThrowsError(try ProfileLocator.load("fastest", dir: nil)) {
            XCTAssertEqual(($0 as? ProfileLocator.NotFound)?.description,
                           "unknown profile 'fastest' (profiles: throughput, latency, many-connections)")
        }
        XCTAssertThrowsError(try ProfileLocator.load("latency", dir: "/nonexistent-dir"))
    }
}
