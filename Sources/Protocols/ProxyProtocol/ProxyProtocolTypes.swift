// Types of the PROXY protocol codec (HAProxy's proxy-protocol.txt, v1 text and
// v2 binary). Plain values only: the reactor keeps them in connection slabs with
// no ARC traffic, and nothing here allocates.

/// Which header format a peer sent, or which one to send.
public enum ProxyProtocolVersion: UInt8, Sendable {
    case v1 = 1
    case v2 = 2
}

/// The addresses a PROXY header carries.
///
/// Address layout (both `source` and `destination`):
/// - `family == 6`: the 16 address bytes in network order as two big-endian
///   halves: `.0` = bytes 0...7, `.1` = bytes 8...15, i.e. byte `i` is
///   `UInt8(truncatingIfNeeded: (i < 8 ? .0 : .1) >> (56 - 8 * (i % 8)))`.
///   `2001:db8::1` is `(0x2001_0db8_0000_0000, 0x0000_0000_0000_0001)`.
/// - `family == 4`: `.0 == 0` and the 4 address bytes are the low 32 bits of `.1`,
///   read big-endian: `a.b.c.d` is `.1 == UInt64(a) << 24 | b << 16 | c << 8 | d`
///   (the first byte on the wire is the most significant; the same place the
///   bytes would occupy as bytes 12...15 of a 16-byte address).
///   `192.0.2.1` is `(0, 0xC000_0201)`.
/// - `family == 0` (v1 `UNKNOWN`, v2 `LOCAL`, v2 `PROXY` with `AF_UNSPEC`): no
///   address was conveyed; the caller uses the socket's own endpoints. All other
///   fields are zero.
/// Ports are in host order.
public struct ProxyAddress: Sendable, Equatable {
    public var family: UInt8
    public var source: (UInt64, UInt64)
    public var destination: (UInt64, UInt64)
    public var sourcePort: UInt16
    public var destinationPort: UInt16

    @inlinable
    public init(family: UInt8, source: (UInt64, UInt64), destination: (UInt64, UInt64),
                sourcePort: UInt16, destinationPort: UInt16) {
        self.family = family
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    /// No address conveyed (v1 `UNKNOWN`, v2 `LOCAL`).
    public static var unspecified: ProxyAddress {
        ProxyAddress(family: 0, source: (0, 0), destination: (0, 0), sourcePort: 0, destinationPort: 0)
    }

    @inlinable
    public static func == (a: ProxyAddress, b: ProxyAddress) -> Bool {
        a.family == b.family && a.sourcePort == b.sourcePort && a.destinationPort == b.destinationPort
            && a.source.0 == b.source.0 && a.source.1 == b.source.1
            && a.destination.0 == b.destination.0 && a.destination.1 == b.destination.1
    }
}

/// Outcome of one parse attempt over the bytes received so far.
public enum ProxyHeaderResult: Sendable, Equatable {
    /// Every byte so far is a prefix of some valid header: read more.
    case incomplete
    /// A whole header: consume `length` bytes; what follows is the payload.
    case complete(length: Int, version: ProxyProtocolVersion, address: ProxyAddress)
    /// Not a valid PROXY header (reported as soon as the bytes prove it). Close the connection.
    case invalid(StaticString)

    /// Compares reasons by bytes (identical literals need not share storage); never allocates.
    public static func == (a: ProxyHeaderResult, b: ProxyHeaderResult) -> Bool {
        switch (a, b) {
        case (.incomplete, .incomplete):
            return true
        case let (.complete(l1, v1, a1), .complete(l2, v2, a2)):
            return l1 == l2 && v1 == v2 && a1 == a2
        case let (.invalid(r1), .invalid(r2)):
            return r1.withUTF8Buffer { x in
                r2.withUTF8Buffer { y in
                    guard x.count == y.count else { return false }
                    var i = 0
                    while i < x.count {
                        if x[i] != y[i] { return false }
                        i += 1
                    }
                    return true
                }
            }
        default:
            return false
        }
    }
}
