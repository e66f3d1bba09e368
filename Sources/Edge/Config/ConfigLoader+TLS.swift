import Glibc

/// `listeners[].tls` as written, plus the OpenSSL contexts the loader built from
/// it (building them is the validation: a missing file or a key that does not
/// match its certificate fails here, with the field's file and line).
struct TLSListenerConfig: Sendable {
    struct Certificate: Sendable {
        var cert: String
        var key: String
        /// Empty: names come from the certificate's SANs (or its CN).
        var serverNames: [String]
    }
    enum ClientAuthMode: UInt8, Sendable { case off, optional, require }

    var certificates: [Certificate] = []
    /// TLS1_2_VERSION or TLS1_3_VERSION.
    var minVersion: Int32 = 0x0303
    var alpn: [String] = ["http/1.1"]
    var clientCA: String? = nil
    var clientAuth: ClientAuthMode = .off
    var sessionTickets = true
    var handshakeTimeoutMs = 10_000
    /// Handshakes in progress per worker; new connections beyond it are closed
    /// at once so established connections keep their latency.
    var maxHandshakes = 1024
    /// Built by the loader; the compiler hands it to the route table.
    var context: TLSServerContext? = nil
}

extension ConfigLoader {
    static let tlsFields = ["certificates", "min_version", "alpn", "client_auth", "session_tickets",
                            "handshake_timeout", "max_handshakes"]
    static let tlsCertificateFields = ["cert", "key", "server_names"]
    static let tlsClientAuthFields = ["ca", "mode"]
    /// ALPN protocols a listener may offer today (h2 joins with HTTP/2).
    static let supportedALPN = ["h2", "http/1.1"]

    /// The `tls` block: required on https listeners, refused elsewhere.
    static func parseListenerTLS(_ m: ConfigMapping, proto: ListenerProtocol, node: ConfigNode) throws(ConfigError) -> TLSListenerConfig? {
        guard proto == .https || proto == .tls || proto == .dtls else {
            if let n = m.optional("tls") { throw n.error("'tls' settings apply to protocol https, tls and dtls listeners only") }
            return nil
        }
        guard let n = m.optional("tls") else {
            throw node.error("protocol \(proto.rawValue) listeners need a 'tls' block with at least one certificate")
        }
        return try parseTLS(n, proto: proto)
    }

    /// `proto`: https, tls, or dtls (DTLS 1.2 contexts, see Transport/DTLS/).
    static func parseTLS(_ node: ConfigNode, proto: ListenerProtocol = .https) throws(ConfigError) -> TLSListenerConfig {
        let datagram = proto == .dtls
        let m = try node.mapping(allowed: tlsFields)
        var t = TLSListenerConfig()
        // A TLS relay carries any protocol: it offers ALPN only when told which.
        if proto == .tls { t.alpn = [] }
        let certsNode = try m.required("certificates")
        let items = try certsNode.list()
        guard !items.isEmpty else { throw certsNode.error("at least one certificate is required") }
        var certNodes: [(cert: ConfigNode, key: ConfigNode, names: ConfigNode?)] = []
        for item in items {
            let c = try item.mapping(allowed: tlsCertificateFields)
            let certNode = try c.required("cert"), keyNode = try c.required("key")
            var names: [String] = []
            if let n = c.optional("server_names") {
                for nameNode in try n.list() {
                    let name = try nameNode.nonEmptyString().lowercased()
                    guard TLSServerContext.isValidServerName(name) else {
                        throw nameNode.error("'\(name)' is not a host name or a '*.example.com' wildcard")
                    }
                    names.append(name)
                }
            }
            t.certificates.append(.init(cert: resolvePath(try certNode.nonEmptyString(), node.file),
                                        key: resolvePath(try keyNode.nonEmptyString(), node.file), serverNames: names))
            certNodes.append((certNode, keyNode, c.optional("server_names")))
        }
        if datagram { try checkDTLSFields(m, into: &t) }
        if let n = m.optional("min_version"), !datagram {
            t.minVersion = try n.oneOf(["1.2", "1.3"], what: "TLS version") == "1.3" ? 0x0304 : 0x0303
        }
        if let n = m.optional("alpn"), !datagram {
            var protos: [String] = []
            for p in try n.list() {
                if proto == .tls {
                    // Any protocol id (RFC 7301: 1 to 255 bytes): Edge does not speak it, the upstream does.
                    let id = try p.nonEmptyString()
                    guard id.utf8.count <= 255 else { throw p.error("an ALPN protocol id is at most 255 bytes") }
                    protos.append(id)
                } else {
                    protos.append(try p.oneOf(supportedALPN, what: "ALPN protocol"))
                }
            }
            guard !protos.isEmpty else { throw n.error(proto == .tls ? "list at least one protocol, or leave 'alpn' out" : "list at least one protocol (http/1.1)") }
            t.alpn = protos
        }
        if let n = m.optional("client_auth") {
            let c = try n.mapping(allowed: tlsClientAuthFields)
            t.clientCA = resolvePath(try c.required("ca").nonEmptyString(), node.file)
            t.clientAuth = .require
            if let mode = c.optional("mode") {
                t.clientAuth = try mode.oneOf(["optional", "require"], what: "client_auth mode") == "optional" ? .optional : .require
            }
        }
        if let n = m.optional("session_tickets") {
            switch try n.string().lowercased() {
            case "on", "true": t.sessionTickets = true
            case "off", "false": t.sessionTickets = false
            default: throw n.error("expected on or off, got '\(n.node.string ?? "")'")
            }
        }
        if let n = m.optional("handshake_timeout") { t.handshakeTimeoutMs = try n.durationMs() }
        if let n = m.optional("max_handshakes") { t.maxHandshakes = try n.int(in: 1...1_000_000) }
        do {
            t.context = try TLSServerContext.build(t, datagram: datagram)
            if datagram, let c = t.context { DTLSContextSetup.configure(c) }
        } catch let e {
            // Point at the field the problem is in.
            var at = node
            switch e.field {
            case .cert(let i): if i < certNodes.count { at = certNodes[i].cert }
            case .key(let i): if i < certNodes.count { at = certNodes[i].key }
            case .clientCA: at = m.optional("client_auth") ?? node
            case .listener: break
            }
            throw at.error(e.message)
        }
        return t
    }

