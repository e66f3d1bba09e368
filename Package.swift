// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Edge",
    products: [
        .executable(name: "edge", targets: ["EdgeMain"]),
        // Libraries for the separate packages Fuzz/ (libFuzzer targets) and
        // Benchmarks/Micro (ordo-one/benchmark). The `edge` binary links neither
        // EdgeTestSupport nor anything that only it uses.
        .library(name: "Protocols", targets: ["Protocols"]),
        .library(name: "EdgeTestSupport", targets: ["EdgeTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // Thin C shim over liburing 2.3: macro wrappers, CPU pinning, socket options. No logic.
        .target(
            name: "CIOUring",
            linkerSettings: [.linkedLibrary("uring")]
        ),
        // Module map over Debian's libpcre2-dev (8-bit code units): route regexes.
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        // Module map + macro wrappers over Debian's libssl-dev (OpenSSL 3.0): TLS, JWT signatures.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // Module map over Debian's libcrypt-dev (libxcrypt): crypt_rn for basic-auth password hashes.
        .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
        // Module map over Debian's libnghttp2-dev 1.52: the HTTP/2 session (Edge/HTTP2/ only).
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        // Module maps over Debian's zlib1g-dev, libbrotli-dev, libzstd-dev: response
        // compression (Edge/Compression/ only).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CBrotli", pkgConfig: "libbrotlienc", providers: [.apt(["libbrotli-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // Module map over Debian's libhiredis-dev 0.14 (RESP2, blocking API): shared rate limits' sync thread only.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        // Module map + macro wrappers over Debian's libngtcp2-dev 0.12.1 with its GnuTLS
        // crypto helper (libngtcp2-crypto-gnutls-dev, GnuTLS 3.7.9): QUIC (Edge/HTTP3/ only).
        .systemLibrary(name: "CNGTCP2", pkgConfig: "libngtcp2_crypto_gnutls",
                       providers: [.apt(["libngtcp2-dev", "libngtcp2-crypto-gnutls-dev", "libgnutls28-dev"])]),
        // Module map over Debian's libnghttp3-dev 0.8.0: HTTP/3 framing and QPACK (Edge/HTTP3/ only).
        .systemLibrary(name: "CNGHTTP3", pkgConfig: "libnghttp3", providers: [.apt(["libnghttp3-dev"])]),
        // I/O-free codecs. Never depends on CIOUring.
        .target(
            name: "Protocols",
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        // The runtime and the `edge` command's implementation (a library so tests
        // and microbenchmarks can link it).
        .target(
            name: "Edge",
            dependencies: [
                "CIOUring",
                "CPCRE2",
                "COpenSSL",
                "CCrypt",
                "CNGHTTP2",
                "CZlib",
                "CBrotli",
                "CZstd",
                "CHiredis",
                "CNGTCP2",
                "CNGHTTP3",
                "Protocols",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        // The `edge` binary: only calls EdgeCommand.main().
        .executableTarget(name: "EdgeMain", dependencies: ["Edge"]),
        // Fuzz and microbenchmark shims (FuzzEntry, MicroBench*): the public
        // surface Fuzz/ and Benchmarks/Micro drive Edge through. Reaches Edge's
        // internals through `package` access (same package), never `public`.
        .target(name: "EdgeTestSupport", dependencies: ["Edge", "Protocols", "CNGHTTP2", "CNGTCP2"]),
        .testTarget(name: "ProtocolsTests", dependencies: ["Protocols"]),
        .testTarget(name: "EdgeTests", dependencies: ["Edge"]),
        .testTarget(name: "IntegrationTests", dependencies: [], exclude: ["upstream.py", "l4tools.py", "recorder.py", "faults.py", "sni.py", "jwttool.py", "h2probe.py", "compress_origin.py", "rateload.py", "newconns.py", "h3client.py"]),
    ],
    swiftLanguageModes: [.v6]
)
