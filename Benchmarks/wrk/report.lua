-- Shared wrk reporter: prints one machine-readable line after the run,
--   EDGE_RESULT {"requests":N, "duration_us":N, "bytes":N, "p50_us":N, ..., "p999_us":N, ...}
-- with the percentiles wrk's --latency table lacks (99.9%). Used alone
-- (`wrk -s Benchmarks/wrk/report.lua ...`) or loaded by the other scripts here
-- through dofile(); Benchmarks/lib/bench.py parses the line.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'EDGE_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"mean_us":%.1f,"stdev_us":%.1f,"min_us":%d,"max_us":%d,' ..
      '"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"p9999_us":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.min, latency.max,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency:percentile(99.99)))
end
