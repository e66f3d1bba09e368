// Mixed routes (wrk: mixed-routes.lua): 3 x "/" for every "/16k", 64 VUs.
// PATHS overrides the mix: -e PATHS=/,/,/api/users,/16k
//   k6 run -e TARGET=http://127.0.0.1:8080 Benchmarks/k6/mixed-routes.js
import http from 'k6/http';
import { check } from 'k6';
import { TARGET, DURATION, thresholds, summaryTrendStats } from './common.js';

const paths = (__ENV.PATHS || '/,/,/,/16k').split(',');

export const options = {
  vus: Number(__ENV.VUS || 64),
  duration: DURATION,
  thresholds: thresholds(Number(__ENV.P99_MS || 3)),
  summaryTrendStats,
};

export default function () {
  const path = paths[(__ITER + __VU) % paths.length];
  const res = http.get(`${TARGET}${path}`, { tags: { route: path } });
  check(res, { 'status 200': (r) => r.status === 200 });
}
