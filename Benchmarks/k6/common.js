// Shared settings for the k6 scripts in this folder.
//   TARGET   base URL of the proxy under test (default http://127.0.0.1:8080)
//   DURATION test length (default 30s)
//   P99_MS   p99 latency threshold in milliseconds (default 1.5, the target)
export const TARGET = __ENV.TARGET || 'http://127.0.0.1:8080';
export const DURATION = __ENV.DURATION || '30s';
export const P99_MS = Number(__ENV.P99_MS || '1.5');

// Thresholds every scenario shares: p99 under P99_MS, (almost) no failures.
export function thresholds(p99Ms = P99_MS) {
  return {
    http_req_duration: [`p(99)<${p99Ms}`],
    http_req_failed: ['rate<0.001'],
    checks: ['rate>0.999'],
  };
}

export const summaryTrendStats = ['avg', 'min', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max'];
