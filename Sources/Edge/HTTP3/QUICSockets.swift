import Glibc

/// The UDP sockets of `http3` listeners: one SO_REUSEPORT socket per worker on
/// the HTTPS port, opened in worker order so socket `w` of the reuseport group
/// is worker `w`'s. A classic BPF program on the group sends each datagram to
/// the worker named by the first byte of its destination connection id (Edge's
/// own ids carry the worker index there; a client's first random id lands on
/// `byte % workers`, which then becomes the connection's owner).
extension ListenerSet {
    func quicSockets(for listeners: [ListenerConfig]) throws -> [[Int32]] {
        var opened: [String: [Int32]] = [:]
        var next: [String: [Int32]] = [:]
        do {
            for l in listeners where l.http3.enabled {
                let key = l.address.text
                if let fds = quicByAddress[key] ?? opened[key] { next[key] = fds; continue }
                var fds: [Int32] = []
                do {
                    for _ in 0..<workers {
                        let fd = try ListenSocket.open(l.address, listener: l.name, datagram: true)
                        fds.append(fd)
                        // Bursts of Initials and GSO trains: room for a few thousand datagrams
                        // (the kernel caps this at net.core.rmem_max / wmem_max).
                        var bytes: Int32 = 4 << 20
                        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
                        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
                    }
                    QUICSteering.attach(fds[0], workers: workers)
                } catch {
                    for fd in fds { close(fd) }
                    throw error
                }
                opened[key] = fds
                next[key] = fds
            }
        } catch {
            for fds in opened.values { for fd in fds { close(fd) } }
            throw error
        }
        quicByAddress = next
        return (0..<workers).map { w in listeners.map { $0.http3.enabled ? (next[$0.address.text]?[w] ?? -1) : -1 } }
    }
}

/// SO_ATTACH_REUSEPORT_CBPF (unprivileged): the program's return value is the
/// index of the socket in the reuseport group. Out-of-range or failed loads
/// (a datagram shorter than the byte it reads) fall back to the kernel's hash.
/// `struct sock_filter` / `struct sock_fprog` of <linux/filter.h> (same layout).
struct BPFInstruction {
    var code: UInt16
    var jt: UInt8
    var jf: UInt8
    var k: UInt32
}

struct BPFProgram {
    var len: UInt16
    var filter: UnsafeMutablePointer<BPFInstruction>?
}

enum QUICSteering {
    private static let attachReuseportCBPF: Int32 = 51  // SO_ATTACH_REUSEPORT_CBPF

    /// The UDP payload starts at offset 0 for reuseport programs. Long header:
    /// flags(1) version(4) dcid_len(1) dcid → byte 6; short header: byte 1.
    static func program(workers: Int) -> [BPFInstruction] {
        let ldAbsB: UInt16 = 0x30, jset: UInt16 = 0x45, ja: UInt16 = 0x05, modK: UInt16 = 0x94, retA: UInt16 = 0x16
        return [
            BPFInstruction(code: ldAbsB, jt: 0, jf: 0, k: 0),
            BPFInstruction(code: jset, jt: 2, jf: 0, k: 0x80),
            BPFInstruction(code: ldAbsB, jt: 0, jf: 0, k: 1),
            BPFInstruction(code: ja, jt: 0, jf: 0, k: 1),
            BPFInstruction(code: ldAbsB, jt: 0, jf: 0, k: 6),
            BPFInstruction(code: modK, jt: 0, jf: 0, k: UInt32(max(workers, 1))),
            BPFInstruction(code: retA, jt: 0, jf: 0, k: 0),
        ]
    }

    @discardableResult
    static func attach(_ fd: Int32, workers: Int) -> Bool {
        var filters = program(workers: workers)
        return filters.withUnsafeMutableBufferPointer { b -> Bool in
            var prog = BPFProgram(len: UInt16(b.count), filter: b.baseAddress)
            return setsockopt(fd, SOL_SOCKET, attachReuseportCBPF, &prog, socklen_t(MemoryLayout<BPFProgram>.size)) == 0
        }
    }
}
