import Protocols

/// `listeners[]`: bound sockets, their protocol, HTTP limits and routes.
extension ConfigLoader {
    static let listenerFields = ["name", "address", "protocol", "routes", "cluster", "http",
                                 "proxy_protocol", "proxy_protocol_timeout", "tcp", "udp",
                                 "max_connections", "max_connections_per_ip", "tls", "policies", "http2", "http3"]
    static let tcpFields = ["idle_timeout", "relay", "splice_after", "sni_timeout"]
    /// TLS relays always copy through user space and never peek at SNI.
    static let tlsRelayFields = ["idle_timeout"]
    static let udpFields = ["session_timeout", "max_sessions"]
    static let httpFields = ["max_request_line", "max_header_bytes", "max_headers", "max_body",
                             "header_timeout", "idle_timeout", "body_timeout", "min_body_rate"]
    /// Listeners in one config: every worker accepts on each of them
    /// (`Reactor.maxAcceptSlots`) and each needs its own connection-counter slot
    /// (`Admission.maxListenerSlots`, shared with listeners of older snapshots).
    static let maxListeners = min(Reactor.maxAcceptSlots, Admission.maxListenerSlots / 2)
    /// Protocols that parse today; the others are reserved words.
    static let implementedProtocols: Set<ListenerProtocol> = [.http, .https, .tcp, .tls, .udp, .dtls]

    static func parseListeners(_ node: ConfigNode, clusters: [ClusterConfig]) throws(ConfigError) -> [ListenerConfig] {
        let items = try node.list()
        guard !items.isEmpty else { throw node.error("at least one listener is required") }
        // Refused here rather than silently not accepting on (or not counting) the rest.
        guard items.count <= maxListeners else {
            throw node.error("\(items.count) listeners, at most \(maxListeners) are supported (each worker accepts on at most \(Reactor.maxAcceptSlots) sockets)")
        }
        var listeners: [ListenerConfig] = []
        for item in items {
            let l = try parseListener(item, clusters: clusters)
            if let first = listeners.first(where: { $0.name == l.name }) {
                throw item.error("duplicate listener name '\(l.name)' (first defined at line \(first.location.line))")
            }
            if let first = listeners.first(where: { $0.address.canonicalKey == l.address.canonicalKey }) {
                throw item.error("listener '\(l.name)' uses address \(l.address.text), already used by listener '\(first.name)' (line \(first.location.line))")
            }
            listeners.append(l)
        }
        return listeners
    }

