/// How a profile's wanted value is compared with the live one. Pure.

enum TuneRule: Equatable, Sendable {
    /// Every numeric field of the live value is >= the wanted one (queues,
    /// buffers, table sizes: more is fine, so a host tuned higher passes).
    case atLeast
    /// Every numeric field is <= the wanted one (timeouts, watermarks).
    case atMost
    /// `lo hi` port range at least as wide as the wanted one.
    case rangeWidth
    /// Same value after blank normalisation (switches, names).
    case exact
}

enum TuneStatus: String, Equatable, Sendable {
    /// Live value satisfies the wanted one.
    case ok = "OK"
    /// Differs, and the setting matters for correctness under load: exit 1.
    case fix = "FIX"
    /// Differs, but only costs some performance: reported, exit 0.
    case warn = "WARN"
    /// Not present on this kernel / host (module not loaded, no cpufreq...).
    case notApplicable = "N/A"
    /// Shown for information; nothing to compare.
    case info = "INFO"
}

enum TuneRules {
    static let atLeastKeys: Set<String> = [
        "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.core.netdev_max_backlog",
        "net.core.rmem_max", "net.core.wmem_max", "net.core.rmem_default", "net.core.wmem_default",
        "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_mem", "net.core.optmem_max",
        "fs.file-max", "fs.nr_open", "net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_max_orphans",
        "net.netfilter.nf_conntrack_max", "net.core.busy_poll", "net.core.busy_read",
        "net.core.netdev_budget",
    ]
    static let atMostKeys: Set<String> = [
        "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_notsent_lowat", "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "vm.swappiness",
    ]
    static let rangeKeys: Set<String> = ["net.ipv4.ip_local_port_range"]

    /// Settings whose mismatch only costs some speed (WARN, exit 0). Any
    /// other key from a profile is important (FIX, exit 1): dropped SYNs,
    /// exhausted ports or descriptors turn into errors under load.
    static let advisoryKeys: Set<String> = [
        "net.core.busy_poll", "net.core.busy_read", "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat", "net.core.rmem_max", "net.core.wmem_max",
        "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.core.netdev_max_backlog",
        "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_max_orphans", "vm.swappiness",
    ]

    static func rule(for key: String) -> TuneRule {
        if atLeastKeys.contains(key) { return .atLeast }
        if atMostKeys.contains(key) { return .atMost }
        if rangeKeys.contains(key) { return .rangeWidth }
        return .exact
    }

    static func isImportant(_ key: String) -> Bool { !advisoryKeys.contains(key) }
}

enum TuneCompare {
    /// Whether `current` satisfies `wanted` under `rule`. Numeric rules fall
    /// back to exact comparison when either side is not all numbers, and fail
    /// when the field counts differ.
    static func satisfies(_ rule: TuneRule, wanted: String, current: String) -> Bool {
        let w = TuneText.fields(wanted), c = TuneText.fields(current)
        switch rule {
        case .exact:
            return w == c
        case .atLeast, .atMost:
            guard let wn = numbers(w), let cn = numbers(c) else { return w == c }
            guard wn.count == cn.count else { return false }
            return zip(cn, wn).allSatisfy { rule == .atLeast ? $0 >= $1 : $0 <= $1 }
        case .rangeWidth:
            guard let wn = numbers(w), let cn = numbers(c), wn.count == 2, cn.count == 2 else { return w == c }
            guard cn[0] <= cn[1] else { return false }
            return cn[1] - cn[0] >= (wn[1] > wn[0] ? wn[1] - wn[0] : 0)
        }
    }

    /// The value to write so the setting passes without lowering anything
    /// the host already has higher (for `>=`) or lower (for `<=`): per field,
    /// the better of live and wanted. Exact and range rules write the wanted value.
    static func valueToApply(_ rule: TuneRule, wanted: String, current: String?) -> String {
        let w = TuneText.fields(wanted)
        guard let current, let wn = numbers(w), let cn = numbers(TuneText.fields(current)), wn.count == cn.count else {
            return w.joined(separator: " ")
        }
        switch rule {
        case .atLeast: return zip(cn, wn).map { String(max($0, $1)) }.joined(separator: " ")
        case .atMost: return zip(cn, wn).map { String(min($0, $1)) }.joined(separator: " ")
        case .exact, .rangeWidth: return w.joined(separator: " ")
        }
    }

    /// How the wanted value is shown in the table: `>= 65535`, `<= 15`,
    /// `10000 65535 (width >= 55535)`, `1`.
    static func describe(_ rule: TuneRule, wanted: String) -> String {
        switch rule {
        case .exact: return wanted
        case .atLeast: return ">= " + wanted
        case .atMost: return "<= " + wanted
        case .rangeWidth:
            guard let n = numbers(TuneText.fields(wanted)), n.count == 2, n[1] >= n[0] else { return wanted }
            return "\(wanted) (width >= \(n[1] - n[0]))"
        }
    }

    /// Status of one profile setting (`current == nil`: key absent here).
    static func status(key: String, wanted: String, current: String?) -> TuneStatus {
        guard let current else { return .notApplicable }
        if satisfies(TuneRules.rule(for: key), wanted: wanted, current: current) { return .ok }
        return TuneRules.isImportant(key) ? .fix : .warn
    }

    static func numbers(_ fields: [String]) -> [UInt64]? {
        var out: [UInt64] = []
        out.reserveCapacity(fields.count)
        for f in fields {
            guard let n = UInt64(f) else { return nil }
            out.append(n)
        }
        return out.isEmpty ? nil : out
    }
}
