import COpenSSL

/// JWK → OpenSSL public keys (control thread, at compile). The `PolicySet`
/// owns the `EVP_PKEY`s and frees them with the snapshot.
enum JWTKeys {
    /// An `EVP_PKEY` for an RSA, EC or Ed25519 JWK; nil for oct (HMAC) keys or bad material.
    static func publicKey(_ k: JWKConfig) -> OpaquePointer? {
        switch k.kind {
        case .oct: return nil
        case .ed25519(let x):
            guard x.count == 32 else { return nil }
            return x.withUnsafeBufferPointer { EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) }
        case .rsa(let n, let e):
            return fromData("RSA") { bld in
                guard let bn = BN_bin2bn(n, Int32(n.count), nil), let be = BN_bin2bn(e, Int32(e.count), nil) else { return [] }
                guard OSSL_PARAM_BLD_push_BN(bld, "n", bn) == 1, OSSL_PARAM_BLD_push_BN(bld, "e", be) == 1 else { return [bn, be] }
                return [bn, be]
            }
        case .ec(let curve, let x, let y):
            let size = curve == "P-256" ? 32 : 48
            guard x.count == size, y.count == size else { return nil }
            // The builder copies pushed strings only in OSSL_PARAM_BLD_to_param: both must outlive fromData.
            let point = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1 + 2 * size)
            defer { point.deallocate() }
            point[0] = 4
            for i in 0..<size { point[1 + i] = x[i]; point[1 + size + i] = y[i] }
            let group: StaticString = curve == "P-256" ? "prime256v1" : "secp384r1"
            return fromData("EC") { bld in
                let g = UnsafeRawPointer(group.utf8Start).assumingMemoryBound(to: CChar.self)
                _ = OSSL_PARAM_BLD_push_utf8_string(bld, "group", g, 0)
                _ = OSSL_PARAM_BLD_push_octet_string(bld, "pub", point.baseAddress, point.count)
                return []
            }
        }
    }

    /// EVP_PKEY_fromdata over params pushed by `push` (which returns BIGNUMs to free after).
    private static func fromData(_ type: String, _ push: (OpaquePointer) -> [OpaquePointer]) -> OpaquePointer? {
        guard let bld = OSSL_PARAM_BLD_new() else { return nil }
        defer { OSSL_PARAM_BLD_free(bld) }
        let bns = push(bld)
        defer { for b in bns { BN_free(b) } }
        guard let params = OSSL_PARAM_BLD_to_param(bld) else { return nil }
        defer { OSSL_PARAM_free(params) }
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, type, nil) else { return nil }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer? = nil
        guard EVP_PKEY_fromdata_init(ctx) == 1, EVP_PKEY_fromdata(ctx, &pkey, edge_EVP_PKEY_PUBLIC_KEY(), params) == 1 else {
            ERR_clear_error()
            return nil
        }
        return pkey
    }

    static func free(_ k: OpaquePointer?) { if let k { EVP_PKEY_free(k) } }

    static func newDigestContext() -> OpaquePointer? { EVP_MD_CTX_new() }
    static func freeDigestContext(_ c: OpaquePointer?) { if let c { EVP_MD_CTX_free(c) } }
}

/// Signature checks (reactor thread, uncached tokens only). The digest
/// context is the worker's own; keys are shared read-only.
enum JWTVerify {
    static func digest(_ a: JWTAlgorithm) -> OpaquePointer? {
        switch a {
        case .hs256, .rs256, .ps256, .es256: return EVP_sha256()
        case .hs384, .rs384, .es384: return EVP_sha384()
        case .hs512, .rs512: return EVP_sha512()
        case .edDSA: return nil
        }
    }

    /// True when `signature` is valid for `input` under the key.
    static func verify(_ a: JWTAlgorithm, key: CompiledJWTKey, input: UnsafeRawBufferPointer, signature: UnsafeRawBufferPointer,
                       context: OpaquePointer?, scratch: UnsafeMutableRawBufferPointer) -> Bool {
        if a.isHMAC {
            guard let md = digest(a), let secret = key.secret.base, key.secret.count > 0, let out = scratch.baseAddress else { return false }
            var len: UInt32 = 0
            guard HMAC(md, secret, Int32(key.secret.count), input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
                       out.assumingMemoryBound(to: UInt8.self), &len) != nil else { return false }
            return Int(len) == signature.count && CRYPTO_memcmp(out, signature.baseAddress, signature.count) == 0
        }
        guard let pkey = key.pkey, let ctx = context else { return false }
        defer { EVP_MD_CTX_reset(ctx); ERR_clear_error() }
        var sig = signature
        if a == .es256 || a == .es384 {
            guard let der = ecdsaDER(signature, size: a == .es256 ? 32 : 48, into: scratch) else { return false }
            sig = der
        }
        var pctx: OpaquePointer? = nil
        guard EVP_DigestVerifyInit(ctx, &pctx, digest(a), nil, pkey) == 1 else { return false }
        if a == .ps256 {
            guard EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1,
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 else { return false }
        }
        return EVP_DigestVerify(ctx, sig.baseAddress?.assumingMemoryBound(to: UInt8.self), sig.count,
                                input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count) == 1
    }

    /// HMAC-SHA256 of `input` into `out` (32 bytes), for HMAC request signatures.
    static func hmacSHA256(_ key: StaticBytes, _ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Bool {
        guard let k = key.base, key.count > 0, out.count >= 32, let o = out.baseAddress else { return false }
        var len: UInt32 = 0
        guard HMAC(EVP_sha256(), k, Int32(key.count), input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
                   o.assumingMemoryBound(to: UInt8.self), &len) != nil else { return false }
        return len == 32
    }

    /// JWS ECDSA signatures are r||s; OpenSSL wants DER.
    private static func ecdsaDER(_ raw: UnsafeRawBufferPointer, size: Int, into out: UnsafeMutableRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard raw.count == 2 * size, let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self), out.count >= 2 * size + 16,
              let sig = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(sig) }
        guard let r = BN_bin2bn(base, Int32(size), nil) else { return nil }
        guard let s = BN_bin2bn(base + size, Int32(size), nil) else { BN_free(r); return nil }
        guard ECDSA_SIG_set0(sig, r, s) == 1 else { BN_free(r); BN_free(s); return nil }
        var p = out.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let n = i2d_ECDSA_SIG(sig, &p)
        guard n > 0, Int(n) <= out.count, let start = out.baseAddress else { return nil }
        return UnsafeRawBufferPointer(start: start, count: Int(n))
    }
}
