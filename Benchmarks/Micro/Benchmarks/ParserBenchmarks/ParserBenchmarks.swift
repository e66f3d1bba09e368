// HTTP/1.1 codec microbenchmarks (Sources/Protocols/HTTP1).
//
//   HTTP1Parse/GET-400B      a typical API GET head, exactly 400 bytes
//   HTTP1Parse/browser-1536B a browser-like navigation head, exactly 1,536 bytes
//   ChunkedDecode/64KiB      a 64 KiB body in 4 KiB chunks, fed in 4 KiB reads
//
// Inputs are built once in `setup` into buffers that live for the whole
// benchmark, so the measured loop only calls the codec: allocations per
// operation must be 0. Each iteration runs `scalingFactor` (1,000)
// operations; the tool prints per-operation values for the metrics marked
// `*` (pass `--scale` for per-iteration ones). "MB/s" (custom metric, 10^6
// bytes per second of input for the parser, of decoded payload for the
// chunked decoder) is timed around the inner loop only.

import Benchmark
import Glibc
import Protocols

let benchmarks: @Sendable () -> Void = {
    let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal, megabytesPerSecond]

    for input in ParseInput.all {
        Benchmark(
            "HTTP1Parse/\(input.name)",
            configuration: .init(metrics: metrics, warmupIterations: 5, scalingFactor: .kilo,
                                 maxDuration: .seconds(1), maxIterations: 2_000)
        ) { benchmark, state in
            let limits = HTTP1Limits()
            var head = RequestHead()
            var consumed = 0
            let start = monotonicNs()
            for _ in benchmark.scaledIterations {
                _ = HTTP1Parser.parseRequest(state.buffer, limits: limits, head: &head, headers: state.headers)
                consumed &+= head.headLength
            }
            let ns = monotonicNs() - start
            benchmark.stopMeasurement()
            blackHole(consumed)
            benchmark.measurement(megabytesPerSecond, Int(Double(consumed) * 1_000 / Double(max(ns, 1))))
        } setup: {
            try ParseState(input)
        }
    }

    Benchmark(
        "ChunkedDecode/64KiB-in-4KiB-chunks",
        configuration: .init(metrics: metrics, warmupIterations: 5, scalingFactor: .kilo,
                             maxDuration: .seconds(1), maxIterations: 2_000)
    ) { benchmark, state in
        var payload = 0
        let start = monotonicNs()
        for _ in benchmark.scaledIterations {
            payload &+= state.decodeOnce()
        }
        let ns = monotonicNs() - start
        benchmark.stopMeasurement()
        blackHole(payload)
        benchmark.measurement(megabytesPerSecond, Int(Double(payload) * 1_000 / Double(max(ns, 1))))
    } setup: {
        try ChunkedState(bodyBytes: 64 * 1024, chunkBytes: 4096, readBytes: 4096)
    }
}

// MARK: - Inputs

struct ParseInput: Sendable {
    var name: String
    var bytes: [UInt8]

    static let all = [
        ParseInput(name: "GET-400B", bytes: head(
            "GET /api/v1/users/12345/orders?limit=20&offset=40 HTTP/1.1",
            [
                "Host: api.example.com",
                "User-Agent: okhttp/4.12.0",
                "Accept: application/json",
                "Accept-Encoding: gzip, deflate",
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl",
                "X-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736",
            ],
            padding: "X-Client-Version", total: 400)),
        ParseInput(name: "browser-1536B", bytes: head(
            "GET /catalog/shoes/running?color=blue&size=42&sort=price_asc HTTP/1.1",
            [
                "Host: www.example-shop.com",
                "Connection: keep-alive",
                "sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"",
                "sec-ch-ua-mobile: ?0",
                "sec-ch-ua-platform: \"Linux\"",
                "Upgrade-Insecure-Requests: 1",
                "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
                "Sec-Fetch-Site: same-origin",
                "Sec-Fetch-Mode: navigate",
                "Sec-Fetch-User: ?1",
                "Sec-Fetch-Dest: document",
                "Referer: https://www.example-shop.com/catalog/shoes?color=blue",
                "Accept-Encoding: gzip, deflate, br, zstd",
                "Accept-Language: en-US,en;q=0.9,de;q=0.8,fr;q=0.7",
                "X-Forwarded-For: 203.0.113.7",
            ],
            // A session/analytics cookie fills the head to the target size.
            padding: "Cookie", total: 1536)),
    ]

