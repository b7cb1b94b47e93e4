-- Fetch benchmark, lessonrun: N GETs of URL with at most LIMIT in flight, on
-- the one shared curl multi handle, and report requests/s and peak RSS in the
-- common format.  Two ways to bound the flight (MODE):
--   sem  N tasks, each  sem:with(fetch, url)  under one semaphore(LIMIT),
--        gathered (list form): what the lesson's index.lua does
--   all  fetch_all(urls, {limit = LIMIT})  (the same thing, packaged)
-- Run as:  lessonrun bench/fetch_lessonrun.lua URL [N] [LIMIT] [MODE]
local URL = assert(arg[1], "usage: fetch_lessonrun.lua URL [N] [LIMIT] [sem|all]")
local N = math.tointeger(tonumber(arg[2])) or 10000
local LIMIT = math.tointeger(tonumber(arg[3])) or 100
local MODE = arg[4] or "sem"

local peak_rss_kb = dofile(arg[0]:match("^(.-)[^/]*$") .. "peak_rss.lua")

-- enough connections for LIMIT transfers at once, all to one host
fetch_config { max_connections = math.max(LIMIT, 100), max_host_connections = 0 }

local t0, c0 = now(), os.clock()
local responses
if MODE == "sem" then
  local sem = semaphore(LIMIT)
  local tasks = {}
  for i = 1, N do tasks[i] = spawn(function() return sem:with(fetch, URL) end) end
  responses = gather(tasks)
elseif MODE == "all" then
  local urls = {}
  for i = 1, N do urls[i] = URL end
  responses = fetch_all(urls, { limit = LIMIT })
else
  error("MODE must be sem or all, got " .. tostring(MODE))
end
local wall, cpu = now() - t0, os.clock() - c0

local ok, len = 0, #responses[1].body
for i = 1, N do
  local r = responses[i]
  if r.status == 200 and #r.body == len then ok = ok + 1 end
end
print(("RESULT impl=lessonrun-%s n=%d ok=%d wall=%.6f rps=%.1f cpu=%.3f rss_kb=%d")
  :format(MODE, N, ok, wall, N / wall, cpu, peak_rss_kb()))
if ok ~= N then os.exit(1) end
