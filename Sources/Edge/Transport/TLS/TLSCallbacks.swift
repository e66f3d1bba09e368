import COpenSSL

/// OpenSSL callbacks of server contexts. They run inside `SSL_do_handshake` on
/// a worker thread and only read the immutable `TLSServerContext`.
enum TLSCallbacks {
    /// SNI: switches the connection to the certificate group serving the name
    /// (exact, then wildcard, then the default it started on).
    static let clientHello: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 = { ssl, _, arg in
        guard let ssl, let arg else { return 1 }
        let server = Unmanaged<TLSServerContext>.fromOpaque(arg).takeUnretainedValue()
        var p: UnsafePointer<UInt8>? = nil
        var len = 0
        guard SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_server_name), &p, &len) == 1, let p else { return 1 }
        var name = [UInt8](repeating: 0, count: 255)
        guard let n = SNIPeek.hostName(in: UnsafeRawBufferPointer(start: p, count: len), into: &name) else { return 1 }
        let g = name.withUnsafeBytes { server.group(for: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        if g > 0 && g < server.contexts.count { _ = SSL_set_SSL_CTX(ssl, server.contexts[g]) }
        return 1
    }

    /// ALPN: the server's preference among what the client offers; a fatal
    /// alert when nothing overlaps. With no ALPN configured the extension is
    /// not acknowledged (a TLS relay does not know its clients' protocols).
    static let selectALPN: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
                                           UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?) -> Int32 = { _, out, outLen, input, inputLen, arg in
        guard let arg, let out, let outLen else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        let server = Unmanaged<TLSServerContext>.fromOpaque(arg).takeUnretainedValue()
        if server.alpnEmpty { return SSL_TLSEXT_ERR_NOACK }
        guard let base = server.alpnWire.baseAddress else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        var chosen: UnsafeMutablePointer<UInt8>? = nil
        let r = SSL_select_next_proto(&chosen, outLen, base, UInt32(server.alpnWire.count), input, inputLen)
        guard r == OPENSSL_NPN_NEGOTIATED, let chosen else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        out.pointee = UnsafePointer(chosen)
        return SSL_TLSEXT_ERR_OK
    }

    /// `client_auth: optional`: a missing or unverified certificate does not
    /// fail the handshake; the connection just gets no X-Forwarded-Client-Cert.
    static let acceptAnyPeer: @convention(c) (Int32, OpaquePointer?) -> Int32 = { _, _ in 1 }
}

/// Reads the host name out of a server_name extension body (RFC 6066 §3).
enum SNIPeek {
    /// Lower-cased host name copied into `out`; its length, or nil if malformed.
    static func hostName(in ext: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Int? {
        guard ext.count >= 5 else { return nil }
        let listLength = Int(ext[0]) << 8 | Int(ext[1])
        guard listLength + 2 <= ext.count, ext[2] == 0 else { return nil }
        let n = Int(ext[3]) << 8 | Int(ext[4])
        guard n > 0, n <= out.count, 5 + n <= ext.count else { return nil }
        for k in 0..<n {
            var c = ext[5 + k]
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            out[k] = c
        }
        return n
    }
}
