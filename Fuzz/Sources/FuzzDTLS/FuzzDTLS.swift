import EdgeTestSupport

// libFuzzer target: the DTLS ClientHello path through `FuzzEntry.dtlsDatagrams`
// (Sources/EdgeTestSupport/FuzzAPI.swift → Edge's Transport/DTLS/DTLSFuzzTarget.swift):
// datagrams into the stateless cookie exchange (DTLSv1_listen on the listen
// SSL, HMAC cookies, the datagram BIO) or straight into a DTLS 1.2 server SSL.
// Input: byte 0 picks the path (bit 0: listen path, bit 1: IPv6 peer), then
// datagrams as a 2-byte big-endian length and the bytes. Checks: no trap or
// memory error; at most one HelloVerifyRequest per datagram; no session
// before a valid cookie.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDTLS(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)
    if let violation = FuzzEntry.dtlsDatagrams(bytes) { fatalError(violation) }
    return 0
}
