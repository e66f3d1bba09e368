/// `Authorization: HMAC key_id="alice", signature="<base64>"` (optional
/// `algorithm="hmac-sha256"`) and the IMF-fixdate `Date` it signs. Pure byte
/// parsing, no allocation; fuzzed (Fuzz/FuzzHMAC), no input traps.
struct HMACCredentials {
    var keyID: UnsafeRawBufferPointer
    var signature: UnsafeRawBufferPointer

    /// nil unless the value is the HMAC scheme with exactly one key_id and one signature.
    static func parse(_ v: UnsafeRawBufferPointer) -> HMACCredentials? {
        guard v.count > 5, let base = v.baseAddress else { return nil }
        guard PolicyHash.hasPrefixIgnoringCase(v, "hmac ") else { return nil }
        var keyID: UnsafeRawBufferPointer? = nil, signature: UnsafeRawBufferPointer? = nil
        var i = 5
        while i < v.count {
            while i < v.count && (v[i] == 0x20 || v[i] == UInt8(ascii: ",")) { i += 1 }
            if i >= v.count { break }
            let nameStart = i
            while i < v.count && v[i] != UInt8(ascii: "=") && v[i] != 0x20 && v[i] != UInt8(ascii: ",") { i += 1 }
            let name = UnsafeRawBufferPointer(start: base + nameStart, count: i - nameStart)
            guard i < v.count, v[i] == UInt8(ascii: "=") else { return nil }
            i += 1
            var value: UnsafeRawBufferPointer
            if i < v.count && v[i] == UInt8(ascii: "\"") {
                let s = i + 1
                var e = s
                while e < v.count && v[e] != UInt8(ascii: "\"") { e += 1 }
                guard e < v.count else { return nil }
                value = UnsafeRawBufferPointer(start: base + s, count: e - s)
                i = e + 1
            } else {
                let s = i
                while i < v.count && v[i] != UInt8(ascii: ",") && v[i] != 0x20 { i += 1 }
                value = UnsafeRawBufferPointer(start: base + s, count: i - s)
            }
            guard value.count > 0 else { return nil }
            if JWTClaims.named(name, "key_id") {
                guard keyID == nil else { return nil }
                keyID = value
            } else if JWTClaims.named(name, "signature") {
                guard signature == nil else { return nil }
                signature = value
            } else if JWTClaims.named(name, "algorithm") {
                guard JWTClaims.named(value, "hmac-sha256") else { return nil }
            } else {
                return nil
            }
        }
        guard let keyID, let signature else { return nil }
        return HMACCredentials(keyID: keyID, signature: signature)
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` → seconds since 1970; nil for anything else.
    static func imfDate(_ d: UnsafeRawBufferPointer) -> Int64? {
        guard d.count == 29, d[3] == UInt8(ascii: ","), d[4] == 0x20, d[7] == 0x20, d[11] == 0x20, d[16] == 0x20,
              d[19] == UInt8(ascii: ":"), d[22] == UInt8(ascii: ":"), d[25] == 0x20,
              d[26] == UInt8(ascii: "G"), d[27] == UInt8(ascii: "M"), d[28] == UInt8(ascii: "T") else { return nil }
        func num(_ at: Int, _ n: Int) -> Int64? {
            var v: Int64 = 0
            for k in at..<(at + n) {
                guard d[k] >= UInt8(ascii: "0") && d[k] <= UInt8(ascii: "9") else { return nil }
                v = v * 10 + Int64(d[k] - UInt8(ascii: "0"))
            }
            return v
        }
        let month: Int64
        switch UInt32(d[8]) << 16 | UInt32(d[9]) << 8 | UInt32(d[10]) {
        case 0x4A616E: month = 1   // Jan
        case 0x466562: month = 2   // Feb
        case 0x4D6172: month = 3   // Mar
        case 0x417072: month = 4   // Apr
        case 0x4D6179: month = 5   // May
        case 0x4A756E: month = 6   // Jun
        case 0x4A756C: month = 7   // Jul
        case 0x417567: month = 8   // Aug
        case 0x536570: month = 9   // Sep
        case 0x4F6374: month = 10  // Oct
        case 0x4E6F76: month = 11  // Nov
        case 0x446563: month = 12  // Dec
        default: return nil
        }
        guard let day = num(5, 2), let year = num(12, 4), let hh = num(17, 2), let mm = num(20, 2), let ss = num(23, 2),
              (1...31).contains(day), year >= 1970, hh < 24, mm < 60, ss < 61 else { return nil }
        // Days from civil (Howard Hinnant), for the proleptic Gregorian calendar.
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + hh * 3600 + mm * 60 + ss
    }
}

/// Drives the HMAC header and date parsers over arbitrary bytes for
/// Fuzz/FuzzHMAC; returns the broken invariant, nil when all hold.
package enum HMACParserCheck {
    package static func check(_ bytes: UnsafeRawBufferPointer) -> String? {
        if let c = HMACCredentials.parse(bytes), let b = bytes.baseAddress {
            for r in [c.keyID, c.signature] {
                guard let p = r.baseAddress, r.count > 0, p >= b, p + r.count <= b + bytes.count else { return "range outside the header" }
            }
        }
        if let t = HMACCredentials.imfDate(bytes), t < 0 { return "date before 1970" }
        return nil
    }
}
