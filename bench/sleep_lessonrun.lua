-- Sleep benchmark, lessonrun: spawn N tasks that each sleep 0.1 s, gather them
-- (list form), and report wall time and peak RSS in the common format.
-- Run as:  lessonrun bench/sleep_lessonrun.lua N
local N = math.tointeger(tonumber(arg and arg[1] or ...)) or 100000
local DELAY = 0.1

local peak_rss_kb = dofile(arg[0]:match("^(.-)[^/]*$") .. "peak_rss.lua")

local function sleeper()
  sleep(DELAY)
  return true
end

local t0 = now()
local tasks = {}
for i = 1, N do tasks[i] = spawn(sleeper) end
local results = gather(tasks)
local wall = now() - t0

local done = 0
for i = 1, N do if results[i] == true then done = done + 1 end end
print(("RESULT impl=lessonrun n=%d done=%d wall=%.6f overhead=%.6f rss_kb=%d")
  :format(N, done, wall, wall - DELAY, peak_rss_kb()))
if done ~= N then os.exit(1) end
