import COpenSSL

/// Reading names and identities out of X509 certificates (control thread and
/// once per handshake for mTLS; never per request).
enum TLSCertificateInfo {
    /// DNS names of the subjectAltName extension.
    static func dnsNames(_ x: OpaquePointer) -> [String] { altNames(x, type: GEN_DNS) }

    /// URI names of the subjectAltName extension (SPIFFE ids and the like).
    static func uris(_ x: OpaquePointer) -> [String] { altNames(x, type: GEN_URI) }

    private static func altNames(_ x: OpaquePointer, type: Int32) -> [String] {
        guard let raw = X509_get_ext_d2i(x, NID_subject_alt_name, nil, nil) else { return [] }
        let stack = OpaquePointer(raw)
        defer { GENERAL_NAMES_free(stack) }
        var out: [String] = []
        let count = OPENSSL_sk_num(stack)
        var i: Int32 = 0
        while i < count {
            defer { i += 1 }
            guard let v = OPENSSL_sk_value(stack, i) else { continue }
            let gn = v.assumingMemoryBound(to: GENERAL_NAME.self)
            guard gn.pointee.type == type, let s = gn.pointee.d.ia5 else { continue }
            if let text = asn1Text(UnsafePointer(s)) { out.append(text) }
        }
        return out
    }

    static func commonName(_ x: OpaquePointer) -> String? {
        guard let name = X509_get_subject_name(x) else { return nil }
        let i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard i >= 0, let e = X509_NAME_get_entry(name, i), let data = X509_NAME_ENTRY_get_data(e) else { return nil }
        return asn1Text(data)
    }

    private static func asn1Text(_ s: UnsafePointer<ASN1_STRING>) -> String? {
        guard let p = ASN1_STRING_get0_data(s) else { return nil }
        let n = Int(ASN1_STRING_length(s))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// Subject in RFC 2253 form ("CN=client,O=Edge").
    static func subject(_ x: OpaquePointer) -> String {
        guard let name = X509_get_subject_name(x), let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        _ = X509_NAME_print_ex(bio, name, 0, edge_XN_FLAG_RFC2253())
        var data: UnsafeMutablePointer<CChar>? = nil
        let n = edge_BIO_get_mem_data(bio, &data)
        guard n > 0, let data else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
    }

    /// Envoy's X-Forwarded-Client-Cert value for a verified peer certificate:
    /// `Hash=<sha256 of DER, hex>;Subject="...";URI=...`.
    static func forwardedClientCert(_ x: OpaquePointer) -> String {
        var md = [UInt8](repeating: 0, count: 64)
        var mdLength: UInt32 = 0
        var out = "Hash="
        if X509_digest(x, EVP_sha256(), &md, &mdLength) == 1 {
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            var h: [UInt8] = []
            for b in md[0..<Int(mdLength)] { h.append(hex[Int(b >> 4)]); h.append(hex[Int(b & 15)]) }
            out += String(decoding: h, as: UTF8.self)
        }
        let subject = subject(x).replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")
        out += ";Subject=\"\(subject)\""
        for u in uris(x) where !u.contains(";") && !u.contains(",") { out += ";URI=\(u)" }
        // Header-safe: no control characters.
        return String(decoding: out.utf8.filter { $0 >= 0x20 && $0 != 0x7F }, as: UTF8.self)
    }
}

extension String {
    /// Foundation-free replace-all (control thread / per handshake only).
    func replacingAll(_ a: Character, with b: String) -> String {
        var out = ""
        for ch in self { if ch == a { out += b } else { out.append(ch) } }
        return out
    }
}
