import Atomics
import CIOUring
import Glibc
import Logging

/// One thread for every active health check and for outlier ejection: all
/// probes are non-blocking sockets multiplexed with poll(2) (never a thread
/// per check). Every tick (≤ 10 ms) it starts due probes, times out slow ones,
/// reads results, applies ejection and publishes the state words.
final class HealthChecker: @unchecked Sendable {
    static let tickMs: Int32 = 10
    private let registry: HealthRegistry
    private let logger: Logger
    private let stopFlag = ManagedAtomic<Bool>(false)
    private var thread: pthread_t? = nil
    private var rng = SystemRandomNumberGenerator()

    init(registry: HealthRegistry = .shared, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    func start() {
        thread = WorkerThread.spawn(name: "edge-health") { [self] in self.run() }
    }

    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        if let t = thread { pthread_join(t, nil) }
        thread = nil
    }

    private func run() {
        var fds: [pollfd] = []
        var owners: [EndpointTrack] = []
        var ownerPlans: [ClusterPlan] = []
        while !stopFlag.load(ordering: .relaxed) {
            let plans = registry.withLock { registry.plans }
            var now = Reactor.monotonicMs()
            fds.removeAll(keepingCapacity: true)
            owners.removeAll(keepingCapacity: true)
            ownerPlans.removeAll(keepingCapacity: true)
            registry.withLock {
                for p in plans {
                    guard let check = p.check else { continue }
                    for t in p.endpoints {
                        if t.fd < 0 && now >= t.nextDueMs { startProbe(t, check, now) }
                        if t.fd >= 0 && now >= t.deadlineMs { finish(t, p, check, ok: false, now) }
                        if t.fd >= 0 {
                            fds.append(pollfd(fd: t.fd, events: Int16(t.phase == .connecting ? POLLOUT : POLLIN), revents: 0))
                            owners.append(t)
                            ownerPlans.append(p)
                        }
                    }
                }
            }
            let n = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), HealthChecker.tickMs) }
            if n < 0 && errno != EINTR { usleep(10_000) }
            if fds.isEmpty && n == 0 { /* nothing to check: poll slept one tick */ }
            now = Reactor.monotonicMs()
            registry.withLock {
                if n > 0 {
                    for (k, pfd) in fds.enumerated() where pfd.revents != 0 {
                        let t = owners[k], p = ownerPlans[k]
                        guard t.fd == pfd.fd, let check = p.check else { continue }
                        progress(t, p, check, now)
                    }
                }
                for p in plans where p.check != nil || p.outlier != nil {
                    OutlierEjection.apply(p, now: now, logger: logger)
                    p.publishMode()
                }
            }
        }
        registry.withLock { for p in registry.plans { for t in p.endpoints { t.abortProbe() } } }
    }

    // MARK: Probes

    private func startProbe(_ t: EndpointTrack, _ check: HealthCheckConfig, _ now: Int64) {
        t.abortProbe()
        t.startedMs = now
        t.deadlineMs = now + Int64(check.timeoutMs)
        let family = Int32(t.address.ss_family)
        guard family == AF_INET || family == AF_INET6 else {
            // Unresolved host name: counts as a failed check until DNS finds it.
            t.nextDueMs = now + Int64(check.intervalMs)
            record(t, check, ok: false)
            return
        }
        let type = check.kind == .udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { t.nextDueMs = now + Int64(check.intervalMs); return }
        t.fd = fd
        let rc = withUnsafePointer(to: &t.address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, t.addressLength) }
        }
        if check.kind == .udp {
            guard rc == 0, sendBytes(fd, Array(check.send.utf8)) else { t.phase = .reading; return }
            t.phase = .reading
            return
        }
        t.phase = .connecting
        if rc != 0 && errno != EINPROGRESS { t.deadlineMs = now }  // fails on the next pass
    }

    private func sendBytes(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) == $0.count }
    }

    private func progress(_ t: EndpointTrack, _ p: ClusterPlan, _ check: HealthCheckConfig, _ now: Int64) {
        switch t.phase {
        case .idle:
            return
        case .connecting:
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(t.fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { finish(t, p, check, ok: false, now); return }
            if check.kind == .tcp { finish(t, p, check, ok: true, now); return }
            let host = check.host.isEmpty ? t.addressText : check.host
            let request = "\(check.method) \(check.path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: edge-health-check\r\nConnection: close\r\n\r\n"
            guard sendBytes(t.fd, Array(request.utf8)) else { finish(t, p, check, ok: false, now); return }
            t.phase = .reading
        case .reading:
            var buf = [UInt8](repeating: 0, count: 512)
            let n = buf.withUnsafeMutableBytes { recv(t.fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { return }
                finish(t, p, check, ok: false, now)
                return
            }
            if check.kind == .udp {
                let reply = buf[0..<n]
                let want = Array(check.expect.utf8)
                finish(t, p, check, ok: want.isEmpty || reply.starts(with: want), now)
                return
            }
            if n == 0 { finish(t, p, check, ok: false, now); return }
            t.received.append(contentsOf: buf[0..<n])
            if let status = Self.statusCode(t.received) {
                finish(t, p, check, ok: check.expectStatus.contains { $0.contains(status) }, now)
            } else if t.received.count > 4096 {
                finish(t, p, check, ok: false, now)
            }
        }
    }

    /// Status of "HTTP/1.x NNN ..." once the status line has arrived; nil before.
    static func statusCode(_ b: [UInt8]) -> Int? {
        guard b.count >= 12, b.starts(with: Array("HTTP/1.".utf8)), b[8] == 0x20 else {
            return nil
        }
        var v = 0
        for i in 9..<12 {
            let d = Int(b[i]) - 48
            guard d >= 0 && d <= 9 else { return -1 }
            v = v * 10 + d
        }
        return v
    }

    private func finish(_ t: EndpointTrack, _ p: ClusterPlan, _ check: HealthCheckConfig, ok: Bool, _ now: Int64) {
        t.abortProbe()
        let jitter = check.jitterMs > 0 ? Int64.random(in: 0..<Int64(check.jitterMs), using: &rng) : 0
        t.nextDueMs = t.startedMs + Int64(check.intervalMs) + jitter
        record(t, check, ok: ok)
    }

    private func record(_ t: EndpointTrack, _ check: HealthCheckConfig, ok: Bool) {
        if ok {
            t.checksOK += 1
            t.consecutiveOK += 1
            t.consecutiveFail = 0
            if t.down && t.consecutiveOK >= check.healthyThreshold {
                t.down = false
                // A passing active check also ends an ejection (Envoy's default),
                // and failures counted while it was out must not eject it again.
                t.ejectedUntilMs = 0
                EndpointHealth.word(t.cell, EndpointHealth.consecutive5xxWord).store(0, ordering: .relaxed)
                EndpointHealth.word(t.cell, EndpointHealth.consecutiveConnectWord).store(0, ordering: .relaxed)
                logger.info("endpoint healthy", metadata: ["endpoint": "\(t.key)"])
            }
        } else {
            t.checksFailed += 1
            t.consecutiveFail += 1
            t.consecutiveOK = 0
            if !t.down && t.consecutiveFail >= check.unhealthyThreshold {
                t.down = true
                logger.warning("endpoint failed health checks", metadata: ["endpoint": "\(t.key)"])
            }
        }
        t.publishState()
    }
}
