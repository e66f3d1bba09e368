/// `edge tune check`: turns a profile plus a snapshot of the live system into
/// table rows (setting, current, wanted, status, fix). Pure: the snapshot is
/// gathered by `SystemProbe`, so tests can feed any host state.

/// Soft and hard value of one rlimit, in the unit the table shows.
struct RLimitPair: Equatable, Sendable {
    var soft: LimitValue
    var hard: LimitValue
}

/// One NIC interrupt line and the CPUs it is delivered to.
struct NICIRQ: Equatable, Sendable {
    var interface: String
    var irq: Int
    var name: String
    /// `effective_affinity_list` when readable, else `smp_affinity_list` (e.g. `0-1`).
    var cpus: String
}

/// What `SystemProbe` read from this host.
struct SystemSnapshot: Equatable, Sendable {
    /// Live value of every sysctl asked for; a missing key is absent on this kernel.
    var sysctl: [String: String] = [:]
    /// RLIMIT_NOFILE (descriptors).
    var nofile: RLimitPair?
    /// RLIMIT_MEMLOCK in KiB (the unit of `ulimit -l` and limits.d).
    var memlockKiB: RLimitPair?
    /// `scaling_governor` of each CPU that has cpufreq (empty: none visible).
    var governors: [String] = []
    /// `uname -r`.
    var kernelRelease: String = ""
    /// `/proc/sys/kernel/io_uring_disabled` (nil: kernel < 6.6, always enabled).
    var ioUringDisabled: String?
    /// NIC IRQs (nil: /proc/interrupts not readable).
    var nicIRQs: [NICIRQ]?
}

struct TuneRow: Equatable, Sendable {
    var setting: String
    var current: String
    var wanted: String
    var status: TuneStatus
    var fix: String
}

enum TuneReport {
    /// Edge's ring setup uses IORING_SETUP_DEFER_TASKRUN (Linux 6.1).
    static let minKernel = (6, 1)
    /// Below this many descriptors a busy proxy fails (ResourceLimits warns too).
    static let minimumNofile: UInt64 = 65536
    static let defaultNofile: UInt64 = 1_048_576

    static func rows(profile: String, settings: [SysctlSetting], limits: [LimitEntry],
                     snapshot s: SystemSnapshot) -> [TuneRow] {
        var rows: [TuneRow] = []
        let applyAll = "edge tune apply --profile \(profile)"

        // Kernel and io_uring availability first: without them nothing runs.
        let kv = kernelVersion(s.kernelRelease)
        let kernelOK = kv.map { $0 >= minKernel } ?? false
        rows.append(TuneRow(setting: "kernel", current: s.kernelRelease.isEmpty ? "?" : s.kernelRelease,
                            wanted: ">= \(minKernel.0).\(minKernel.1) (io_uring DEFER_TASKRUN)",
                            status: kernelOK ? .ok : .fix,
                            fix: kernelOK ? "-" : "upgrade to Linux \(minKernel.0).\(minKernel.1) or newer"))
        if let v = s.ioUringDisabled {
            let ok = TuneText.trim(v) == "0"
            rows.append(TuneRow(setting: "kernel.io_uring_disabled", current: v, wanted: "0", status: ok ? .ok : .fix,
                                fix: ok ? "-" : "sysctl -w kernel.io_uring_disabled=0"))
        } else {
            rows.append(TuneRow(setting: "kernel.io_uring_disabled", current: "absent (io_uring always on)",
                                wanted: "0", status: .ok, fix: "-"))
        }

        for setting in settings {
            let rule = TuneRules.rule(for: setting.key)
            let current = s.sysctl[setting.key]
            let status = TuneCompare.status(key: setting.key, wanted: setting.value, current: current)
            let fix: String
            switch status {
            case .fix, .warn:
                fix = sysctlCommand(setting.key, TuneCompare.valueToApply(rule, wanted: setting.value, current: current))
            case .notApplicable:
                fix = "- (not on this kernel/module not loaded)"
            case .ok, .info:
                fix = "-"
            }
            rows.append(TuneRow(setting: setting.key, current: current ?? "absent",
                                wanted: TuneCompare.describe(rule, wanted: setting.value), status: status, fix: fix))
        }

        // Descriptors: edge raises its soft limit to the hard one at start, so the hard limit counts.
        let wantNofile = LimitsFile.wanted("nofile", in: limits) ?? .value(defaultNofile)
        if let n = s.nofile {
            let status: TuneStatus
            if n.hard.atLeast(wantNofile) { status = .ok }
            else if n.hard.atLeast(.value(minimumNofile)) { status = .warn }
            else { status = .fix }
            rows.append(TuneRow(setting: "rlimit NOFILE (soft/hard)", current: "\(n.soft)/\(n.hard)",
                                wanted: ">= \(wantNofile) hard", status: status,
                                fix: status == .ok ? "-" : "ulimit -n \(wantNofile)  (systemd: LimitNOFILE=\(wantNofile))"))
        }

        // Locked memory: io_uring charges rings to RLIMIT_MEMLOCK only before 5.12 (memcg after).
        let wantMemlock = LimitsFile.wanted("memlock", in: limits) ?? .unlimited
        if let m = s.memlockKiB {
            let memlockMatters = kv.map { $0 < (5, 12) } ?? true
            let ok = m.soft.atLeast(wantMemlock)
            let shown: (LimitValue) -> String = { v in if case .value(let k) = v { return "\(k) KiB" } else { return "unlimited" } }
            rows.append(TuneRow(setting: "rlimit MEMLOCK (soft/hard)", current: "\(shown(m.soft))/\(shown(m.hard))",
                                wanted: wantMemlock == .unlimited ? "unlimited" : ">= \(shown(wantMemlock))",
                                status: ok ? .ok : (memlockMatters ? .fix : .warn),
                                fix: ok ? "-" : "ulimit -l \(wantMemlock)  (systemd: LimitMEMLOCK=infinity)"))
        }

        // CPU frequency governor.
        if s.governors.isEmpty {
            rows.append(TuneRow(setting: "cpu governor", current: "no cpufreq (VM or fixed clock)",
                                wanted: "performance", status: .notApplicable, fix: "-"))
        } else {
            let ok = s.governors.allSatisfy { $0 == "performance" }
            rows.append(TuneRow(setting: "cpu governor", current: summarize(s.governors), wanted: "performance",
                                status: ok ? .ok : .warn,
                                fix: ok ? "-" : "\(applyAll)  (or: cpupower frequency-set -g performance)"))
        }

        // NIC interrupts: informational (which CPUs take the packets).
        if let irqs = s.nicIRQs {
            let byInterface = Dictionary(grouping: irqs, by: \.interface)
            if byInterface.isEmpty {
                rows.append(TuneRow(setting: "irq affinity", current: "no NIC IRQs visible", wanted: "spread over CPUs",
                                    status: .notApplicable, fix: "-"))
            }
            for name in byInterface.keys.sorted() {
                let list = byInterface[name] ?? []
                let cpus = Set(list.map(\.cpus)).sorted().joined(separator: " ")
                rows.append(TuneRow(setting: "irq affinity \(name)", current: "\(list.count) irqs on cpus \(cpus)",
                                    wanted: "spread over CPUs", status: .info,
                                    fix: "irqbalance, or echo CPU > /proc/irq/N/smp_affinity_list"))
            }
        } else {
            rows.append(TuneRow(setting: "irq affinity", current: "not visible", wanted: "spread over CPUs",
                                status: .notApplicable, fix: "-"))
        }
        return rows
    }

