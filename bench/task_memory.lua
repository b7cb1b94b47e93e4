-- Where a task's memory goes: the Lua heap (collectgarbage "count") and the
-- process RSS after each stage of the sleep benchmark, per task.  A tool for
-- work on the runtime's footprint, not part of run.sh.
--   lessonrun bench/task_memory.lua [N]
local N = math.tointeger(tonumber(arg and arg[1] or ...)) or 100000

local function status(field)
  local f = io.open("/proc/self/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

local lua0, rss0 = collectgarbage("count"), status("VmRSS")
local lua_prev, rss_prev = lua0, rss0
local function stage(name)
  local lua, rss = collectgarbage("count"), status("VmRSS")
  print(("%-16s Lua heap %8.1f MB (%+6.0f B/task)   RSS %8.1f MB (%+6.0f B/task)")
    :format(name, lua / 1024, (lua - lua_prev) * 1024 / N, rss / 1024, (rss - rss_prev) * 1024 / N))
  lua_prev, rss_prev = lua, rss
end

print(("N = %d; at start: Lua heap %.1f MB, RSS %.1f MB"):format(N, lua0 / 1024, rss0 / 1024))
local function sleeper() sleep(0.1) return true end
local tasks = {}
for i = 1, N do tasks[i] = spawn(sleeper) end
stage("spawned")
sleep(0)  -- every task runs up to its sleep
stage("all sleeping")
local results = gather(tasks)
stage("gathered")
assert(#results == N)
print(("total per task: Lua heap %.0f B, RSS %.0f B; peak RSS (VmHWM) %.1f MB")
  :format((lua_prev - lua0) * 1024 / N, (rss_prev - rss0) * 1024 / N, status("VmHWM") / 1024))
