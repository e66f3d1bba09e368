// Latency at a fixed arrival rate (what wrk/latency-at-rate.lua approximates):
// k6's constant-arrival-rate executor starts RATE iterations per second no
// matter how slow responses are (no coordinated omission), adding VUs up to
// MAX_VUS when needed. The p99 threshold is the target (1.5 ms).
//   k6 run -e TARGET=http://127.0.0.1:8080 -e RATE=20000 Benchmarks/k6/latency-at-rate.js
import http from 'k6/http';
import { check } from 'k6';
import { TARGET, DURATION, thresholds, summaryTrendStats } from './common.js';

export const options = {
  scenarios: {
    at_rate: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 20000),
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: Number(__ENV.VUS || 64),
      maxVUs: Number(__ENV.MAX_VUS || 512),
    },
  },
  thresholds: {
    ...thresholds(),
    dropped_iterations: ['count<1'],
  },
  summaryTrendStats,
};

export default function () {
  const res = http.get(`${TARGET}/`);
  check(res, { 'status 200': (r) => r.status === 200 });
}
