/// Bearer-token check of the admin API: every mutating call (anything but
/// GET/HEAD) needs `Authorization: Bearer <token>` once a token is
/// configured, and so does every read with `auth_reads: true`. Pure, so it is
/// unit-tested without sockets.
enum AdminAuth {
    /// nil when the request may go on; otherwise the 401 to send.
    static func check(_ auth: AdminAuthConfig, method: String, head: [UInt8]) -> AdminResponse? {
        guard let token = auth.token else { return nil }
        let reads = method == "GET" || method == "HEAD"
        if reads && !auth.authReads { return nil }
        if let field = header("authorization", in: head) {
            let value = Array(field)  // 0-based, whatever slice the header came from
            if value.count > 7, value[0..<7].map({ $0 | 0x20 }) == Array("bearer ".utf8),
               constantTimeEqual(Array(value[7...]), token) {
                return nil
            }
        }
        return AdminResponse(status: 401, body: "unauthorized: send Authorization: Bearer <admin token>\n",
                             extraHeaders: ["WWW-Authenticate": "Bearer realm=\"edge-admin\""])
    }

    /// Compares every byte whatever the first difference, so timing tells nothing about the token.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            diff |= x ^ y
        }
        return diff == 0 && a.count == b.count
    }

    /// The value of the first header field `name` (lower-case) in a request head, trimmed.
    static func header(_ name: String, in head: [UInt8]) -> ArraySlice<UInt8>? {
        let want = Array(name.utf8)
        var lines = head.split(separator: 10, omittingEmptySubsequences: true).dropFirst()
        while let line = lines.first {
            lines = lines.dropFirst()
            guard let colon = line.firstIndex(of: 58) else { continue }
            let key = line[line.startIndex..<colon]
            guard key.count == want.count, zip(key, want).allSatisfy({ ($0 | 0x20) == $1 }) else { continue }
            var v = line[(colon + 1)...]
            while let f = v.first, f == 32 || f == 9 { v = v.dropFirst() }
            while let l = v.last, l == 32 || l == 9 || l == 13 { v = v.dropLast() }
            return v
        }
        return nil
    }
}
