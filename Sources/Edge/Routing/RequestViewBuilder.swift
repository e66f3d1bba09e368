import Protocols

// The one builder of the `RequestView` that routing and balancing read: the
// reactor (Proxy/ClientSide.swift, Stream/), the fuzz targets and the
// microbenchmarks (Sources/EdgeTestSupport) all call it, so they split a
// request the same way. Pure pointer and length arithmetic over the parsed
// head: no String, no Array, no allocation.

extension RequestView {
    /// The view of a parsed request head.
    /// - `head`: what `HTTP1Parser.parseRequest` produced for `buffer`.
    /// - `buffer`: the head bytes its ranges point into.
    /// - `headers`: the header-field table it filled (the first
    ///   `head.headerCount` entries are used).
    /// - `clientIP`: the client address as text (for `client_ip` hashing).
    ///
    /// Host: the absolute-form authority if the target is absolute-form,
    /// else the Host field; without the port (`a.com:8080` -> `a.com`) and
    /// with IPv6 brackets kept (`[::1]:8080` -> `[::1]`). Path: the target
    /// (absolute-form: the part after the authority) up to `?`; query: what
    /// follows the `?` (empty if none or nothing follows).
    package static func make(head: RequestHead, buffer: UnsafeRawBufferPointer,
                             headers: UnsafeBufferPointer<HeaderField>, clientIP: UnsafeRawBufferPointer) -> RequestView {
        make(NeutralRequestHead(h1: head, bytes: buffer, fields: headers, scheme: .http), clientIP: clientIP)
    }

    /// The view of a protocol-neutral request head (what every codec produces).
    static func make(_ request: NeutralRequestHead, clientIP: UnsafeRawBufferPointer) -> RequestView {
        let (path, query) = pathAndQuery(request.path, request.bytes)
        return RequestView(host: hostWithoutPort(request.authority, request.bytes), path: path, query: query,
                           method: request.method, head: request.bytes, headers: request.fields, clientIP: clientIP)
    }

    /// The view of a connection that has no request (TCP and UDP streams):
    /// only the client address, for balancing.
    package static func stream(clientIP: UnsafeRawBufferPointer) -> RequestView {
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        return RequestView(host: none, path: none, query: none, method: .other, head: none,
                           headers: UnsafeBufferPointer(start: nil, count: 0), clientIP: clientIP)
    }

    /// `r` inside `buffer`, or nil if empty or out of bounds.
    @inline(__always)
    private static func bytes(_ r: ByteRange, _ buffer: UnsafeRawBufferPointer) -> UnsafeRawPointer? {
        guard r.length > 0, r.offset >= 0, r.end <= buffer.count, let base = buffer.baseAddress else { return nil }
        return base + Int(r.offset)
    }

    /// The target split at the first `?`.
    private static func pathAndQuery(_ target: ByteRange, _ buffer: UnsafeRawBufferPointer)
        -> (path: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer) {
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        guard let p = bytes(target, buffer) else { return (none, none) }
        let length = Int(target.length)
        var n = 0
        while n < length && p.load(fromByteOffset: n, as: UInt8.self) != UInt8(ascii: "?") { n += 1 }
        let query = n + 1 < length ? UnsafeRawBufferPointer(start: p + n + 1, count: length - n - 1) : none
        return (UnsafeRawBufferPointer(start: p, count: n), query)
    }

    /// An authority without its port: `[v6]` keeps its brackets (and drops
    /// what follows `]`); otherwise everything from the last `:` is dropped.
    private static func hostWithoutPort(_ r: ByteRange, _ buffer: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let p = bytes(r, buffer) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        var n = Int(r.length)
        if p.load(as: UInt8.self) == UInt8(ascii: "[") {
            var k = 0
            while k < n && p.load(fromByteOffset: k, as: UInt8.self) != UInt8(ascii: "]") { k += 1 }
            n = min(n, k + 1)
        } else {
            var k = n - 1
            while k >= 0 && p.load(fromByteOffset: k, as: UInt8.self) != UInt8(ascii: ":") { k -= 1 }
            if k >= 0 { n = k }
        }
        return UnsafeRawBufferPointer(start: p, count: n)
    }
}
