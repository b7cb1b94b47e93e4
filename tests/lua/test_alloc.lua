-- The Lua heap's arena allocator (core/base/arena.c): blocks from huge-page
-- arenas and, with the prefault helper (core/base/prefault.c), once the heap
-- is past a few MiB, a thread that faults in the next pages ahead of use.  A
-- program's results must not depend on them: the same work runs in child
-- processes with the helper on and off (LESSONRUN_PREFAULT=0).
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
h.skip_unless_built("arenas", "these check the arena allocator; the Lua heap is realloc here" ..
  " (LR_ALLOC_ARENAS=OFF, or a sanitized build)")
local prefault = not os.getenv("LR_TRICKS") or (" " .. os.getenv("LR_TRICKS") .. " "):find(" prefault ")

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
  -- built without the helper (LR_PREFAULT=OFF) there is none to see
  h.eq(threads_on, prefault and "2" or "1", "threads with the helper")
  h.eq(threads_off, "1", "threads without it")
end, { timeout = 60 })

h.test("big blocks (own mappings from 128 KiB): grow, shrink, change kind, keep contents", function()
  -- a table's slots grow through every kind: small, malloc'd, mapped
  -- (mremap'd as it doubles), then shrink back when it is rehashed smaller
  local t = {}
  for i = 1, 300000 do t[i] = i * 3 end
  local sum = 0
  for i = 1, 300000 do sum = sum + t[i] end
  h.eq(sum, 3 * 300000 * 300001 // 2)
  for i = 1, 300000 do t[i] = nil end
  t.x = 1  -- a new key: the rehash finds the array empty and shrinks it
  for i = 1, 1000 do t[i] = i end
  h.eq(#t, 1000)
  -- strings of every kind, built and dropped, in a loop
  local parts = {}
  for k = 1, 40 do
    local n = k * 37000  -- 37 KB .. 1.5 MB
    local s = string.rep(string.char(64 + k % 26), n)
    parts[k] = s .. "|" .. k
    h.eq(#parts[k], n + 1 + #tostring(k))
  end
  collectgarbage()
  for k = 1, 40 do
    local s = parts[k]
    h.eq(s:sub(1, 1), string.char(64 + k % 26))
    h.eq(s:sub(-#tostring(k) - 1), "|" .. k)
  end
  -- a coroutine whose stack grows past 128 KiB and back
  local function deep(n) if n == 0 then return 0 end return 1 + deep(n - 1) end
  local co = coroutine.wrap(function() coroutine.yield(deep(20000)); return deep(10) end)
  h.eq(co(), 20000)
  collectgarbage()
  h.eq(co(), 10)
end)

h.test("freed blocks of one size serve another: 1.5 M tables freed, then 1 M strings", function()
  local script = [[
    local t = {}
    for i = 1, 1500000 do t[i] = {i, i} end
    t = nil
    collectgarbage() collectgarbage()
    local s = {}
    for i = 1, 1000000 do s[i] = "string number " .. i end
    local f = io.open("/proc/self/status")
    print(f:read("a"):match("VmHWM:%s*(%d+)"))
    f:close()
  ]]
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local function peak(cmd)
    local p = assert(io.popen(("%q %q 2>&1"):format(cmd, path)))
    local out = p:read("a")
    p:close()
    return tonumber(out:match("^(%d+)")), out
  end
  local mine, out = peak(exe)
  local lua = io.popen("command -v lua5.4"):read("l")
  -- without reuse across sizes the peak is ~1.15x lua5.4's (~230 MB)
  local bound = 210 * 1024
  if lua and lua ~= "" then bound = math.floor(peak(lua) * 1.1) end
  os.remove(path)
  h.ok(mine, out)
  h.ok(mine <= bound, ("peak RSS %d kB, bound %d kB"):format(mine, bound))
end, { timeout = 60 })

h.done()
