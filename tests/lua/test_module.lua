-- lessonrun as a module of the stock lua5.4 interpreter:
--   lua5.4 tests/lua/test_module.lua BUILD_DIR      (BUILD_DIR holds lessonrun.so)
-- Called from the main thread, sleep/gather/run/wait drive the loop until
-- they are done; from a plain coroutine while the loop runs they refuse
-- with a clear error.
local build = assert(arg[1], "usage: lua5.4 test_module.lua BUILD_DIR")
package.cpath = build .. "/?.so;" .. package.cpath
local lr = require "lessonrun"
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local test, eq, ok, raises = h.test, h.eq, h.ok, h.raises
local main = { main = true }

test("require gives the API table, and the same one twice", function()
  for _, f in ipairs { "sleep", "blocking_sleep", "now", "spawn", "gather", "settle", "run",
                       "current", "iscancelled", "errorkind" } do
    eq(type(lr[f]), "function", f)
  end
  h.match(lr.version, "^%d+%.%d+%.%d+")
  ok(rawequal(require "lessonrun", lr))
  eq(rawget(_G, "sleep"), nil, "the module does not set globals")
  ok(package.loaded["lessonrun"], "registered in package.loaded")
end, main)

test("current() is nil on the main thread", function()
  eq(lr.current(), nil)
end, main)

test("sleep from the main thread drives the loop", function()
  local t0 = lr.now()
  lr.sleep(0.05)
  local dt = lr.now() - t0
  ok(dt >= 0.05, "slept " .. dt)
  ok(dt < 1, "slept " .. dt)
  eq(lr.current(), nil, "back on the main thread")
end, main)

test("sleep from the main thread lets spawned tasks run meanwhile", function()
  local log = {}
  lr.spawn(function() lr.sleep(0.01) log[#log + 1] = "task" end)
  lr.sleep(0.05)
  log[#log + 1] = "main"
  eq(log, { "task", "main" })
end, main)

test("bad arguments are checked on the main thread too", function()
  raises("bad argument #1 to 'sleep'", function() lr.sleep(-1) end)
  raises("bad argument #1 to 'spawn'", function() lr.spawn(42) end)
  raises("bad argument #1 to 'run'", function() lr.run(42) end)
end, main)

test("gather from the main thread", function()
  local t0 = lr.now()
  local a, b = lr.gather(function() lr.sleep(0.1) return "a" end,
                         function() lr.sleep(0.1) return "b" end)
  eq({ a, b }, { "a", "b" })
  h.near(lr.now() - t0, 0.1, 0.5, "the two sleeps overlapped")
  eq(lr.gather({ function() return 1 end, function() return 2 end }), { 1, 2 })
end, main)

test("gather from the main thread re-raises the first failure", function()
  raises("child failed", lr.gather, function() error("child failed") end, function() lr.sleep(0.2) end)
end, main)

test("run returns the function's results and re-raises its error", function()
  eq({ lr.run(function(a, b) lr.sleep(0.01) return a + b, "x" end, 2, 3) }, { 5, "x" })
  raises("inside run", lr.run, function() lr.sleep(0) error("inside run") end)
  eq(lr.run(function()
    ok(lr.current(), "run's function runs as a task")
    return lr.run(function() return "nested run just calls" end)
  end), "nested run just calls")
end, main)

test("spawn + wait from the main thread", function()
  local t = lr.spawn(function(x) lr.sleep(0.02) return x * 2 end, 21)
  eq(t:state(), "pending")
  eq(t:wait(), 42)
  eq(t:state(), "done")
  local f = lr.spawn(function() error("failed in task", 0) end)
  eq(raises(nil, f.wait, f), "failed in task")
end, main)

test("settle from the main thread", function()
  local r = lr.settle({ function() return 1 end, function() error("e", 0) end })
  eq(r[1], { ok = true, value = 1 })
  eq(r[2].error, "e")
end, main)

test("a plain coroutine inside run gets a clear error from sleep, gather and wait", function()
  lr.run(function()
    local t = lr.spawn(function() lr.sleep(0.01) end)
    for name, call in pairs {
      sleep = function() lr.sleep(0.01) end,
      gather = function() lr.gather(function() end) end,
      wait = function() t:wait() end,
    } do
      local co = coroutine.create(call)
      local okc, err = coroutine.resume(co)
      eq(okc, false, name)
      h.match(err, name .. ": must be called from a task", name)
    end
    t:wait()
  end)
end, main)

test("the same primitives work inside tasks (harness-driven)", function()
  local t0 = lr.now()
  lr.gather(function() lr.sleep(0.05) end, function() lr.sleep(0.05) end)
  h.near(lr.now() - t0, 0.05, 0.5)
end)

test("waiting from the main thread for a task that can never finish: deadlock error", function()
  local t = lr.spawn(function() lr.sleep(math.huge) end)
  raises("deadlock", t.wait, t)
end, main)

-- Regression test (CHANGELOG.md, fixed, "driver does not return"): when the task a
-- main-thread call waits for finishes while another task sleeps, the call
-- returns only when that other sleep ends (here 2 s later).
test("sleep from the main thread returns on time while another task sleeps longer", function()
  local other = lr.spawn(function() lr.sleep(2) end)
  local t0 = lr.now()
  lr.sleep(0.05)
  local dt = lr.now() - t0
  other:cancel()
  h.near(dt, 0.05, 0.5, "seconds lr.sleep(0.05) took")
end, main)

h.done()
