import EdgeTestSupport

// libFuzzer target: the HMAC `Authorization` header parser and the `Date`
// (IMF-fixdate) parser through `FuzzEntry.parseHMAC`
// (Sources/EdgeTestSupport/FuzzAPI.swift → Edge's Policy/HMACParser.swift).
// The input is the header value.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHMAC(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)
    if let violation = FuzzEntry.parseHMAC(bytes) { fatalError(violation) }
    return 0
}
