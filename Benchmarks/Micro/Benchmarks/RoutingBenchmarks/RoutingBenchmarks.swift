// Route matching and endpoint picking microbenchmarks (Sources/Edge/Routing,
// Sources/Edge/Balancing), driven through Sources/EdgeTestSupport/MicroBenchAPI.swift.
//
//   RouteMatch10, RouteMatch10k   RouteTable.match on tables of 10 and 10,000
//                                 routes; the same request hits the LAST route
//   Balancer/<policy>             ReactorBalancer.pick on an 8-endpoint cluster,
//                                 one benchmark per balance policy
//
// Tables are built from YAML by the real loader and compiler in `setup`
// (not measured). Each iteration runs `scalingFactor` (1,000) operations; the
// tool prints per-operation values for the metrics marked `*` (pass `--scale`
// for per-iteration ones). Allocations per operation must be 0.

import Benchmark
import EdgeTestSupport

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]
    let config = Benchmark.Configuration(metrics: metrics, warmupIterations: 5, scalingFactor: .kilo,
                                         maxDuration: .seconds(1), maxIterations: 5_000)

    for (name, routes) in [("RouteMatch10", 10), ("RouteMatch10k", 10_000)] {
        Benchmark(name, configuration: config) { benchmark, state in
            var sink = 0
            for _ in benchmark.scaledIterations {
                sink &+= state.routes.match(state.request)
            }
            benchmark.stopMeasurement()
            blackHole(sink)
        } setup: {
            try RouteState(routes: routes)
        }
    }

    for policy in BalancerState.policies {
        Benchmark("Balancer/\(policy)", configuration: config) { benchmark, state in
            var sink: Int32 = 0
            for _ in benchmark.scaledIterations {
                sink &+= state.balancer.pick(cluster: state.cluster, request: state.request)
            }
            benchmark.stopMeasurement()
            blackHole(sink)
        } setup: {
            try BalancerState(policy: policy)
        }
    }
}

struct SetupError: Error, CustomStringConvertible {
    var description: String
}

/// Sent to every benchmark: an API call with a handful of ordinary headers
/// (the consistent_hash key is `X-User-Id`).
let requestHead = """
    GET /v1/users/42/orders?page=2 HTTP/1.1\r
    Host: api.example.com\r
    User-Agent: okhttp/4.12.0\r
    Accept: application/json\r
    Accept-Encoding: gzip\r
    X-User-Id: user-8c1f0b7e\r
    X-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736\r
    \r

    """

func makeRequest() throws -> MicroBenchRequest {
    guard let r = MicroBenchRequest(head: requestHead) else { throw SetupError(description: "request head does not parse") }
    return r
}

/// `routes - 1` filler routes, alternating an exact host with its own path
/// prefix and an any-host path prefix (zero-padded ids, so every table has
/// the same key lengths), then the route the request hits, last in file order.
final class RouteState {
    let routes: MicroBenchRoutes
    let request: MicroBenchRequest

    init(routes n: Int) throws {
        var y = "listeners:\n  - name: web\n    address: 127.0.0.1:18081\n    routes:\n"
        for i in 0..<(n - 1) {
            let id = String(repeating: "0", count: max(0, 5 - String(i).count)) + String(i)
            let host = i % 2 == 0 ? "host: s\(id).example.com, " : ""
            y += "      - { match: { \(host)path_prefix: /svc\(id)/ }, cluster: api }\n"
        }
        y += "      - { match: { host: api.example.com, path_prefix: /v1/users/ }, cluster: api }\n"
        y += "clusters:\n  - { name: api, endpoints: [\"127.0.0.1:9000\"] }\n"
        routes = try MicroBenchRoutes(yaml: y)
        request = try makeRequest()
        let hit = routes.match(request)
        guard routes.routeCount == n, hit == n - 1 else {
            throw SetupError(description: "\(n) routes: table has \(routes.routeCount), request matched \(hit), want \(n - 1)")
        }
    }
}

/// One cluster per policy, 8 endpoints each. weighted_round_robin has
/// weights 1...8; the others equal weights. least_connections and random_two
/// see fixed, uneven in-flight counts (with all zero they would reduce to
/// round robin and a plain random draw).
final class BalancerState {
    static let policies = ["round_robin", "weighted_round_robin", "least_connections", "random_two", "consistent_hash"]

    let routes: MicroBenchRoutes
    let balancer: MicroBenchBalancer
    let request: MicroBenchRequest
    let cluster: Int32

    init(policy: String) throws {
        var y = """
            listeners:
              - name: web
                address: 127.0.0.1:18082
                routes:
                  - { match: { path_prefix: / }, direct_response: { status: 200 } }
            clusters:

            """
        for (ci, p) in Self.policies.enumerated() {
            let eps = (1...8).map { k in
                "{ address: \"127.0.0.\(ci + 1):\(9000 + k)\", weight: \(p == "weighted_round_robin" ? k : 1) }"
            }
            y += "  - name: \(p)\n    balance: \(p)\n    endpoints: [ \(eps.joined(separator: ", ")) ]\n"
            if p == "consistent_hash" { y += "    hash_on: { header: x-user-id }\n" }
        }
        routes = try MicroBenchRoutes(yaml: y)
        balancer = MicroBenchBalancer(routes, seed: 7)
        request = try makeRequest()
        cluster = routes.cluster(named: policy)
        guard cluster >= 0 else { throw SetupError(description: "no cluster \(policy)") }
        let inFlight: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6]
        for e in 0..<(Self.policies.count * 8) { balancer.setInFlight(endpoint: e, inFlight[e % 8]) }
        let first = cluster * 8
        for _ in 0..<64 {
            let e = balancer.pick(cluster: cluster, request: request)
            guard e >= first, e < first + 8 else { throw SetupError(description: "\(policy): picked endpoint \(e), want \(first)..<\(first + 8)") }
        }
    }
}
