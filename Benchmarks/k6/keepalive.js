// HTTP/1.1 keep-alive, 64 virtual users each reusing one connection (wrk: -c64).
//   k6 run -e TARGET=http://127.0.0.1:8080 Benchmarks/k6/keepalive.js
import http from 'k6/http';
import { check } from 'k6';
import { TARGET, DURATION, thresholds, summaryTrendStats } from './common.js';

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: DURATION,
  thresholds: thresholds(),
  summaryTrendStats,
};

export default function () {
  const res = http.get(`${TARGET}/`);
  check(res, { 'status 200': (r) => r.status === 200 });
}
