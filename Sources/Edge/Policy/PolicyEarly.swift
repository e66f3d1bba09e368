import Protocols

/// Early phase: IP allow/deny rules and CORS (preflights answered here,
/// actual requests remember the matched origin for the response phase).
enum CORSEarly { case pass, preflight, originDenied, methodDenied }

extension Reactor {
    static let originHeader = StaticBytes.literal("origin")
    static let requestMethodHeader = StaticBytes.literal("access-control-request-method")

    /// Deny rules win; with allow rules, the address must match one. No address → denied.
    func ipAllowed(_ c: Int32, _ hot: PolicyHot, _ p: Int) -> Bool {
        guard p >= 0, p < hot.ipPolicies.count else { return true }
        let rule = hot.ipPolicies[p]
        guard let (hi, lo) = clientAddress128(c) else { return false }
        func matches(_ first: Int32, _ count: Int32) -> Bool {
            var i = Int(first)
            let end = i + Int(count)
            while i < end && i < hot.cidrs.count {
                let b = hot.cidrs[i]
                if hi & b.maskHigh == b.high && lo & b.maskLow == b.low { return true }
                i += 1
            }
            return false
        }
        if matches(rule.firstDeny, rule.denyCount) { return false }
        return rule.allowCount == 0 || matches(rule.firstAllow, rule.allowCount)
    }

    /// Origin matching (exact, case-sensitive as browsers send it). A request
    /// without Origin is not a CORS request and passes untouched.
    func corsEarly(_ xi: Int, _ hot: PolicyHot, _ p: Int, _ req: RequestView) -> CORSEarly {
        guard p >= 0, p < hot.cors.count, let origin = policyHeader(req, Reactor.originHeader) else { return .pass }
        let cors = hot.cors[p]
        var matched: Int32 = -1
        var i = Int(cors.firstOrigin)
        while i < Int(cors.firstOrigin + cors.originCount) && i < hot.corsStrings.count {
            if PolicyHash.constantTimeEqual(hot.corsStrings[i].buffer, origin) { matched = Int32(i); break }
            i += 1
        }
        if matched < 0 && cors.anyOrigin { matched = PolicyExchangeState.anyOrigin }
        let preflight = req.method == .options
        let requested = preflight ? policyHeader(req, Reactor.requestMethodHeader) : nil
        if matched == -1 {
            // Per the Fetch spec an actual request just gets no CORS headers (the
            // browser blocks it); a preflight from a foreign origin is refused here.
            return requested != nil ? .originDenied : .pass
        }
        exchanges[xi].policy.corsOrigin = matched
        guard let requested else { return .pass }
        var m = Int(cors.firstMethod)
        while m < Int(cors.firstMethod + cors.methodCount) && m < hot.corsStrings.count {
            if PolicyHash.constantTimeEqual(hot.corsStrings[m].buffer, requested) { return .preflight }
            m += 1
        }
        return .methodDenied
    }
}

extension StaticBytes {
    /// Bytes of a string literal (lives for the whole program).
    static func literal(_ s: StaticString) -> StaticBytes {
        StaticBytes(base: UnsafeRawPointer(s.utf8Start), count: s.utf8CodeUnitCount)
    }
}
