import Atomics
import CIOUring
import Glibc

/// The health checker's view of one endpoint of one cluster: active-check
/// streaks, the probe in progress, and outlier ejection. Touched only by the
/// health thread (and `HealthRegistry.configure`, under the registry lock).
final class EndpointTrack {
    let key: String
    let endpoint: String
    let cell: HealthCell
    var address = sockaddr_storage()
    var addressLength: socklen_t = 0
    var addressText = ""

    // Active checks.
    var down = false
    var consecutiveOK = 0
    var consecutiveFail = 0
    var nextDueMs: Int64 = 0
    var checksOK = 0
    var checksFailed = 0

    // The probe in flight (fd -1: none).
    enum Phase { case idle, connecting, reading }
    var fd: Int32 = -1
    var phase = Phase.idle
    var deadlineMs: Int64 = 0
    var startedMs: Int64 = 0
    var received: [UInt8] = []

    // Outlier ejection: 0 = not ejected.
    var ejectedUntilMs: Int64 = 0
    var timesEjected = 0
    var timesEjectedTotal = 0

    init(key: String, endpoint: String, cell: HealthCell) {
        self.key = key; self.endpoint = endpoint; self.cell = cell
    }

    func abortProbe() {
        if fd >= 0 { close(fd) }
        fd = -1
        phase = .idle
        received.removeAll(keepingCapacity: true)
    }

    /// Writes the state bits the reactors read.
    func publishState() {
        var bits: UInt32 = 0
        if down { bits |= EndpointHealth.checkFailed }
        if ejectedUntilMs > 0 { bits |= EndpointHealth.ejected }
        EndpointHealth.word(cell, EndpointHealth.stateWord).store(bits, ordering: .relaxed)
    }
}
