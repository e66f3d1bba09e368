// swift-tools-version:6.1
// libFuzzer targets for Edge's parsers and config loader. A separate package
// so the root `swift build` / `swift test` never see it. Build and run with
// scripts/fuzz (from the repository root):
//   scripts/fuzz build                 # swift build --sanitize fuzzer --sanitize address
//   scripts/fuzz run --seconds 60 request
//   scripts/fuzz smoke                  # every target ~10 s (part of `make test`)
// Each executable is a libFuzzer binary (libFuzzer supplies main); seeds are
// in corpus/<target>/, token dictionaries in dict/.
import PackageDescription

let package = Package(
    name: "EdgeFuzz",
    dependencies: [
        // The Edge repository root, named so product references below do not
        // depend on the checkout's directory name.
        .package(name: "Edge", path: ".."),
    ],
    targets: [
        // Invariant checks shared by the targets (fatalError on violation).
        .target(name: "FuzzSupport", dependencies: [.product(name: "Protocols", package: "Edge")]),
        // getaddrinfo stub: the config loader resolves endpoint host names;
        // under fuzzing every lookup fails locally instead of reaching DNS.
        .target(name: "CNoDNS"),
        .executableTarget(name: "FuzzRequest", dependencies: ["FuzzSupport", .product(name: "Protocols", package: "Edge")]),
        .executableTarget(name: "FuzzResponse", dependencies: ["FuzzSupport", .product(name: "Protocols", package: "Edge")]),
        .executableTarget(name: "FuzzChunked", dependencies: ["FuzzSupport", .product(name: "Protocols", package: "Edge")]),
        .executableTarget(name: "FuzzProxyProtocol", dependencies: ["FuzzSupport", .product(name: "Protocols", package: "Edge")]),
        .executableTarget(name: "FuzzClientHello", dependencies: ["FuzzSupport", .product(name: "Protocols", package: "Edge")]),
        .executableTarget(name: "FuzzConfig", dependencies: ["CNoDNS", .product(name: "EdgeTestSupport", package: "Edge")]),
        .executableTarget(name: "FuzzJWT", dependencies: [.product(name: "EdgeTestSupport", package: "Edge")]),
        .executableTarget(name: "FuzzHMAC", dependencies: [.product(name: "EdgeTestSupport", package: "Edge")]),
        .executableTarget(name: "FuzzHTTP2", dependencies: [.product(name: "EdgeTestSupport", package: "Edge")]),
        .executableTarget(name: "FuzzDTLS", dependencies: [.product(name: "EdgeTestSupport", package: "Edge")]),
        .executableTarget(name: "FuzzQUIC", dependencies: [.product(name: "EdgeTestSupport", package: "Edge")]),
    ],
    swiftLanguageModes: [.v6]
)
