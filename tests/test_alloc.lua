-- The Lua heap's allocator (core/alloc.c): blocks from huge-page arenas and,
-- once the heap is past a few MiB, a helper thread that faults in the next
-- pages ahead of use.  A program's results must not depend on it: the same
-- work runs in child processes with the helper on and off (LESSONRUN_PREFAULT=0).
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")

local exe = arg[-1]

local WORK = [[
  local tasks = {}
  for i = 1, 200000 do
    tasks[i] = spawn(function() sleep(0.01) return i % 7 end)
  end
  local f = io.open("/proc/self/status")
  local threads = f:read("a"):match("Threads:%s*(%d+)")
  f:close()
  local sum = 0
  for _, v in ipairs(gather(tasks)) do sum = sum + v end
  -- churn: blocks of every size class freed and reused while the heap grows
  local keep, check = {}, 0
  for round = 1, 4 do
    for i = 1, 50000 do keep[i] = string.rep(string.char(65 + i % 26), i % 900) end
    for i = 1, 50000, 2 do keep[i] = nil end
    for i = 2, 50000, 2 do check = check + #keep[i] + (keep[i]:byte(1) or 0) end
    collectgarbage()
  end
  print(sum, check, threads)
]]

local function run(env)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(WORK)
  f:close()
  local p = assert(io.popen(("env %s %q %q 2>&1"):format(env, exe, path)))
  local out = p:read("a")
  local _, _, code = p:close()
  os.remove(path)
  return out, code
end

h.test("200,000 tasks and heap churn: the same results with the prefault helper on and off", function()
  local on, c1 = run("LESSONRUN_PREFAULT=1")
  local off, c2 = run("LESSONRUN_PREFAULT=0")
  h.eq(c1, 0, on)
  h.eq(c2, 0, off)
  local results_on, threads_on = on:match("^(%d+\t%d+)\t(%d+)\n$")
  local results_off, threads_off = off:match("^(%d+\t%d+)\t(%d+)\n$")
  h.ok(results_on, on)
  h.eq(results_on, results_off)
  -- under ASan the Lua heap is plain malloc, so there is no helper to see
  h.eq(threads_on, os.getenv("LR_SANITIZED") and "1" or "2", "threads with the helper")
  h.eq(threads_off, "1", "threads without it")
end, { timeout = 60 })

h.done()
