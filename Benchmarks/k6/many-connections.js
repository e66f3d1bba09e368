// 1,000 concurrent keep-alive connections (wrk: -c1000). k6 needs about
// 1 MB of RAM per VU; raise `ulimit -n` first. p99 threshold defaults to 50 ms
// (1,000 requests in flight on one worker queue behind each other).
//   ulimit -n 65536; k6 run -e TARGET=http://127.0.0.1:8080 Benchmarks/k6/many-connections.js
import http from 'k6/http';
import { check } from 'k6';
import { TARGET, DURATION, thresholds, summaryTrendStats } from './common.js';

export const options = {
  scenarios: {
    many: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: '5s', target: Number(__ENV.VUS || 1000) },
        { duration: DURATION, target: Number(__ENV.VUS || 1000) },
      ],
      gracefulRampDown: '2s',
    },
  },
  thresholds: thresholds(Number(__ENV.P99_MS || 50)),
  summaryTrendStats,
};

export default function () {
  const res = http.get(`${TARGET}/`);
  check(res, { 'status 200': (r) => r.status === 200 });
}
