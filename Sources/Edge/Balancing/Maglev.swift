/// Maglev consistent-hash lookup tables (Eisenbud et al., "Maglev: A Fast and
/// Reliable Software Network Load Balancer", NSDI 2016, §3.4). Built on the
/// control thread when a snapshot is compiled; reactors only index into them.
///
/// Each endpoint walks its own permutation of the `size` slots (offset + j·skip
/// mod size, both derived from a hash of its name) and endpoints take turns
/// claiming their next free slot until the table is full. Every endpoint ends
/// up with ≈ size·wᵢ/Σw slots, and removing one endpoint mostly frees only its
/// own slots, so ≈ 1/N of keys move.
///
/// Weights use the variant Envoy ships: in round `k` an endpoint takes a turn
/// only once `k·wᵢ ≥ targetᵢ`, and each turn raises `targetᵢ` by `max(w)`. The
/// heaviest endpoint takes a turn every round, one of half its weight every
/// other round, and so on — slot shares are proportional to weight while the
/// permutations (and so the minimal-disruption property) stay unchanged.
enum Maglev {
    /// The paper's recommended size for up to a few hundred endpoints per cluster
    /// (≥ 100·N keeps per-endpoint shares within ~1% of their weight).
    static let defaultSize = 65537

    /// Lookup table for `names` (stable endpoint identities, e.g. the address
    /// text as written). Entries are endpoint offsets `0..<names.count`.
    /// Deterministic: the same names and weights give the same table in every
    /// process. `weights` missing or < 1 count as 1. `size` should be prime and
    /// > `names.count`; any other value is rounded up to the next prime that is,
    /// so the result's `count` is the size to use (callers store `table.count`).
    /// Returns [] when `names` is empty.
    static func table(names: [String], weights: [Int], size: Int = defaultSize) -> [Int32] {
        let n = names.count
        guard n > 0 else { return [] }
        // Capped so a silly size cannot exhaust memory (2^24 slots = 64 MiB).
        let m = nextPrime(atLeast: min(max(size, n + 1, 2), 1 << 24))
        var offset = [Int](repeating: 0, count: n)
        var skip = [Int](repeating: 0, count: n)
        var weight = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let (h1, h2) = Array(names[i].utf8).withUnsafeBytes {
                (HashKey.hash($0, seed: 0x6D61_676C_6576_3031), HashKey.hash($0, seed: 0x736B_6970_7365_6564))
            }
            offset[i] = Int(h1 % UInt64(m))
            skip[i] = Int(h2 % UInt64(m - 1)) + 1
            if i < weights.count { weight[i] = min(max(1, weights[i]), 1_000_000) }
        }
        let maxWeight = weight.max() ?? 1
        var pos = offset                              // each endpoint's next permutation slot
        var target = [Int](repeating: 0, count: n)
        var entry = [Int32](repeating: -1, count: m)
        var filled = 0
        var round = 1
        while filled < m {
            for i in 0..<n where filled < m {
                if round * weight[i] < target[i] { continue }
                target[i] += maxWeight
                // Next unclaimed slot in i's permutation; m prime and 1 ≤ skip < m
                // make the permutation visit every slot, so this terminates.
                var slot = pos[i]
                while entry[slot] >= 0 { slot = (slot + skip[i]) % m }
                entry[slot] = Int32(i)
                pos[i] = (slot + skip[i]) % m
                filled += 1
            }
            round += 1
        }
        return entry
    }

    /// Smallest prime ≥ `n` (trial division; runs once per table at compile time).
    static func nextPrime(atLeast n: Int) -> Int {
        var c = max(n, 2)
        while !isPrime(c) { c += 1 }
        return c
    }

    static func isPrime(_ n: Int) -> Bool {
        if n < 2 { return false }
        if n < 4 { return true }
        if n % 2 == 0 || n % 3 == 0 { return false }
        var d = 5
        while d * d <= n {
            if n % d == 0 || n % (d + 2) == 0 { return false }
            d += 6
        }
        return true
    }
}
