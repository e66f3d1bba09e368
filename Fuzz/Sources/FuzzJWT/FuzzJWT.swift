import EdgeTestSupport

// libFuzzer target: the JWT parser (compact JWS split, base64url, the header
// and claims JSON scanner) through `FuzzEntry.parseJWT`
// (Sources/EdgeTestSupport/FuzzAPI.swift → Edge's Policy/JWTParserCheck.swift).
// The input is the token text. No signature checks (that is OpenSSL's).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)
    if let violation = FuzzEntry.parseJWT(bytes) { fatalError(violation) }
    return 0
}
