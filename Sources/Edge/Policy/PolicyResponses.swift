import Protocols

/// What policies write: local answers (401/403/429/503, CORS preflights) and
/// the response-phase headers of proxied responses (CORS, security headers,
/// RateLimit-*), plus the identity header sent upstream. No allocation.
extension Reactor {
    static let consumerHeader = StaticBytes.literal("x-consumer")

    func respondPolicy(_ c: Int32, _ d: PolicyDenial, _ hot: PolicyHot, _ chain: PolicyChain, consume: Int) {
        let xi = Int(socks[Int(c)].exchange)
        let status: UInt16, reason: StaticString, cause: StaticString
        switch d {
        case .ipForbidden: (status, reason, cause) = (403, "client address not allowed", "ip_forbidden")
        case .corsOrigin: (status, reason, cause) = (403, "origin not allowed", "cors_origin_forbidden")
        case .corsMethod: (status, reason, cause) = (403, "method not allowed by CORS policy", "cors_method_forbidden")
        case .authRequired: (status, reason, cause) = (401, "credentials required", "auth_required")
        case .authInvalid: (status, reason, cause) = (401, "invalid credentials", "auth_invalid")
        case .authBusy: (status, reason, cause) = (503, "too many uncached credential checks, retry", "auth_busy")
        case .forbidden: (status, reason, cause) = (403, "consumer not allowed on this route", "forbidden")
        case .rateLimited: (status, reason, cause) = (429, "rate limit exceeded", "rate_limited")
        case .rateLimitUnavailable: (status, reason, cause) = (503, "rate limit store unreachable", "rate_limit_unavailable")
        }
        decideLocalKeepAlive(c)
        let id = outBuffer(c)
        if id < 0 { closeSock(c); return }
        let phrase = reasonPhrase(status)
        var w = headWriter(id)
        w.appendStatusLine(status)
        w.append("Content-Type: text/plain\r\nContent-Length: ")
        w.appendDecimal(UInt64(phrase.utf8CodeUnitCount + 2 + reason.utf8CodeUnitCount + 1))
        w.append("\r\nx-edge-error: "); w.append(cause); w.append("\r\n")
        switch d {
        case .authRequired, .authInvalid: w.append(chain.challenge.buffer)
        case .authBusy, .rateLimitUnavailable: w.append("Retry-After: 1\r\n")
        case .rateLimited(let wait, let limit):
            w.append("Retry-After: "); w.appendDecimal(UInt64(max(1, wait)))
            w.append("\r\nRateLimit-Limit: "); w.appendDecimal(UInt64(max(0, limit)))
            w.append("\r\nRateLimit-Remaining: 0\r\nRateLimit-Reset: "); w.appendDecimal(UInt64(max(1, wait)))
            w.append("\r\n")
        default: break
        }
        appendCORSResponseHeaders(&w, xi, hot, chain)
        w.append(exchanges[xi].keepAlive ? "" : "Connection: close\r\n")
        w.append("\r\n")
        if exchanges[xi].method != .head { w.append(phrase); w.append(": "); w.append(reason); w.append("\n") }
        guard commitHead(c, id, w) else { closeSock(c); return }
        stats.bump(stats.clientErrors)
        finishLocal(c, consume: consume)
    }

    /// 204 to an allowed preflight: allowed origin, methods, headers, credentials, max-age.
    func respondPreflight(_ c: Int32, _ hot: PolicyHot, _ p: Int, consume: Int) {
        let xi = Int(socks[Int(c)].exchange)
        guard p >= 0, p < hot.cors.count else { return }
        decideLocalKeepAlive(c)
        let id = outBuffer(c)
        if id < 0 { closeSock(c); return }
        var w = headWriter(id)
        w.appendStatusLine(204)
        appendAllowOrigin(&w, xi, hot)
        w.append(hot.cors[p].preflightLines.buffer)
        w.append("Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n")
        w.append(exchanges[xi].keepAlive ? "" : "Connection: close\r\n")
        w.append("\r\n")
        guard commitHead(c, id, w) else { closeSock(c); return }
        finishLocal(c, consume: consume)
    }

    private func appendAllowOrigin(_ w: inout HeadWriter, _ xi: Int, _ hot: PolicyHot) {
        let o = exchanges[xi].policy.corsOrigin
        if o == PolicyExchangeState.anyOrigin { w.append("Access-Control-Allow-Origin: *\r\n") }
        else if o >= 0 && Int(o) < hot.corsStrings.count {
            w.append("Access-Control-Allow-Origin: "); w.append(hot.corsStrings[Int(o)].buffer); w.append("\r\n")
        }
    }

    private func appendCORSResponseHeaders(_ w: inout HeadWriter, _ xi: Int, _ hot: PolicyHot, _ chain: PolicyChain) {
        guard chain.cors >= 0, Int(chain.cors) < hot.cors.count else { return }
        if exchanges[xi].policy.corsOrigin != -1 {
            appendAllowOrigin(&w, xi, hot)
            w.append(hot.cors[Int(chain.cors)].responseLines.buffer)
        }
        w.append("Vary: Origin\r\n")
    }

    /// Response phase of a proxied response: CORS, security headers, RateLimit-*.
    func appendPolicyResponseHeaders(_ w: inout HeadWriter, _ xi: Int) {
        let r = Int(exchanges[xi].route)
        guard let hp = policyHot(exchanges[xi].view), r >= 0, r < hp.pointee.chains.count else { return }
        let hot = hp.pointee
        let chain = hot.chains[r]
        appendCORSResponseHeaders(&w, xi, hot, chain)
        if chain.security >= 0 && Int(chain.security) < hot.security.count { w.append(hot.security[Int(chain.security)].buffer) }
        let st = exchanges[xi].policy
        if st.rateLimit >= 0 && Int(st.rateLimit) < hot.rateLimits.count {
            w.append("RateLimit-Limit: "); w.appendDecimal(UInt64(max(0, hot.rateLimits[Int(st.rateLimit)].limit)))
            w.append("\r\nRateLimit-Remaining: "); w.appendDecimal(UInt64(max(0, st.rateRemaining)))
            w.append("\r\nRateLimit-Reset: "); w.appendDecimal(UInt64(max(0, st.rateResetSeconds)))
            w.append("\r\n")
        }
    }

    /// Request head to the upstream: client-sent copies of identity headers are dropped.
    @inline(__always) func isPolicyIdentityHeader(_ xi: Int, _ buf: UnsafeRawBufferPointer, _ name: ByteRange) -> Bool {
        guard let hp = policyHot(exchanges[xi].view), name.offset >= 0, name.end <= buf.count else { return false }
        for want in hp.pointee.identityHeaders where Int(name.length) == want.count {
            guard let base = want.base else { continue }
            var same = true
            for j in 0..<want.count {
                var ch = buf[Int(name.offset) + j]
                if ch >= 0x41 && ch <= 0x5A { ch |= 0x20 }
                if ch != base.load(fromByteOffset: j, as: UInt8.self) { same = false; break }
            }
            if same { return true }
        }
        return false
    }

    /// `X-Consumer: <name>` and forwarded JWT claims for an authenticated request.
    func appendPolicyRequestHeaders(_ w: inout HeadWriter, _ xi: Int) {
        guard let hp = policyHot(exchanges[xi].view) else { return }
        let consumer = Int(exchanges[xi].policy.consumer)
        if consumer >= 0 && consumer < hp.pointee.consumers.count {
            w.append("X-Consumer: "); w.append(hp.pointee.consumers[consumer].name.buffer); w.append("\r\n")
        }
        appendJWTClaimHeaders(&w, xi, hp.pointee)
    }
}
