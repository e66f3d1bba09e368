/// Turns the Prometheus text exposition into OpenMetrics 1.0 (asked for with
/// `Accept: application/openmetrics-text`): counter families are named
/// without their `_total` suffix in HELP/TYPE, and the body ends with `# EOF`.
enum OpenMetrics {
    static let contentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

    static func convert(_ text: String) -> String {
        var counters = Set<String>()
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") && line.hasSuffix(" counter") {
            let parts = line.split(separator: " ")
            if parts.count == 4 { counters.insert(String(parts[2])) }
        }
        var out = ""
        var seen = Set<String>()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                var parts = line.split(separator: " ", maxSplits: 3).map(String.init)
                guard parts.count >= 3 else { continue }
                let name = parts[2]
                if line.hasPrefix("# TYPE ") {
                    // A family may be declared once; the legacy duplicates are skipped.
                    if seen.contains(name) { continue }
                    seen.insert(name)
                }
                if counters.contains(name) && name.hasSuffix("_total") { parts[2] = String(name.dropLast(6)) }
                out += parts.joined(separator: " ") + "\n"
            } else if !line.hasPrefix("#") {
                out += line + "\n"
            }
        }
        return out + "# EOF\n"
    }
}