    static let clusterTLSFields = ["server_name", "ca", "verify", "client_cert", "client_key"]

    /// `clusters[].tls`: TLS to the upstream endpoints.
    static func parseClusterTLS(_ node: ConfigNode, alpnH2: Bool = false) throws(ConfigError) -> ClusterTLSConfig {
        let m = try node.mapping(allowed: clusterTLSFields)
        var t = ClusterTLSConfig()
        if let n = m.optional("server_name") {
            let name = try n.nonEmptyString().lowercased()
            guard TLSServerContext.isValidServerName(name), !name.hasPrefix("*.") else { throw n.error("'\(name)' is not a host name") }
            t.serverName = name
        }
        if let n = m.optional("ca") { t.ca = resolvePath(try n.nonEmptyString(), node.file) }
        if let n = m.optional("verify") { t.verify = try n.bool() }
        if let n = m.optional("client_cert") { t.clientCert = resolvePath(try n.nonEmptyString(), node.file) }
        if let n = m.optional("client_key") { t.clientKey = resolvePath(try n.nonEmptyString(), node.file) }
        if (t.clientCert == nil) != (t.clientKey == nil) {
            throw node.error("give both client_cert and client_key, or neither")
        }
        if t.verify && t.serverName == nil {
            throw node.error("verify: true needs server_name (the name the upstream certificate must carry)")
        }
        for (field, path) in [("ca", t.ca), ("client_cert", t.clientCert), ("client_key", t.clientKey)] {
            if let path, !FileManagerLite.readable(path) {
                throw (m.optional(field) ?? node).error("cannot read '\(path)': \(FileManagerLite.lastError())")
            }
        }
        do {
            t.context = try TLSClientContext.build(t, workers: RouteTableCompiler.allowedCPUCount() + 64, alpnH2: alpnH2)
        } catch let e {
            var at = node
            switch e.field {
            case .cert: at = m.optional("client_cert") ?? node
            case .key: at = m.optional("client_key") ?? node
            case .clientCA: at = m.optional("ca") ?? node
            case .listener: break
            }
            throw at.error(e.message)
        }
        return t
    }

    /// Relative certificate paths are relative to the config file's directory.
    static func resolvePath(_ path: String, _ configFile: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = configFile.lastIndex(of: "/") else { return path }
        return String(configFile[...slash]) + path
    }
}
