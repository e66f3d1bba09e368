import Atomics
import COpenSSL
import Glibc

/// Session ticket keys: generated in-process, shared by every worker and
/// every listener, kept across reloads (they live here, outside any config
/// snapshot, so a reload never invalidates the tickets clients hold), and
/// rotated every `rotationSeconds`. Three keys are live: new tickets use the
/// newest; tickets under the two older ones still resume (and get a fresh
/// ticket), so a ticket stays usable for two to three rotation periods.
///
/// Rotation happens lazily inside the ticket callback: the first handshake
/// after the deadline claims the rotation with a compare-and-swap and writes
/// the oldest slot, which no new ticket uses. A handshake reading that slot at
/// the same moment fails the ticket's HMAC and falls back to a full handshake.
enum TicketKeys {
    static let rotationSeconds: Int64 = 12 * 3600
    private static let slots = 3
    /// Per slot: name (16) | HMAC-SHA256 key (32) | AES-256 key (32).
    private static let keyBytes = 80

    nonisolated(unsafe) private static let storage: UnsafeMutableRawPointer = {
        let p = UnsafeMutableRawPointer.allocate(byteCount: slots * keyBytes, alignment: 16)
        for s in 0..<slots { fill(p + s * keyBytes) }
        return p
    }()
    /// Slot `epoch % slots` encrypts new tickets.
    private static let epoch = UnsafeAtomic<Int>.create(0)
    private static let rotating = UnsafeAtomic<Bool>.create(false)
    private static let nextRotation = UnsafeAtomic<Int>.create(Int(now() + rotationSeconds))
    /// Fetched once: no EVP fetch (and its locks) per handshake.
    nonisolated(unsafe) private static let cipher: OpaquePointer? = EVP_CIPHER_fetch(nil, "AES-256-CBC", nil)

    /// Set when the RNG failed: no ticket is issued or accepted from then on.
    private static let broken = UnsafeAtomic<Bool>.create(false)

    private static func fill(_ p: UnsafeMutableRawPointer) {
        if RAND_bytes(p.assumingMemoryBound(to: UInt8.self), Int32(keyBytes)) != 1 {
            // No entropy: a guessable key must never seal or open a ticket.
            memset(p, 0, keyBytes)
            broken.store(true, ordering: .releasing)
        }
    }

    private static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return Int64(ts.tv_sec)
    }

    /// Installs the shared keys on a server context (control thread, at build).
    static func install(on ctx: OpaquePointer) {
        _ = storage
        _ = SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, callback)
    }

    private static func rotateIfDue() {
        let t = now()
        guard t >= Int64(nextRotation.load(ordering: .relaxed)) else { return }
        guard rotating.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        let e = epoch.load(ordering: .relaxed) + 1
        fill(storage + (e % slots) * keyBytes)
        epoch.store(e, ordering: .releasing)
        nextRotation.store(Int(t + rotationSeconds), ordering: .relaxed)
        rotating.store(false, ordering: .releasing)
    }

    /// OpenSSL's ticket callback: enc=1 seal a new ticket with the newest key;
    /// enc=0 find the key a ticket names (1 = current, 2 = older: renew, 0 = unknown).
    private static let callback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?,
                                                 OpaquePointer?, OpaquePointer?, Int32) -> Int32 = { _, name, iv, cctx, hctx, enc in
        guard let name, let iv, let cctx, let hctx, let cipher = TicketKeys.cipher else { return -1 }
        if TicketKeys.broken.load(ordering: .acquiring) { return enc == 1 ? -1 : 0 }
        if enc == 1 {
            TicketKeys.rotateIfDue()
            let key = TicketKeys.storage + (TicketKeys.epoch.load(ordering: .acquiring) % TicketKeys.slots) * TicketKeys.keyBytes
            name.update(from: key.assumingMemoryBound(to: UInt8.self), count: 16)
            guard RAND_bytes(iv, 16) == 1,
                  EVP_EncryptInit_ex(cctx, cipher, nil, (key + 48).assumingMemoryBound(to: UInt8.self), iv) == 1,
                  TicketKeys.initMAC(hctx, key + 16) else { return -1 }
            return 1
        }
        let current = TicketKeys.epoch.load(ordering: .acquiring)
        for age in 0..<TicketKeys.slots {
            let key = TicketKeys.storage + ((current - age + TicketKeys.slots * 4) % TicketKeys.slots) * TicketKeys.keyBytes
            guard memcmp(key, name, 16) == 0 else { continue }
            guard TicketKeys.initMAC(hctx, key + 16),
                  EVP_DecryptInit_ex(cctx, cipher, nil, (key + 48).assumingMemoryBound(to: UInt8.self), iv) == 1 else { return -1 }
            return age == 0 ? 1 : 2
        }
        return 0
    }

    private static func initMAC(_ hctx: OpaquePointer, _ key: UnsafeMutableRawPointer) -> Bool {
        let keyName: StaticString = "key", digestName: StaticString = "digest", sha256: StaticString = "SHA256"
        // On the stack: nothing allocated per handshake for the parameters.
        return withUnsafeTemporaryAllocation(of: OSSL_PARAM.self, capacity: 3) { params in
            params[0] = OSSL_PARAM_construct_octet_string(UnsafeRawPointer(keyName.utf8Start).assumingMemoryBound(to: CChar.self), key, 32)
            params[1] = OSSL_PARAM_construct_utf8_string(UnsafeRawPointer(digestName.utf8Start).assumingMemoryBound(to: CChar.self),
                                                         UnsafeMutablePointer(mutating: UnsafeRawPointer(sha256.utf8Start).assumingMemoryBound(to: CChar.self)), 0)
            params[2] = OSSL_PARAM_construct_end()
            return EVP_MAC_CTX_set_params(hctx, params.baseAddress) == 1
        }
    }
}
