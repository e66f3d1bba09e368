import Edge
import Protocols

// MicroBenchAPI exists for Benchmarks/Micro only (the ordo-one/benchmark
// suite); EdgeTestSupport is not linked into the `edge` binary. It is the
// smallest public surface that lets that separate package drive the internal routing and balancing types the reactors use: build a
// `RouteTable` from YAML, make a `RequestView` over a parsed head, call
// `RouteTable.match` and `ReactorBalancer.pick`. Nothing in Edge calls it and
// nothing else should: it is not a stable API. Setup (init) allocates freely;
// `match` and `pick` are the hot-path calls and never allocate.

/// A parsed request head plus the `RequestView` routing and balancing read,
/// in memory this object owns (exists for Benchmarks/Micro only).
public final class MicroBenchRequest {
    let view: UnsafeMutablePointer<RequestView>
    private let bytes: UnsafeMutableRawBufferPointer
    private let fields: UnsafeMutableBufferPointer<HeaderField>

    /// `head` is a full request head ending in CRLF CRLF, parsed with
    /// `HTTP1Parser.parseRequest`; nil if it does not parse. The view is
    /// `RequestView.make`'s, as the reactor builds it.
    public init?(head: String, clientIP: String = "192.0.2.10") {
        let h = Array(head.utf8), ip = Array(clientIP.utf8)
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: h.count + ip.count, alignment: 16)
        bytes.copyBytes(from: h + ip)
        let fields = UnsafeMutableBufferPointer<HeaderField>.allocate(capacity: 128)
        fields.initialize(repeating: .empty)
        let buf = UnsafeRawBufferPointer(rebasing: bytes[0..<h.count])
        var rh = RequestHead()
        guard HTTP1Parser.parseRequest(buf, limits: HTTP1Limits(maxHeaderCount: fields.count), head: &rh,
                                       headers: fields) == .complete else {
            fields.deallocate(); bytes.deallocate()
            return nil
        }
        let view = UnsafeMutablePointer<RequestView>.allocate(capacity: 1)
        view.initialize(to: RequestView.make(head: rh, buffer: buf, headers: UnsafeBufferPointer(fields),
                                             clientIP: UnsafeRawBufferPointer(rebasing: bytes[h.count...])))
        self.view = view
        self.bytes = bytes
        self.fields = fields
    }

    deinit {
        view.deallocate(); fields.deallocate(); bytes.deallocate()
    }
}

/// A compiled `RouteTable` (exists for Benchmarks/Micro only).
public final class MicroBenchRoutes {
    let table: RouteTable
    private let clusterNames: [String]

    /// Parses and compiles an Edge YAML config exactly like `edge run` does
    /// (`ConfigLoader.parse` then `RouteTableCompiler.compile`); throws the
    /// loader's `file:line: field: problem` error.
    public init(yaml: String) throws {
        let config = try ConfigLoader.parse(yaml: yaml, file: "microbench.yaml")
        table = RouteTableCompiler.compile(config)
        clusterNames = config.clusters.map(\.name)
    }

    public var routeCount: Int { table.routes.count }

    /// Index of the cluster named `name` (as `pick` takes it), or -1.
    public func cluster(named name: String) -> Int32 { Int32(clusterNames.firstIndex(of: name) ?? -1) }

    /// `RouteTable.match` on reactor 0: the matched route's index, or -1.
    public func match(_ request: MicroBenchRequest, listener: Int = 0) -> Int {
        table.match(listener: listener, request.view.pointee, worker: 0)
    }
}

/// One reactor's `ReactorBalancer` over a table, with its own in-flight
/// counts per endpoint (exists for Benchmarks/Micro only).
public final class MicroBenchBalancer {
    private let routes: MicroBenchRoutes
    private var balancer: ReactorBalancer
    private let active: UnsafeMutableBufferPointer<Int32>

    public init(_ routes: MicroBenchRoutes, seed: UInt64 = 7) {
        self.routes = routes
        balancer = ReactorBalancer(table: routes.table, seed: seed)
        active = .allocate(capacity: max(routes.table.endpoints.count, 1))
        active.initialize(repeating: 0)
    }

    deinit {
        balancer.deallocate(); active.deallocate()
    }

    /// Sets the in-flight count least_connections and random_two read for
    /// endpoint `endpoint` (index into the table's endpoints).
    public func setInFlight(endpoint: Int, _ count: Int32) {
        if endpoint >= 0, endpoint < routes.table.endpoints.count { active[endpoint] = count }
    }

    /// `ReactorBalancer.pick`: an endpoint index, or -1.
    public func pick(cluster: Int32, request: MicroBenchRequest?) -> Int32 {
        balancer.pick(cluster: cluster, request: request.map { UnsafePointer($0.view) },
                      active: UnsafePointer(active.baseAddress.unsafelyUnwrapped))
    }
}
