import EdgeTestSupport

// libFuzzer target: HTTP/2 session input (frames after the client preface)
// through nghttp2 with Edge's options and its h2 → h1 field rules
// (EdgeTestSupport/H2FuzzAPI.swift). A broken invariant is a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP2(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    if let v = H2FuzzEntry.session(UnsafeRawBufferPointer(start: data, count: size)) { fatalError(v) }
    return 0
}
