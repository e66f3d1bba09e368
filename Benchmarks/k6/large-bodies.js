// Large response bodies: 16 KiB (64 VUs) and 1 MiB (16 VUs) in parallel
// scenarios, against the Benchmarks/run upstream (/16k, /1m).
//   k6 run -e TARGET=http://127.0.0.1:8080 Benchmarks/k6/large-bodies.js
import http from 'k6/http';
import { check } from 'k6';
import { TARGET, DURATION, summaryTrendStats } from './common.js';

export const options = {
  discardResponseBodies: true,
  scenarios: {
    body16k: { executor: 'constant-vus', vus: 64, duration: DURATION, env: { ROUTE: '/16k', BODY_SIZE: '16384' } },
    body1m: { executor: 'constant-vus', vus: 16, duration: DURATION, env: { ROUTE: '/1m', BODY_SIZE: '1048576' } },
  },
  thresholds: {
    'http_req_duration{scenario:body16k}': [`p(99)<${__ENV.P99_16K_MS || 5}`],
    'http_req_duration{scenario:body1m}': [`p(99)<${__ENV.P99_1M_MS || 50}`],
    http_req_failed: ['rate<0.001'],
    checks: ['rate>0.999'],
  },
  summaryTrendStats,
};

export default function () {
  const res = http.get(`${TARGET}${__ENV.ROUTE}`);
  check(res, {
    'status 200': (r) => r.status === 200,
    'full body': (r) => Number(r.headers['Content-Length'] || __ENV.BODY_SIZE) === Number(__ENV.BODY_SIZE),
  });
}
