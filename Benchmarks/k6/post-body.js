// POST with a 16 KiB body (wrk: post-body.lua), 64 VUs.
//   k6 run -e TARGET=http://127.0.0.1:8080 -e SIZE=16384 Benchmarks/k6/post-body.js
import http from 'k6/http';
import { check } from 'k6';
import { TARGET, DURATION, thresholds, summaryTrendStats } from './common.js';

const body = 'x'.repeat(Number(__ENV.SIZE || 16384));

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: DURATION,
  thresholds: thresholds(Number(__ENV.P99_MS || 5)),
  summaryTrendStats,
};

export default function () {
  const res = http.post(`${TARGET}/`, body, { headers: { 'Content-Type': 'application/octet-stream' } });
  check(res, { 'status 200': (r) => r.status === 200 });
}
