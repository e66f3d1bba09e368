-- POST with a fixed-size body (default 16 KiB) on every request.
--   wrk -t1 -c64 -d10s -s Benchmarks/wrk/post-body.lua http://127.0.0.1:8080/ [-- SIZE_BYTES [PATH]]
-- The body is built once; Content-Length is set by wrk.format. Prints EDGE_RESULT (report.lua).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local req

function init(args)
   local size = tonumber(args[1]) or 16384
   local path = args[2] or "/"
   local body = string.rep("x", size)
   req = wrk.format("POST", path, { ["Content-Type"] = "application/octet-stream" }, body)
end

function request()
   return req
end
