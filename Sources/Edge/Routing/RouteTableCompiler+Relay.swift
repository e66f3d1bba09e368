/// TCP listener relay settings, compiled (control thread).
extension RouteTableCompiler {
    static func addRelaySettings(_ l: ListenerConfig, to cl: inout CompiledListener) {
        cl.relay.routesBySNI = l.routesBySNI
        switch l.relayMode {
        case .auto: cl.relay.mode = .auto
        case .copy: cl.relay.mode = .copy
        case .splice: cl.relay.mode = .splice
        }
        cl.relay.spliceAfterBytes = Int32(clamping: l.spliceAfterBytes)
        cl.relay.sniTimeoutMs = clampMs(l.sniTimeoutMs)
    }
}

/// How one TCP listener's connections are relayed (hot path reads these).
struct CompiledRelaySettings {
    enum Mode: UInt8 { case auto, copy, splice }
    /// The cluster is picked by the ClientHello's SNI through the listener's routes.
    var routesBySNI = false
    var mode = Mode.auto
    /// auto: bytes of back-to-back full-buffer reads (one direction) that switch the connection to splice.
    var spliceAfterBytes: Int32 = 65_536
    /// Time for the ClientHello to arrive on an SNI-routed listener.
    var sniTimeoutMs: Int32 = 5_000
}
