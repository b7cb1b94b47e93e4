-- Sleep benchmark, Lua 5.4 + luv: N coroutines, each parked on its own
-- uv_timer for 0.1 s; "gather" counts completions and the loop runs until
-- all timers are closed.
-- Run as:  lua5.4 bench/sleep_luv.lua N
local uv = require "luv"
local N = math.tointeger(tonumber(arg[1])) or 100000
local DELAY_MS = 100

local peak_rss_kb = dofile(arg[0]:match("^(.-)[^/]*$") .. "peak_rss.lua")

-- async sleep on a per-task timer: arm it, yield, the callback resumes us
local function sleep_ms(ms)
  local co = coroutine.running()
  local t = uv.new_timer()
  t:start(ms, 0, function()
    t:close()
    assert(coroutine.resume(co))
  end)
  coroutine.yield()
end

local results, done = {}, 0
local function sleeper(i)
  sleep_ms(DELAY_MS)
  results[i] = true
  done = done + 1
end

local t0 = uv.hrtime()
for i = 1, N do
  local co = coroutine.create(sleeper)
  assert(coroutine.resume(co, i))
end
uv.run()
local wall = (uv.hrtime() - t0) / 1e9

local ok = 0
for i = 1, N do if results[i] == true then ok = ok + 1 end end
print(("RESULT impl=luv n=%d done=%d wall=%.6f overhead=%.6f rss_kb=%d")
  :format(N, math.min(done, ok), wall, wall - DELAY_MS / 1000, peak_rss_kb()))
if ok ~= N then os.exit(1) end
