import CIOUring
import Glibc

/// Clusters and endpoints: flat endpoint array, weighted round-robin slots,
/// the consistent_hash key source and Maglev tables (built by `Maglev.table`).
extension Compilation {
    /// Slots per endpoint are capped so a weight of 10000 cannot blow up the array.
    static let maxSlotsPerEndpoint = 1000

    mutating func addClusters(_ clusters: [ClusterConfig], workers: Int = 1) {
        for (ci, c) in clusters.enumerated() {
            clusterIndex[c.name] = Int32(ci)
            let firstEndpoint = Int32(parts.endpoints.count), firstSlot = Int32(parts.endpointSlots.count)
            for e in c.endpoints {
                let weight = max(1, min(e.weight, 10_000))
                for _ in 0..<min(weight, Self.maxSlotsPerEndpoint) { parts.endpointSlots.append(Int32(parts.endpoints.count)) }
                parts.endpoints.append(CompiledEndpoint(address: e.address.storage, length: e.address.length,
                                                        weight: Int32(weight), cluster: Int32(ci)))
                parts.endpointKeys.append(arena.intern(e.address.canonicalKey))
                parts.endpointHealth.append(HealthRegistry.shared.endpointCell(cluster: c.name, endpoint: e.address.canonicalKey))
            }
            var cc = CompiledCluster(
                firstEndpoint: firstEndpoint, endpointCount: Int32(c.endpoints.count),
                firstSlot: firstSlot, slotCount: Int32(parts.endpointSlots.count) - firstSlot,
                connectTimeoutMs: RouteTableCompiler.clampMs(c.connectTimeoutMs),
                maxIdlePerEndpoint: Int32(max(0, min(c.maxIdlePerEndpoint, 1 << 20))),
                idleTimeoutMs: RouteTableCompiler.clampMs(c.idleTimeoutMs),
                balance: Self.balance(c.balance), hashSource: .clientIP, hashName: .empty,
                firstMaglev: Int32(parts.maglev.count), maglevSize: 0,
                sendProxyProtocol: UInt8(clamping: c.sendProxyProtocol))
            cc.http2 = c.upstreamProtocol == .http2
            switch c.hashOn {
            case .clientIP: break
            case .header(let name): cc.hashSource = .header; cc.hashName = arena.internLower(name)
            case .cookie(let name): cc.hashSource = .cookie; cc.hashName = arena.intern(name)
            }
            if c.balance == .consistentHash {
                // Names as written ("db.internal:5432"), so a DNS change does not remap keys.
                let table = Maglev.table(names: c.endpoints.map(\.address.text), weights: c.endpoints.map(\.weight))
                parts.maglev.append(contentsOf: table)
                cc.maglevSize = Int32(table.count)
            }
            if let context = c.tls?.context { cc.tlsClient = context.retainedPointer() }
            cc.resilience = CompiledResilience(c.resilience, workers: workers)
            parts.clusterHealth.append(HealthRegistry.shared.clusterCell(c.name))
            label(cluster: &cc, c)
            parts.clusters.append(cc)
        }
    }

    static func balance(_ b: BalancePolicy) -> CompiledBalance {
        switch b {
        case .roundRobin: return .roundRobin
        case .weightedRoundRobin: return .weightedRoundRobin
        case .leastConnections: return .leastConnections
        case .randomTwo: return .randomTwo
        case .leastLatency: return .leastLatency
        case .consistentHash: return .consistentHash
        }
    }
}
