-- The floor under the sleep benchmark: N bare coroutines in a plain lua5.4,
-- no runtime at all.  Each is created, runs to its yield (parked), and is
-- resumed once to finish, in order; nothing sleeps, so the whole time is the
-- overhead (CPU time, os.clock: lua5.4 has no finer wall clock).
-- Run as:  lua5.4 bench/sleep_coroutines.lua N
local N = math.tointeger(tonumber(arg[1])) or 100000

local peak_rss_kb = dofile(arg[0]:match("^(.-)[^/]*$") .. "peak_rss.lua")

local function sleeper()
  coroutine.yield()
  return true
end

local t0 = os.clock()
local cos = {}
for i = 1, N do
  local co = coroutine.create(sleeper)
  assert(coroutine.resume(co))
  cos[i] = co
end
local done = 0
for i = 1, N do
  local ok, r = coroutine.resume(cos[i])
  if ok and r == true then done = done + 1 end
end
local wall = os.clock() - t0

print(("RESULT impl=coroutines n=%d done=%d wall=%.6f overhead=%.6f rss_kb=%d")
  :format(N, done, wall, wall, peak_rss_kb()))
if done ~= N then os.exit(1) end
