/// The reactor's exchange table: a slab of `Exchange` values indexed by
/// exchange id, with a free list. Separate from socket slots so that one
/// downstream connection can own several exchanges (HTTP/2, HTTP/3 streams)
/// and an upstream connection points at the exchange it serves, not at a
/// client socket.
extension Reactor {
    /// A fresh exchange carried by client slot `c`; nil when the table is full.
    func allocExchange(client c: Int32) -> ExchangeID? {
        let x: Int32
        if freeExchangeCount > 0 { freeExchangeCount -= 1; x = freeExchangeIds[Int(freeExchangeCount)] }
        else if freshExchange < capacity { x = freshExchange; freshExchange += 1 }
        else { return nil }
        exchanges[Int(x)] = Exchange()
        exchanges[Int(x)].client = c
        socks[Int(c)].exchange = x
        return ExchangeID(raw: x)
    }

    /// Returns exchange `x` to the free list (its client slot is being freed).
    func freeExchange(_ x: ExchangeID) {
        guard x.raw >= 0 else { return }
        compressionRelease(Int(x.raw))
        exchanges[Int(x.raw)] = Exchange()
        freeExchangeIds[Int(freeExchangeCount)] = x.raw
        freeExchangeCount += 1
    }

    /// The next request on the same HTTP/1.1 connection reuses the exchange:
    /// per-request state starts over, the link to its client stays.
    @inline(__always) func resetExchange(_ xi: Int) {
        let c = exchanges[xi].client
        let codec = exchanges[xi].codec
        compressionRelease(xi)
        exchanges[xi] = Exchange()
        exchanges[xi].client = c
        exchanges[xi].codec = codec
    }
}
