import CIOUring
import Glibc

/// Starts a named OS thread. Reactors need real threads they can pin, not a
/// task pool; the body is @Sendable (Swift 6 traps on isolation otherwise).
enum WorkerThread {
    private final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t? {
        var tid = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            let b = Unmanaged<Box>.fromOpaque(arg).takeRetainedValue()
            b.body()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            return nil
        }
        _ = name.withCString { edge_set_thread_name(tid, $0) }
        return tid
    }

    /// CPUs this process may use (taskset, cgroup cpuset, systemd CPUAffinity=).
    static func allowedCPUs() -> [Int32] {
        var cpus = [Int32](repeating: 0, count: 1024)
        let n = edge_allowed_cpus(&cpus, 1024)
        if n <= 0 { return [] }
        return Array(cpus[0..<Int(n)])
    }
}
