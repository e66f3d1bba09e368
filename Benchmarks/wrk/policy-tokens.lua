-- Bearer tokens from a file, one per line, rotated over the requests of each
-- connection (comparison/policies: distinct tokens defeat the verified-token
-- cache, one repeated token hits it).
--   wrk -s Benchmarks/wrk/policy-tokens.lua URL -- TOKENS_FILE [Origin]
-- Prints EDGE_RESULT (report.lua).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local requests = {}
local i = 0

function init(args)
   local origin = args[2]
   for line in io.lines(args[1]) do
      local h = { ["Authorization"] = "Bearer " .. line }
      if origin then h["Origin"] = origin end
      requests[#requests + 1] = wrk.format("GET", nil, h)
   end
   i = math.random(#requests) - 1
end

function request()
   i = i % #requests + 1
   return requests[i]
end
