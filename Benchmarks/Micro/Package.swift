// swift-tools-version:6.1
// Microbenchmarks for Edge (ordo-one/benchmark). Run from the repository root
// with `make micro`, or here with:
//   swift package --allow-writing-to-package-directory benchmark
// A separate package so the main build and `swift test` never fetch or build
// the benchmark framework.
import PackageDescription

let package = Package(
    name: "EdgeMicro",
    dependencies: [
        // The Edge repository root. Named, so the product references below do
        // not depend on what the checkout's directory is called.
        .package(name: "Edge", path: "../.."),
        // Only the MallocInterposer trait: the default traits also pull in
        // ordo-one/swift-runtime-interposer (ARC counting on Swift 6.3), which
        // this machine's package mirror does not carry.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // HTTP1Parse, ChunkedDecode: the I/O-free codecs in Sources/Protocols.
        .executableTarget(
            name: "ParserBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Protocols", package: "Edge"),
            ],
            path: "Benchmarks/ParserBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // RouteMatch10, RouteMatch10k, Balancer/*: Edge's RouteTable and
        // ReactorBalancer, driven through Sources/EdgeTestSupport/MicroBenchAPI.swift.
        .executableTarget(
            name: "RoutingBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "EdgeTestSupport", package: "Edge"),
            ],
            path: "Benchmarks/RoutingBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
