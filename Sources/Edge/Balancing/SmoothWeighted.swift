/// nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every
/// candidate adds its weight to its `current`, the largest `current` wins and
/// pays back the total. Over Σw picks each endpoint is chosen exactly wᵢ times,
/// interleaved rather than in bursts ({5,1,1} → a a b a c a a).
enum SmoothWeighted {
    /// One step over endpoints `first..<first+count`. `eligible(i)` filters
    /// candidates (least_connections passes "is tied for fewest"); ineligible
    /// endpoints keep their `current`. Returns the absolute index, or -1 when
    /// none is eligible. O(count), no allocation.
    @inline(__always)
    static func pick(first: Int, count: Int, weights: UnsafePointer<Int64>, current: UnsafeMutablePointer<Int64>,
                     eligible: (Int) -> Bool) -> Int {
        var best = -1
        var total: Int64 = 0
        var i = first
        let end = first &+ count
        while i < end {
            if eligible(i) {
                let c = current[i] &+ weights[i]
                current[i] = c
                total &+= weights[i]
                if best < 0 || c > current[best] { best = i }
            }
            i &+= 1
        }
        if best >= 0 { current[best] &-= total }
        return best
    }
}
