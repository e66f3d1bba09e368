import EdgeTestSupport

// libFuzzer target: QUIC server packet input (datagrams with 2-byte length
// prefixes) through ngtcp2_pkt_decode_version_cid, ngtcp2_accept and a server
// connection's read_pkt/write path (EdgeTestSupport/QUICFuzzAPI.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQUIC(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    if let v = QUICFuzzEntry.datagrams(UnsafeRawBufferPointer(start: data, count: size)) { fatalError(v) }
    return 0
}
