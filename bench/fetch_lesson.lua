-- The lesson's shape (scripts/index.lua): N requests to the built-in server's
-- /delay/D with at most LIMIT in flight, each task  sem:with(fetch, url),
-- gathered.  Ideal wall time: ceil(N / LIMIT) * D (0.2 s for 20, 10, 0.1).
-- HOW is "cold" (the first fetch of the process is timed: it loads libcurl)
-- or "warm" (one blocking_fetch first, as index.lua does before its async
-- part: libcurl is loaded, but fetch's multi handle has no connection yet).
-- Run as:  lessonrun bench/fetch_lesson.lua [N] [LIMIT] [D] [cold|warm]
local N = math.tointeger(tonumber(arg[1])) or 20
local LIMIT = math.tointeger(tonumber(arg[2])) or 10
local D = tonumber(arg[3]) or 0.1
local HOW = arg[4] or "cold"

local server = serve()  -- 127.0.0.1, a free port, in its own thread
local url = server.url .. "/delay/" .. D
local ideal = math.ceil(N / LIMIT) * D
if HOW == "warm" then blocking_fetch(server.url .. "/delay/0")
elseif HOW ~= "cold" then error("HOW must be cold or warm, got " .. tostring(HOW)) end

local t0 = now()
local sem = semaphore(LIMIT)
local tasks = {}
for i = 1, N do tasks[i] = spawn(function() return sem:with(fetch, url) end) end
local responses = gather(tasks)
local wall = now() - t0

local ok = 0
for i = 1, N do if responses[i].status == 200 then ok = ok + 1 end end
server:stop()
print(("RESULT impl=lesson-%s n=%d ok=%d wall=%.6f ideal=%.3f over_pct=%.2f")
  :format(HOW, N, ok, wall, ideal, (wall / ideal - 1) * 100))
if ok ~= N then os.exit(1) end
