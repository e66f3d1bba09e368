import Protocols

/// A request head as the exchange layer reads it, whatever protocol carried it:
/// method, scheme, authority, path, framing, fields. HTTP/1.1 fills it from its
/// parsed head (`init(h1:)`); the HTTP/2 and HTTP/3 glue will fill it from
/// pseudo-headers (`:method`, `:scheme`, `:authority`, `:path`) and their field
/// block. Every range points into `bytes`. Plain data: building one allocates nothing.
struct NeutralRequestHead {
    enum Scheme: UInt8 { case http, https }

    /// The bytes every range below points into (h1: the head buffer).
    var bytes: UnsafeRawBufferPointer
    var method: HTTPMethod
    var scheme: Scheme
    /// Target authority: absolute-form authority or the Host field, port included.
    var authority: ByteRange
    /// Origin-form target: path and query (`/a/b?x=1`); absolute-form targets
    /// contribute the part after their authority.
    var path: ByteRange
    var framing: BodyFraming
    var fields: UnsafeBufferPointer<HeaderField>
    var expectContinue: Bool
    var wantsUpgrade: Bool
    /// HTTP/1.x version and persistence; multiplexed codecs report 1 / true.
    var versionMinor: UInt8
    var keepAlive: Bool
    /// Length of the head on the wire (h1: bytes to consume from the input).
    var headLength: Int

    /// The HTTP/1.1 parser's head over `bytes`, with its field table.
    init(h1 head: RequestHead, bytes: UnsafeRawBufferPointer, fields table: UnsafeBufferPointer<HeaderField>, scheme: Scheme) {
        let fields = UnsafeBufferPointer(rebasing: table[0..<max(0, min(head.headerCount, table.count))])
        self.bytes = bytes
        method = head.methodKind
        self.scheme = scheme
        if head.isAbsoluteForm { authority = head.absoluteAuthority }
        else if head.hostIndex >= 0 && head.hostIndex < fields.count { authority = fields[head.hostIndex].value }
        else { authority = .empty }
        path = head.isAbsoluteForm ? head.absolutePath : head.target
        framing = head.framing
        self.fields = fields
        expectContinue = head.expectContinue
        wantsUpgrade = head.wantsUpgrade
        versionMinor = head.versionMinor
        keepAlive = head.keepAlive
        headLength = head.headLength
    }
}
