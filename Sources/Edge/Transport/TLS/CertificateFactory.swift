import COpenSSL
import Glibc

/// Demo and test certificates made with OpenSSL's API (`edge gen-certs`): a CA,
/// server certificates for one host name (ECDSA P-256 and RSA-2048) and a
/// client certificate for mTLS. Control thread / CLI only.
enum CertificateFactory {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// A key and its self-signed or CA-signed certificate, freed together.
    final class Issued {
        let key: OpaquePointer
        let cert: OpaquePointer
        init(key: OpaquePointer, cert: OpaquePointer) { self.key = key; self.cert = cert }
        deinit { X509_free(cert); EVP_PKEY_free(key) }
    }

    enum KeyKind { case ecdsaP256, rsa2048 }
    enum Role { case ca, server, client }

    /// Writes ca.pem/ca.key, server.pem/server.key (ECDSA), server-rsa.pem/.key,
    /// client.pem/client.key into `dir`. Returns the file names written.
    static func writeDemoSet(hostname: String, dir: String, days: Int = 825) throws -> [String] {
        let ca = try issue(kind: .ecdsaP256, role: .ca, commonName: "Edge Demo CA", sans: [], days: days, issuer: nil)
        let sans = ["DNS:\(hostname)", "DNS:*.\(hostname)"] + (hostname == "localhost" ? ["IP:127.0.0.1", "IP:::1"] : [])
        let server = try issue(kind: .ecdsaP256, role: .server, commonName: hostname, sans: sans, days: days, issuer: ca)
        let serverRSA = try issue(kind: .rsa2048, role: .server, commonName: hostname, sans: sans, days: days, issuer: ca)
        let client = try issue(kind: .ecdsaP256, role: .client, commonName: "edge-demo-client",
                               sans: ["URI:spiffe://\(hostname)/client"], days: days, issuer: ca)
        var written: [String] = []
        for (name, item) in [("ca", ca), ("server", server), ("server-rsa", serverRSA), ("client", client)] {
            try write(item, certPath: "\(dir)/\(name).pem", keyPath: "\(dir)/\(name).key")
            written += ["\(name).pem", "\(name).key"]
        }
        return written
    }

    static func issue(kind: KeyKind, role: Role, commonName: String, sans: [String], days: Int, issuer: Issued?) throws -> Issued {
        let generated: OpaquePointer?
        switch kind {
        case .ecdsaP256: generated = edge_EVP_EC_gen("P-256")
        case .rsa2048: generated = edge_EVP_RSA_gen(2048)
        }
        guard let key = generated else { throw Failure(description: "key generation failed: \(TLSServerContext.opensslError())") }
        guard let x = X509_new() else { EVP_PKEY_free(key); throw Failure(description: "out of memory") }
        let issued = Issued(key: key, cert: x)
        _ = X509_set_version(x, 2)
        var serial = [UInt8](repeating: 0, count: 16)
        _ = RAND_bytes(&serial, 16)
        serial[0] &= 0x7F  // positive
        if let bn = BN_bin2bn(serial, 16, nil) {
            _ = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))
            BN_free(bn)
        }
        _ = X509_gmtime_adj(X509_getm_notBefore(x), -3600)
        _ = X509_gmtime_adj(X509_getm_notAfter(x), days * 86400)
        _ = X509_set_pubkey(x, key)
        guard let name = X509_get_subject_name(x) else { throw Failure(description: "no subject") }
        _ = X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, "Edge", -1, -1, 0)
        _ = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, commonName, -1, -1, 0)
        let issuerCert = issuer?.cert ?? x
        _ = X509_set_issuer_name(x, X509_get_subject_name(issuerCert))
        var ctx = X509V3_CTX()
        X509V3_set_ctx(&ctx, issuerCert, x, nil, nil, 0)
        var extensions: [(Int32, String)] = []
        switch role {
        case .ca:
            extensions = [(NID_basic_constraints, "critical,CA:TRUE"), (NID_key_usage, "critical,keyCertSign,cRLSign"),
                          (NID_subject_key_identifier, "hash")]
        case .server:
            extensions = [(NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature,keyEncipherment"),
                          (NID_ext_key_usage, "serverAuth"), (NID_subject_key_identifier, "hash"), (NID_authority_key_identifier, "keyid")]
        case .client:
            extensions = [(NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature"),
                          (NID_ext_key_usage, "clientAuth"), (NID_subject_key_identifier, "hash"), (NID_authority_key_identifier, "keyid")]
        }
        if !sans.isEmpty { extensions.append((NID_subject_alt_name, sans.joined(separator: ","))) }
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &ctx, nid, value) else {
                throw Failure(description: "extension \(value): \(TLSServerContext.opensslError())")
            }
            _ = X509_add_ext(x, ext, -1)
            X509_EXTENSION_free(ext)
        }
        let signer = issuer?.key ?? key
        guard X509_sign(x, signer, EVP_sha256()) > 0 else { throw Failure(description: "signing failed: \(TLSServerContext.opensslError())") }
        return issued
    }

    static func write(_ item: Issued, certPath: String, keyPath: String) throws {
        guard let cb = BIO_new_file(certPath, "w") else { throw Failure(description: "cannot write \(certPath): \(FileManagerLite.lastError())") }
        defer { BIO_free(cb) }
        guard PEM_write_bio_X509(cb, item.cert) == 1 else { throw Failure(description: "cannot write \(certPath)") }
        // Private keys readable by the owner only.
        let fd = open(keyPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot write \(keyPath): \(FileManagerLite.lastError())") }
        close(fd)
        guard let kb = BIO_new_file(keyPath, "w") else { throw Failure(description: "cannot write \(keyPath)") }
        defer { BIO_free(kb) }
        guard PEM_write_bio_PrivateKey(kb, item.key, nil, nil, 0, nil, nil) == 1 else { throw Failure(description: "cannot write \(keyPath)") }
    }
}
