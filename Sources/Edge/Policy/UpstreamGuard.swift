import Glibc

/// Upstream address guard: an endpoint that is (or resolves at load to) a
/// link-local or cloud-metadata address (169.254.0.0/16 — including
/// 169.254.169.254 —, fe80::/10, fd00:ec2::254) is refused unless the cluster
/// sets `allow_metadata_addresses: true`, so a config mistake or a hostile DNS
/// answer at load cannot point a route at instance credentials. (Addresses a
/// later `dns_refresh` resolves are not re-checked yet.)
extension ConfigLoader {
    static func checkMetadataGuard(_ c: ClusterConfig, _ m: ConfigMapping) throws(ConfigError) {
        guard !c.allowMetadataAddresses else { return }
        let items = (try? m.required("endpoints").list()) ?? []
        for (i, e) in c.endpoints.enumerated() where isMetadataAddress(e.address) {
            let at = i < items.count ? items[i] : m.owner
            throw at.error("endpoint \(e.address.text) is a link-local / cloud-metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254); "
                + "set 'allow_metadata_addresses: true' on cluster '\(c.name)' if that is intended")
        }
    }

    static func isMetadataAddress(_ a: SocketAddress) -> Bool {
        var s = a.storage
        return withUnsafeBytes(of: &s) { raw -> Bool in
            guard let (ip, _) = sockaddr_storage.ipAddress(in: raw) else { return false }
            if ip.count == 4 { return ip[0] == 169 && ip[1] == 254 }
            guard ip.count == 16 else { return false }
            if ip[0] == 0xFE && ip[1] & 0xC0 == 0x80 { return true }
            // IPv4-mapped ::ffff:169.254.x.y
            if ip[0..<10].allSatisfy({ $0 == 0 }) && ip[10] == 0xFF && ip[11] == 0xFF { return ip[12] == 169 && ip[13] == 254 }
            let ec2: [UInt8] = [0xFD, 0x00, 0x0E, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54]
            return ip.elementsEqual(ec2)
        }
    }
}