    /// Request line + fields + one `padding` field sized so the whole head
    /// (through the blank line) is exactly `total` bytes.
    static func head(_ requestLine: String, _ fields: [String], padding: String, total: Int) -> [UInt8] {
        var text = requestLine + "\r\n" + fields.map { $0 + "\r\n" }.joined()
        let fixed = text.utf8.count + padding.utf8.count + 2 + 2 + 2   // ": ", CRLF, blank line
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789=".utf8)
        let fill = (0..<max(1, total - fixed)).map { alphabet[($0 * 7) % alphabet.count] }
        text += padding + ": " + String(decoding: fill, as: UTF8.self) + "\r\n\r\n"
        return Array(text.utf8)
    }
}

struct SetupError: Error, CustomStringConvertible {
    var description: String
}

/// One head in a buffer that lives as long as the benchmark, plus the header table.
final class ParseState {
    let buffer: UnsafeRawBufferPointer
    let headers: UnsafeMutableBufferPointer<HeaderField>

    init(_ input: ParseInput) throws {
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: input.bytes.count, alignment: 64)
        raw.copyBytes(from: input.bytes)
        buffer = UnsafeRawBufferPointer(raw)
        headers = .allocate(capacity: 100)
        headers.initialize(repeating: .empty)
        var head = RequestHead()
        let status = HTTP1Parser.parseRequest(buffer, limits: HTTP1Limits(), head: &head, headers: headers)
        guard status == .complete, head.headLength == input.bytes.count else {
            throw SetupError(description: "\(input.name): parse gave \(status), headLength \(head.headLength) of \(input.bytes.count)")
        }
    }

    deinit {
        buffer.deallocate(); headers.deallocate()
    }
}

/// A chunked body on the wire (size lines in hex, no extensions, no
/// trailers), cut into fixed-size reads as a socket would deliver it.
final class ChunkedState {
    let wire: UnsafeRawBufferPointer
    let readBytes: Int
    let bodyBytes: Int

    init(bodyBytes: Int, chunkBytes: Int, readBytes: Int) throws {
        var bytes: [UInt8] = []
        var left = bodyBytes, n = 0
        while left > 0 {
            let size = min(chunkBytes, left)
            bytes += Array((String(size, radix: 16) + "\r\n").utf8)
            bytes += (0..<size).map { UInt8(truncatingIfNeeded: 0x61 + (n + $0) % 26) }
            bytes += [13, 10]
            left -= size; n += size
        }
        bytes += Array("0\r\n\r\n".utf8)
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 64)
        raw.copyBytes(from: bytes)
        wire = UnsafeRawBufferPointer(raw)
        self.readBytes = readBytes
        self.bodyBytes = bodyBytes
        let got = decodeOnce()
        guard got == bodyBytes else {
            throw SetupError(description: "chunked: decoded \(got) payload bytes, want \(bodyBytes)")
        }
    }

    deinit { wire.deallocate() }

    /// Decodes the whole body once with a fresh decoder, one read at a time;
    /// returns the payload byte count (-1 on a decoder error).
    @inline(__always)
    func decodeOnce() -> Int {
        var decoder = ChunkedDecoder()
        var payload = 0
        var offset = 0
        while offset < wire.count {
            let read = UnsafeRawBufferPointer(rebasing: wire[offset..<min(offset + readBytes, wire.count)])
            offset += read.count
            var i = 0
            feeding: while true {
                switch decoder.step(read, at: i) {
                case .data(let start, let end): payload &+= end &- start; i = end
                case .framing(let end): i = end
                case .needMore: break feeding
                case .done: return payload
                case .error: return -1
                }
            }
        }
        return payload
    }
}

@inline(__always)
func monotonicNs() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}
