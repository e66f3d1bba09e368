import CNoDNS
import EdgeTestSupport
import Glibc

// libFuzzer target: the YAML config loader (`ConfigLoader.parse`), then for
// valid configs `RouteTableCompiler.compile` plus route matches and balancer
// picks, all through `FuzzEntry.loadConfig` (Sources/EdgeTestSupport/FuzzAPI.swift).
// The input is the config text. No files, no sockets: this binary links
// CNoDNS, whose getaddrinfo fails every lookup (checked at start-up).
// FUZZ_CONFIG_VERBOSE=1 .build-fuzz/release/FuzzConfig FILE... prints what
// `edge validate` would say about each file.

@_cdecl("LLVMFuzzerInitialize")
public func fuzzConfigInitialize(_ argc: UnsafeMutablePointer<CInt>?,
                                 _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    // A host-name endpoint must reach the stub, not the resolver.
    let probe = """
        listeners:
          - name: l
            address: 127.0.0.1:8080
            routes: [{match: {path_prefix: /}, cluster: c}]
        clusters:
          - name: c
            endpoints: [stub-probe.invalid:80]
        """
    // (Whether the unresolved name then fails the config is the loader's
    // policy; only the lookup reaching the stub matters here.)
    _ = Array(probe.utf8).withUnsafeBytes { FuzzEntry.loadConfig($0) }
    if edge_fuzz_dns_lookups() == 0 {
        fatalError("FuzzConfig: the host-name endpoint did not reach the getaddrinfo stub")
    }
    return 0
}

let verbose = getenv("FUZZ_CONFIG_VERBOSE") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    let text = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)
    if let violation = FuzzEntry.loadConfig(text).violation { fatalError(violation) }
    // FUZZ_CONFIG_VERBOSE=1 FuzzConfig FILE...: print what `edge validate` would say.
    if verbose { print(FuzzEntry.describeConfig(text)) }
    return 0
}
