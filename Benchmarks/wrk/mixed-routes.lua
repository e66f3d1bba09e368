-- Mixed routes: each connection cycles through a weighted list of paths.
--   wrk -t1 -c64 -d10s -s Benchmarks/wrk/mixed-routes.lua http://127.0.0.1:8080 [-- /path1 /path2 ...]
-- Default mix (matches the Benchmarks/run upstream): 3 x "/" (64 B), 1 x "/16k".
-- Repeat a path in the argument list to weight it. Prints EDGE_RESULT (report.lua).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local paths = { "/", "/", "/", "/16k" }
local requests = {}
local i = 0

function init(args)
   if #args > 0 then paths = args end
   for k, p in ipairs(paths) do
      requests[k] = wrk.format("GET", p)
   end
   -- Start each thread at a different point of the cycle.
   i = math.random(#requests) - 1
end

function request()
   i = i % #requests + 1
   return requests[i]
end
