/// What a completion belongs to, packed into the 64-bit io_uring user_data:
/// op (8 bits) | socket slot (32 bits) | slot generation (24 bits).
enum Op: UInt8 {
    case accept = 1, recv, send, connect, cancel, pollIn, pollOut, udpRead
}

struct UserData {
    @inline(__always) static func make(_ op: Op, _ slot: Int32, _ gen: UInt32) -> UInt64 {
        UInt64(op.rawValue) | (UInt64(UInt32(bitPattern: slot)) << 8) | (UInt64(gen & 0xFF_FFFF) << 40)
    }
    @inline(__always) static func op(_ v: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: v) }
    @inline(__always) static func slot(_ v: UInt64) -> Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: v >> 8)) }
    @inline(__always) static func gen(_ v: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: v >> 40) & 0xFF_FFFF }
}