    /// `sysctl -w key=value`, quoted when the value has blanks.
    static func sysctlCommand(_ key: String, _ value: String) -> String {
        value.contains(" ") ? "sysctl -w '\(key)=\(value)'" : "sysctl -w \(key)=\(value)"
    }

    /// `6.18.44-fc-v669` → (6, 18).
    static func kernelVersion(_ release: String) -> (Int, Int)? {
        let parts = release.split(whereSeparator: { $0 == "." || $0 == "-" })
        guard parts.count >= 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        return (major, minor)
    }

    /// `["performance", "performance", "powersave"]` → `performance x2, powersave x1`.
    static func summarize(_ values: [String]) -> String {
        var counts: [String: Int] = [:]
        for v in values { counts[v, default: 0] += 1 }
        return counts.keys.sorted().map { "\($0) x\(counts[$0] ?? 0)" }.joined(separator: ", ")
    }

    static func exitCode(_ rows: [TuneRow]) -> Int32 { rows.contains { $0.status == .fix } ? 1 : 0 }

    /// Fixed-width table, columns sized to content; the fix column is last and never cut.
    static func render(_ rows: [TuneRow]) -> String {
        let header = TuneRow(setting: "SETTING", current: "CURRENT", wanted: "WANTED", status: .info, fix: "FIX")
        let all = [header] + rows
        let w0 = all.map(\.setting.count).max() ?? 0
        let w1 = min(all.map(\.current.count).max() ?? 0, 34)
        let w2 = min(all.map(\.wanted.count).max() ?? 0, 34)
        var out = ""
        for (i, r) in all.enumerated() {
            let status = i == 0 ? "STATUS" : r.status.rawValue
            out += pad(r.setting, w0) + "  " + pad(r.current, w1) + "  " + pad(r.wanted, w2) + "  " + pad(status, 6) + "  " + r.fix
            out += "\n"
        }
        return out
    }

    static func summary(_ rows: [TuneRow], profile: String) -> String {
        let fix = rows.filter { $0.status == .fix }.count
        let warn = rows.filter { $0.status == .warn }.count
        if fix == 0 && warn == 0 { return "all settings match profile '\(profile)'" }
        return "\(fix) important setting\(fix == 1 ? "" : "s") to fix, \(warn) advisory. "
            + "Fix all (root): edge tune apply --profile \(profile)   (preview: --dry-run)"
    }

    private static func pad(_ s: String, _ w: Int) -> String {
        s.count >= w ? s : s + String(repeating: " ", count: w - s.count)
    }
}
