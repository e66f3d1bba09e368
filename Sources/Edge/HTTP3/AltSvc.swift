import Protocols

extension Reactor {
    /// `Alt-Svc: h3=":PORT"; ma=86400` on responses of an https listener with
    /// http3 on: how clients learn that the same port speaks HTTP/3.
    @inline(__always) func appendAltSvc(_ w: inout HeadWriter, _ xi: Int) {
        guard xi >= 0, exchanges[xi].view >= 0 else { return }
        let v = Int(exchanges[xi].view)
        let l = Int(exchanges[xi].listener)
        guard l >= 0, l < views[v].listeners.count else { return }
        let alt = views[v].listeners[l].http3.altSvc
        if alt.count > 0 { w.append(alt.buffer) }
    }
}
