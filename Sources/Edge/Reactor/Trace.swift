import CIOUring
import Glibc

/// Debug tracing for reactor development: compiled out of release builds.
@inline(__always) func trace(_ s: @autoclosure () -> String) {
    #if DEBUG || EDGE_TRACE_BUILD
    if traceEnabled { let line = s() + "\n"; _ = line.withCString { write(2, $0, strlen($0)) } }
    #endif
}
let traceEnabled = getenv("EDGE_TRACE") != nil
