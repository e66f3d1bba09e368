import Protocols

/// The protocol a downstream connection speaks to its client. The exchange
/// layer hands responses to the client only through the `downstream*`
/// functions below, which switch over this enum (no existentials, no closures
/// per request); `h2` and `h3` join as cases when their glue lands, each
/// framing the same calls into its own frames.
enum DownstreamCodec: UInt8 {
    case h1
    /// An HTTP/2 stream (HTTP2/): its upstream events go to the h2 glue
    /// directly (`h2Serves`), so these cases only cover what reaches here generically.
    case h2
}

extension Reactor {
    /// Queues the response head (final, 101, or an interim 1xx) for the client
    /// of exchange `xi`. False if it does not fit (the caller answers 502).
    @inline(__always) func downstreamSendHead(_ xi: Int, _ head: inout ResponseHead, _ buf: UnsafeRawBufferPointer, interim: Bool) -> Bool {
        switch exchanges[xi].codec {
        case .h1: return writeResponseHead(to: exchanges[xi].client, &head, buf, interim: interim)
        case .h2: return interim || h2SubmitUpstreamHead(Int32(xi), &head, buf, hasBody: !exchanges[xi].response.done)
        }
    }

    /// Moves response body bytes from upstream `u`'s input queue to the client.
    /// HTTP/1.1 passes the upstream's framing through without copying (or
    /// strips chunking for an HTTP/1.0 client); nil or the framing error.
    @inline(__always) func downstreamSendData(_ xi: Int, from u: Int32) -> HTTP1Error? {
        switch exchanges[xi].codec {
        case .h1:
            if exchanges[xi].compress.active { return pumpCompressed(from: u, xi) }
            return pumpBody(from: u, to: exchanges[xi].client, state: &exchanges[xi].response)
        case .h2: h2Flush(exchanges[xi].client); return nil  // the data provider pulls the bytes
        }
    }

    /// Trailers of a chunked response: HTTP/1.1 carries them inside the chunked
    /// body, which `downstreamSendData` already passed on, so nothing is left to send.
    @inline(__always) func downstreamSendTrailers(_ xi: Int) {
        switch exchanges[xi].codec {
        case .h1, .h2: return
        }
    }

    /// Pushes what is queued for the client (interim heads, body bytes) to the wire.
    @inline(__always) func downstreamPush(_ xi: Int) {
        switch exchanges[xi].codec {
        case .h1: flush(exchanges[xi].client)
        case .h2: h2Flush(exchanges[xi].client)
        }
    }

    /// The exchange may be over (response received and pushed): the codec
    /// decides what comes next once the client has taken it (HTTP/1.1:
    /// keep-alive and the next pipelined request, or a lingering close).
    @inline(__always) func downstreamEnd(_ xi: Int) {
        switch exchanges[xi].codec {
        case .h1: maybeFinishExchange(exchanges[xi].client)
        case .h2: return  // nghttp2 closes the stream once its last frame is out
        }
    }

    /// Abandons the exchange mid-response. HTTP/1.1 cannot cancel one request,
    /// so the connection delivers what is queued and closes (an h2 stream
    /// would get RST_STREAM and the connection would go on).
    func downstreamReset(_ xi: Int) {
        switch exchanges[xi].codec {
        case .h1:
            let c = exchanges[xi].client
            flush(c)
            exchanges[xi].keepAlive = false
            exchanges[xi].phase = .closing
            lingerIfDrained(c)
        case .h2:
            h2Reset(Int32(xi), 2)  // INTERNAL_ERROR; the connection goes on
            h2Flush(exchanges[xi].client)
        }
    }
}
