import CIOUring
import Glibc
import Logging

/// Process resource limits Edge needs before it opens sockets: one file
/// descriptor per client connection, upstream connection and pipe end.
enum ResourceLimits {
    /// Below this many descriptors a busy proxy runs out; we warn.
    static let recommendedFileLimit: rlim_t = 65536

    /// Raises the RLIMIT_NOFILE soft limit to the hard limit (or to
    /// `fs.nr_open` when the hard limit is unlimited) and returns the soft
    /// limit now in force. Logs a warning when it stays below 65536.
    @discardableResult
    static func raiseFileLimit(logger: Logger) -> rlim_t {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var lim = rlimit()
        guard getrlimit(resource, &lim) == 0 else {
            logger.warning("cannot read the open-file limit (RLIMIT_NOFILE): \(String(cString: strerror(errno)))")
            return 0
        }
        let before = lim.rlim_cur
        var target = lim.rlim_max
        // rlim_t.max is RLIM_INFINITY (the C macro does not import).
        if target == rlim_t.max { target = nrOpen() ?? 1_048_576 }
        if lim.rlim_cur < target {
            var want = lim
            want.rlim_cur = target
            if setrlimit(resource, &want) == 0 {
                lim.rlim_cur = target
            } else {
                logger.warning("cannot raise the open-file limit from \(before) to \(target): \(String(cString: strerror(errno)))")
            }
        }
        if lim.rlim_cur < recommendedFileLimit {
            logger.warning("""
                open-file limit is \(lim.rlim_cur) (hard limit \(lim.rlim_max)); Edge needs one per connection. \
                Raise it to at least \(recommendedFileLimit): run `ulimit -n 65536` before starting edge, \
                or set LimitNOFILE=65536 in the systemd unit
                """)
        } else if lim.rlim_cur != before {
            logger.debug("raised open-file limit", metadata: ["from": "\(before)", "to": "\(lim.rlim_cur)"])
        }
        return lim.rlim_cur
    }

    /// `/proc/sys/fs/nr_open`: the most a process may ask for.
    private static func nrOpen() -> rlim_t? {
        guard let text = try? ConfigLoader.readFile("/proc/sys/fs/nr_open") else { return nil }
        return rlim_t(text.trimmingSpaces().filter { $0 != "\n" })
    }
}