    static func parseListener(_ node: ConfigNode, clusters: [ClusterConfig]) throws(ConfigError) -> ListenerConfig {
        let m = try node.mapping(allowed: listenerFields)
        let name = try name(m.required("name"))
        let address = try m.required("address").socketAddress()
        var proto = ListenerProtocol.http
        if let n = m.optional("protocol") {
            let words = [ListenerProtocol.http, .https, .tcp, .tls, .udp, .dtls].map(\.rawValue)
            proto = ListenerProtocol(rawValue: try n.oneOf(words, what: "protocol")) ?? .http
            guard implementedProtocols.contains(proto) else {
                throw n.error("protocol '\(proto.rawValue)' is not implemented yet")
            }
        }
        var http = HTTPListenerSettings()
        if let n = m.optional("http") {
            guard proto == .http || proto == .https else { throw n.error("'http' settings apply to protocol http and https listeners only") }
            http = try parseHTTPSettings(n)
        }
        var http2 = HTTP2Settings()
        if let n = m.optional("http2") {
            guard proto == .http || proto == .https else { throw n.error("'http2' settings apply to protocol http and https listeners only") }
            http2 = try parseHTTP2Settings(n, maxHeaderBytes: http.limits.maxHeaderBytes)
        }
        var http3 = HTTP3Settings()
        if let n = m.optional("http3") {
            guard proto == .https else { throw n.error("'http3' applies to protocol https listeners only (QUIC needs the listener's certificates)") }
            http3 = try parseHTTP3Settings(n, maxHeaderBytes: http.limits.maxHeaderBytes)
        }
        var acceptsProxy = false
        if let n = m.optional("proxy_protocol") {
            acceptsProxy = try n.oneOf(["accept", "off"], what: "proxy_protocol") == "accept"
        }
        var proxyTimeout = 5_000
        if let n = m.optional("proxy_protocol_timeout") { proxyTimeout = try n.durationMs() }
        var maxConnections = 0, maxPerIP = 0
        if let n = m.optional("max_connections") { maxConnections = try n.int(in: 0...100_000_000) }
        if let n = m.optional("max_connections_per_ip") {
            guard proto != .udp && proto != .dtls else { throw n.error("max_connections_per_ip applies to tcp and http listeners") }
            maxPerIP = try n.int(in: 0...1_000_000)
        }
        var streamIdle = 300_000
        var relay = ListenerConfig(name: name, address: address, proto: proto, routes: [], location: node.location)
        if let n = m.optional("tcp") {
            guard proto == .tcp || proto == .tls else { throw n.error("'tcp' settings apply to protocol tcp and tls listeners only") }
            let t = try n.mapping(allowed: tcpFields)
            if proto == .tls, let e = t.entries.first(where: { !tlsRelayFields.contains($0.key) }) {
                throw e.keyNode.error("'\(e.key)' does not apply to protocol tls listeners (their relays always copy through user space); only idle_timeout does")
            }
            if let d = t.optional("idle_timeout") { streamIdle = try d.durationMs() }
            try parseRelaySettings(t, into: &relay)
        }
        var udpTimeout = 30_000, udpMax = 10_000
        if let n = m.optional("udp") {
            guard proto == .udp || proto == .dtls else { throw n.error("'udp' settings apply to protocol udp and dtls listeners only") }
            let u = try n.mapping(allowed: udpFields)
            if let d = u.optional("session_timeout") { udpTimeout = try d.durationMs() }
            if let d = u.optional("max_sessions") { udpMax = try d.int(in: 1...1_000_000) }
        }
        if (proto == .udp || proto == .dtls) && acceptsProxy {
            throw (m.optional("proxy_protocol") ?? node).error("proxy_protocol is for tcp and http listeners")
        }
        if proto == .tls, let n = m.optional("policies") {
            throw n.error("policies apply to protocol http and https listeners (a tls listener relays bytes it does not parse)")
        }
        let tls = try parseListenerTLS(m, proto: proto, node: node)
        if proto == .tcp, let r = m.optional("routes") {
            // SNI routing: the listener's cluster (optional) serves no-SNI and unmatched hellos.
            var routes = try parseStreamRoutes(r, clusters: clusters)
            var fallback: String? = nil
            if let c = m.optional("cluster") {
                let clusterName = try clusterReference(c, clusters: clusters)
                fallback = clusterName
                routes.append(RouteConfig(action: .cluster(clusterName), location: c.location))
            }
            var l = relay
            l.routes = routes
            l.routesBySNI = true
            l.streamCluster = fallback
            l.acceptsProxyProtocol = acceptsProxy
            l.proxyProtocolTimeoutMs = proxyTimeout
            l.streamIdleTimeoutMs = streamIdle
            l.maxConnections = maxConnections
            l.maxConnectionsPerIP = maxPerIP
            return l
        }
        if proto == .tcp || proto == .udp || proto == .tls || proto == .dtls {
            guard let c = m.optional("cluster") else {
                throw node.error("listener '\(name)' (protocol \(proto.rawValue)) needs 'cluster: NAME' to relay to")
            }
            if let r = m.optional("routes") { throw r.error("protocol \(proto.rawValue) listeners relay to one cluster; 'routes' are for http and tcp (sni)") }
            let clusterName = try clusterReference(c, clusters: clusters)
            var l = ListenerConfig(name: name, address: address, proto: proto,
                                   routes: [RouteConfig(action: .cluster(clusterName), location: c.location)], http: http, location: node.location)
            l.streamCluster = clusterName
            l.acceptsProxyProtocol = acceptsProxy
            l.proxyProtocolTimeoutMs = proxyTimeout
            l.streamIdleTimeoutMs = streamIdle
            l.relayMode = relay.relayMode
            l.spliceAfterBytes = relay.spliceAfterBytes
            l.sniTimeoutMs = relay.sniTimeoutMs
            l.udpSessionTimeoutMs = udpTimeout
            l.udpMaxSessions = udpMax
            l.tls = tls  // protocol tls and dtls too
            l.maxConnections = maxConnections
            l.maxConnectionsPerIP = maxPerIP
            return l
        }

        var routes: [RouteConfig] = []
        let routesNode = m.optional("routes")
        if let shorthand = m.optional("cluster") {
            // `cluster: X` on a listener = one catch-all route to X.
            if let routesNode { throw routesNode.error("give either 'routes' or 'cluster' on a listener, not both") }
            let clusterName = try clusterReference(shorthand, clusters: clusters)
            routes = [RouteConfig(action: .cluster(clusterName), location: shorthand.location)]
        } else {
            guard let routesNode else {
                throw node.error("listener '\(name)' has no routes; add 'routes' (or 'cluster' for a catch-all)")
            }
            for item in try routesNode.list() {
                routes.append(try parseRoute(item, clusters: clusters))
            }
            guard !routes.isEmpty else { throw routesNode.error("listener '\(name)' has no routes") }
        }
        var l = ListenerConfig(name: name, address: address, proto: proto, routes: routes, http: http, location: node.location)
        l.tls = tls
        l.http2 = http2
        l.http3 = http3
        if http3.enabled, let t = tls {
            // GnuTLS reads the same PEM files the TLS listener uses; a bad file fails here.
            do { l.quicContext = try QUICServerContext(certificates: t.certificates) }
            catch { throw (m.optional("http3") ?? node).error(error.description) }
        }
        l.acceptsProxyProtocol = acceptsProxy
        l.proxyProtocolTimeoutMs = proxyTimeout
        l.maxConnections = maxConnections
        l.maxConnectionsPerIP = maxPerIP
        if let n = m.optional("policies") { l.policies = try policyReferences(n) }
        return l
    }

