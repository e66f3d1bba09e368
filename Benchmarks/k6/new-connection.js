// A new TCP connection per request (wrk: -H 'Connection: close'), 64 VUs.
// p99 threshold is looser by default (handshake + accept on every request).
//   k6 run -e TARGET=http://127.0.0.1:8080 Benchmarks/k6/new-connection.js
import http from 'k6/http';
import { check } from 'k6';
import { TARGET, DURATION, thresholds, summaryTrendStats } from './common.js';

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: DURATION,
  noConnectionReuse: true,
  thresholds: thresholds(Number(__ENV.P99_MS || 3)),
  summaryTrendStats,
};

export default function () {
  const res = http.get(`${TARGET}/`, { headers: { Connection: 'close' } });
  check(res, { 'status 200': (r) => r.status === 200 });
}
