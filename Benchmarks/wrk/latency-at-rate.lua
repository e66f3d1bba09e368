-- Latency at a fixed request rate (approximation; wrk has no rate mode).
--   wrk -t1 -c64 -d20s --timeout 2s -s Benchmarks/wrk/latency-at-rate.lua URL -- RATE CONNS
-- RATE  = target requests/s for the whole run (default 10000)
-- CONNS = the -c value you passed (wrk does not tell Lua; default 64)
--
-- How: every connection waits delay() = CONNS/RATE seconds before each
-- request, so the offered load is about RATE as long as responses come back
-- faster than that. wrk's timer has whole-millisecond resolution, so the
-- delay is randomly rounded down or up with the right odds: the average is
-- exact and connections drift out of lockstep. CONNS/RATE must be >= 1 ms
-- (e.g. 64 connections for up to 64k req/s); use more connections otherwise.
-- wrk starts the delay when the previous response has arrived, so the real
-- rate is CONNS / (delay + latency): at sub-millisecond latencies expect
-- 5-20% below RATE (e.g. ~16k for RATE=20000 with 64 connections and 0.6 ms).
-- Caveat: like wrk (not wrk2), latency is measured from when the request is
-- sent, not from when it was due, so a stalled server slows the sender down
-- (coordinated omission) and p99 looks better than what users would see.
-- Compare "Requests/sec" with RATE: if it is lower, the target was not reached.
-- Prints EDGE_RESULT (report.lua).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local base_ms, frac = 6, 0

function init(args)
   local rate = tonumber(args[1]) or 10000
   local conns = tonumber(args[2]) or 64
   local interval = 1000 * conns / rate
   if interval < 1 then
      io.write(string.format("latency-at-rate: %d conns cannot offer %d req/s (needs >= 1 ms per request per connection)\n", conns, rate))
      interval = 1
   end
   base_ms = math.floor(interval)
   frac = interval - base_ms
end

function delay()
   if math.random() < frac then return base_ms + 1 end
   return base_ms
end