    static func parseHTTPSettings(_ node: ConfigNode) throws(ConfigError) -> HTTPListenerSettings {
        let m = try node.mapping(allowed: httpFields)
        var h = HTTPListenerSettings()
        if let n = m.optional("max_request_line") { h.limits.maxRequestLine = Int(try n.sizeBytes(in: 64...(1 << 20))) }
        if let n = m.optional("max_header_bytes") { h.limits.maxHeaderBytes = Int(try n.sizeBytes(in: 256...(1 << 20))) }
        if let n = m.optional("max_headers") { h.limits.maxHeaderCount = try n.int(in: 1...10_000) }
        if let n = m.optional("max_body") {
            if (try? n.string()) == "unlimited" { h.maxBodyBytes = 0 } else {
                h.maxBodyBytes = try n.sizeBytes(in: 0...UInt64(Int.max))
            }
        }
        if let n = m.optional("header_timeout") { h.headerTimeoutMs = try n.durationMs() }
        if let n = m.optional("idle_timeout") { h.idleTimeoutMs = try n.durationMs() }
        if let n = m.optional("body_timeout") { h.bodyTimeoutMs = try n.durationMs() }
        if let n = m.optional("min_body_rate") {
            if (try? n.string()) == "off" { h.minBodyRate = 0 } else { h.minBodyRate = Int(try n.sizeBytes(in: 0...(1 << 30))) }
        }
        if h.limits.maxRequestLine > h.limits.maxHeaderBytes {
            let at = m.optional("max_request_line") ?? node
            throw at.error("max_request_line (\(h.limits.maxRequestLine) bytes) must not exceed max_header_bytes (\(h.limits.maxHeaderBytes) bytes)")
        }
        return h
    }

    /// A cluster name that must exist; the error lists the known ones.
    static func clusterReference(_ node: ConfigNode, clusters: [ClusterConfig]) throws(ConfigError) -> String {
        let name = try node.nonEmptyString()
        guard clusters.contains(where: { $0.name == name }) else {
            let known = clusters.map(\.name).sorted()
            throw node.error("unknown cluster '\(name)' " + (known.isEmpty ? "(no clusters are defined)" : "(known: \(known.joined(separator: ", ")))"))
        }
        return name
    }
}
