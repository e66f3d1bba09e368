import Glibc

// The one place that knows how a sockaddr_storage holds an IP socket address
// (what accept/getpeername/getsockname/recvfrom/getaddrinfo fill in, and what
// the config parser builds). Linux layout: the family at offset 0 and the port
// (network order) at offset 2 in sockaddr_in and sockaddr_in6 alike; the
// address at offset 4 (sin_addr, 4 bytes) or 8 (sin6_addr, 16 bytes).
// Nothing here allocates; it reads the bytes in place.
// (`SocketAddress` in Config/ConfigModel.swift is the config's address: this
// storage plus the text the user wrote.)

extension sockaddr_storage {
    /// Parses an IP literal with inet_pton (`192.0.2.1`, `2001:db8::1`; no
    /// brackets) into an address with the host-order `port`; nil if `text` is
    /// not an address of the family (AF_INET or AF_INET6).
    init?(parsing text: String, family: Int32, port: UInt16) {
        self.init()
        let offset = family == AF_INET6 ? 8 : 4
        guard family == AF_INET || family == AF_INET6 else { return nil }
        let ok = withUnsafeMutableBytes(of: &self) { raw in
            text.withCString { inet_pton(family, $0, raw.baseAddress.unsafelyUnwrapped + offset) }
        }
        guard ok == 1 else { return nil }
        ss_family = sa_family_t(family)
        self.port = port
    }

    /// AF_INET, AF_INET6, or what else the kernel or the config put there
    /// (AF_UNSPEC for an endpoint whose host name did not resolve).
    @inline(__always) var family: Int32 { Int32(ss_family) }

    /// Port in host byte order. Also kept for AF_UNSPEC (an unresolved
    /// endpoint remembers its port there); 0 for other families.
    var port: UInt16 {
        get {
            guard family == AF_INET || family == AF_INET6 || family == AF_UNSPEC else { return 0 }
            return withUnsafeBytes(of: self) { UInt16(bigEndian: $0.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) }
        }
        set {
            withUnsafeMutableBytes(of: &self) { $0.storeBytes(of: newValue.bigEndian, toByteOffset: 2, as: UInt16.self) }
        }
    }

    /// Size of the family's sockaddr (what connect/bind/sendto take): 16 for
    /// IPv4, 28 for IPv6, 0 otherwise.
    var socketLength: socklen_t {
        switch family {
        case AF_INET: return socklen_t(MemoryLayout<sockaddr_in>.size)
        case AF_INET6: return socklen_t(MemoryLayout<sockaddr_in6>.size)
        default: return 0
        }
    }

    /// The address as two words for hashing and comparing, in the encoding of
    /// `ProxyAddress.source`: IPv4 is (0, the 4 bytes), IPv6 its two halves
    /// (bytes as they lie in memory, loaded natively); (0, 0) for other families.
    var addressKey: (UInt64, UInt64) {
        withUnsafeBytes(of: self) { raw in
            switch Int32(raw.load(as: sa_family_t.self)) {
            case AF_INET: return (0, UInt64(raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            case AF_INET6: return (raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            default: return (0, 0)
            }
        }
    }

    /// The address bytes (4 or 16, network order) and host-order port inside
    /// the bytes of a sockaddr_storage; nil unless IPv4 or IPv6. The address
    /// points into `raw`.
    static func ipAddress(in raw: UnsafeRawBufferPointer) -> (address: UnsafeRawBufferPointer, port: UInt16)? {
        guard raw.count >= MemoryLayout<sockaddr_in6>.size, let base = raw.baseAddress else { return nil }
        let family = Int32(base.load(as: sa_family_t.self))
        let port = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        if family == AF_INET { return (UnsafeRawBufferPointer(start: base + 4, count: 4), port) }
        if family == AF_INET6 { return (UnsafeRawBufferPointer(start: base + 8, count: 16), port) }
        return nil
    }

    /// Writes the address as inet_ntop prints it (`192.0.2.1`, `2001:db8::1`,
    /// `::ffff:192.0.2.1`; no brackets, no port) into `dst` and returns its
    /// length (a NUL follows). 0 if the family is not IPv4/IPv6 or `dst` is
    /// too small (INET6_ADDRSTRLEN, 46 bytes, holds any address).
    func writeIPText(into dst: UnsafeMutableRawBufferPointer) -> Int {
        guard let out = dst.baseAddress, dst.count > 0 else { return 0 }
        return withUnsafeBytes(of: self) { raw -> Int in
            guard let (address, _) = Self.ipAddress(in: raw) else { return 0 }
            let text = out.assumingMemoryBound(to: CChar.self)
            guard inet_ntop(family, address.baseAddress, text, socklen_t(dst.count)) != nil else { return 0 }
            return strlen(text)
        }
    }
}
