-- sleep, sleep(0), blocking_sleep and now().  Timing bounds are generous:
-- they tell "waits concurrently" from "waits one after another", and never
-- depend on a quiet machine.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local test, eq, ok, near = h.test, h.eq, h.ok, h.near

test("sleep waits at least the time asked", function()
  for _, s in ipairs { 0.001, 0.01, 0.05 } do
    local t0 = now()
    sleep(s)
    local dt = now() - t0
    ok(dt >= s, ("sleep(%g) returned after %g s"):format(s, dt))
    ok(dt < s + 0.5, ("sleep(%g) took %g s"):format(s, dt))
  end
end)

test("fractional sleeps are not rounded to whole seconds", function()
  local t0 = now()
  sleep(0.25)
  near(now() - t0, 0.25, 0.7)
end)

test("wakeups come in deadline order, not spawn order", function()
  local order = {}
  local tasks = {}
  for _, d in ipairs { 0.06, 0.02, 0.04, 0.01, 0.05, 0.03 } do
    tasks[#tasks + 1] = spawn(function()
      sleep(d)
      order[#order + 1] = d
    end)
  end
  gather(tasks)
  eq(order, { 0.01, 0.02, 0.03, 0.04, 0.05, 0.06 })
end)

test("equal sleeps wake in the order they started", function()
  local order = {}
  local tasks = {}
  for i = 1, 20 do
    tasks[i] = spawn(function()
      sleep(0.02)
      order[#order + 1] = i
    end)
  end
  gather(tasks)
  local want = {}
  for i = 1, 20 do want[i] = i end
  eq(order, want)
end)

test("a shorter sleep started later wakes first", function()
  local log = {}
  local long = spawn(function() sleep(0.3) log[#log + 1] = "long" end)
  sleep(0.02)
  local short = spawn(function() sleep(0.01) log[#log + 1] = "short" end)
  gather(long, short)
  eq(log, { "short", "long" })
end)

test("sleep(0) yields to the other ready tasks", function()
  local log = {}
  local function worker(name)
    for i = 1, 3 do
      log[#log + 1] = name .. i
      sleep(0)
    end
  end
  gather(function() worker("a") end, function() worker("b") end)
  eq(log, { "a1", "b1", "a2", "b2", "a3", "b3" })
end)

test("sleep(0) does not let a busy task starve timers", function()
  local flag = false
  spawn(function() sleep(0.03) flag = true end)
  local t0, spins = now(), 0
  while not flag do
    spins = spins + 1
    sleep(0)
    if now() - t0 > 2 then break end
  end
  ok(flag, "the timer never fired while a task looped on sleep(0)")
  ok(spins > 1, "sleep(0) should have returned several times")
end)

test("now() is monotonic with sub-millisecond resolution", function()
  local prev = now()
  ok(type(prev) == "number" and prev >= 0, "now() is a non-negative number")
  local smallest = math.huge
  for _ = 1, 100000 do
    local t = now()
    ok(t >= prev, ("now() went backwards: %.9f then %.9f"):format(prev, t))
    if t > prev and t - prev < smallest then smallest = t - prev end
    prev = t
  end
  ok(smallest < 0.001, ("smallest step seen between now() calls: %g s"):format(smallest))
end)

test("now() counts seconds (it agrees with os.time over 1 s)", function()
  -- A change of os.time() happens after the last check that still saw the
  -- old second and before the check that sees the new one: a now() read
  -- before the first and one read after the second bracket it.  Two changes
  -- one second apart then bracket 1 s however late a busy machine polls.
  local function next_change()
    local lo = now()
    local s0 = os.time()
    while true do
      sleep(0.01)
      local r = now()
      local changed = os.time() ~= s0
      local hi = now()
      if changed then return lo, hi end
      lo = r
    end
  end
  next_change()  -- start on a fresh second
  local a1, b1 = next_change()
  local a2, b2 = next_change()
  local lo, hi = a2 - b1, b2 - a1
  ok(lo <= 1.001 and hi >= 0.999,
     ("one os.time() second is between %.3f and %.3f s of now()"):format(lo, hi))
end, { timeout = 10 })

test("100 tasks sleeping 0.2 s finish together, not one after another", function()
  local t0 = now()
  local tasks = {}
  for i = 1, 100 do tasks[i] = spawn(function() sleep(0.2) return i end) end
  local r = gather(tasks)
  local dt = now() - t0
  eq(#r, 100)
  eq(r[100], 100)
  near(dt, 0.2, 5, "100 concurrent sleeps of 0.2 s (one after another: 20 s)")
end)

test("10000 tasks sleeping at once finish quickly", function()
  local t0 = now()
  local tasks = {}
  for i = 1, 10000 do tasks[i] = spawn(function() sleep(0.05 + (i % 7) * 0.01) end) end
  gather(tasks)
  near(now() - t0, 0.1, 20, "one after another they would take 10 minutes")
end)

test("blocking_sleep stops every task, sleep only the caller", function()
  local t0 = now()
  local woke
  local sleeper = spawn(function() sleep(0.02) woke = now() - t0 end)
  sleep(0)  -- let it start and park
  blocking_sleep(0.15)
  local blocked = now() - t0
  near(blocked, 0.15, 5, "blocking_sleep(0.15)")
  eq(woke, nil, "nothing else ran during blocking_sleep")
  sleep(0.05)
  eq(sleeper:state(), "done", "the sleeper ran once the loop was free")
  ok(woke >= 0.15, "the sleeper could only wake after blocking_sleep: " .. tostring(woke))
end)

-- Regression test (CHANGELOG.md, fixed, "overdue timer"): when a task keeps the
-- loop busy past another task's deadline, that task is woken only when the
-- next timer fires (here 1.5 s later), because uv_run(UV_RUN_ONCE) runs the
-- overdue timer and then still blocks in poll until the next one.  No
-- watchdog here: its ticks are timers too, and would hide the bug.
test("an overdue sleeper wakes at once, even with a later timer pending", function()
  local later = spawn(function() sleep(1.5) end)
  local t = spawn(function() sleep(0.01) end)
  sleep(0)
  blocking_sleep(0.05)  -- the loop is busy past t's deadline
  local t0 = now()
  t:wait()
  later:cancel()
  near(now() - t0, 0, 0.5, "seconds between the end of the busy spell and the wakeup")
end, { timeout = false })

test("blocking_sleep(0) and sleep of a huge finite number are accepted", function()
  blocking_sleep(0)
  local t = spawn(function() sleep(1e12) end)
  sleep(0.01)
  eq(t:state(), "waiting")
  ok(t:cancel())
  h.raises("cancelled", t.wait, t)
end)

test("sleep(math.huge) waits until cancelled", function()
  local t = spawn(function() sleep(math.huge) end)
  sleep(0.05)
  eq(t:state(), "waiting")
  t:cancel()
  local err = h.raises(nil, t.wait, t)
  ok(iscancelled(err), "the error is the cancellation: " .. tostring(err))
  eq(t:state(), "cancelled")
end)

test("a cancelled sleeper's timer does not fire later", function()
  -- cancel many sleepers and check that the survivors still wake on time
  local tasks, woken = {}, 0
  for i = 1, 50 do
    tasks[i] = spawn(function() sleep(0.3) woken = woken + 1 end)
  end
  sleep(0)
  for i = 1, 50, 2 do tasks[i]:cancel() end
  sleep(0.5)
  eq(woken, 25)
  for i = 1, 50 do eq(tasks[i]:state(), i % 2 == 1 and "cancelled" or "done", "task " .. i) end
end)

h.done()
