-- gather and settle: results in order, the list form, fail-fast with the
-- siblings cancelled, cancelling the gatherer, tasks and functions mixed,
-- deadlock detection.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local test, eq, ok, raises = h.test, h.eq, h.ok, h.raises

test("results come in argument order, not finishing order", function()
  local a, b, c = gather(
    function() sleep(0.03) return "a" end,
    function() sleep(0.01) return "b" end,
    function() return "c", "dropped" end)
  eq({ a, b, c }, { "a", "b", "c" })
end)

test("gather returns one value per argument, nil results included", function()
  local r = table.pack(gather(function() end, function() return nil end, function() return 3 end))
  eq(r.n, 3)
  eq({ r[1], r[2], r[3] }, { nil, nil, 3 })
end)

test("list form returns a table in order", function()
  local fns = {}
  for i = 1, 10 do fns[i] = function() sleep((10 - i) * 0.002) return i * i end end
  local r = gather(fns)
  eq(type(r), "table")
  eq(r, { 1, 4, 9, 16, 25, 36, 49, 64, 81, 100 })
end)

test("empty gather", function()
  eq(select("#", gather()), 0)
  eq(gather({}), {})
end)

test("the children run concurrently", function()
  local t0 = now()
  local spans = {}
  local function child(k)
    local from = now()
    sleep(0.2)
    spans[k] = {from, now()}
  end
  gather(function() child(1) end, function() child(2) end, function() child(3) end)
  -- each began before any ended: they ran at the same time (no wall-clock ratio)
  for k = 1, 3 do h.ok(spans[k][1] < math.min(spans[1][2], spans[2][2], spans[3][2]), "child " .. k) end
  h.ok(now() - t0 >= 0.2)
end)

test("tasks and functions can be mixed", function()
  local t = spawn(function() sleep(0.02) return "task" end)
  local done = spawn(function() return "finished already" end)
  done:wait()
  eq({ gather(t, function() return "fn" end, done) }, { "task", "fn", "finished already" })
  eq(gather({ function() return 1 end, spawn(function() return 2 end) }), { 1, 2 })
end)

test("a callable table counts as a function", function()
  local c = setmetatable({}, { __call = function() return "called" end })
  eq(gather(c), "called")
end)

test("fail-fast: the first failure is raised and the siblings are cancelled", function()
  local slow
  local t0 = now()
  local err = raises("first", gather,
    function() slow = current(); sleep(10) return "never" end,
    function() sleep(0.3); error("second failure") end,
    function() sleep(0.01); error("first failure") end)
  ok(now() - t0 < 2, "gather raised at the first failure, not after the others")
  h.match(err, "test_gather%.lua:%d+: first failure")
  -- the siblings end cancelled (not done, not failed with their own error)
  ok(slow, "the slow sibling had started")
  settle(slow)
  eq(slow:state(), "cancelled")
end)

test("fail-fast with task handles: each sibling ends cancelled", function()
  local a = spawn(function() sleep(10) end)
  local b = spawn(function() sleep(0.01) error("b failed") end)
  local c = spawn(function() sleep(0.5) error("c would fail later") end)
  local d = spawn(function() sleep(10) end)
  local err = raises("b failed", gather, a, b, c, d)
  ok(not tostring(err):find("later"), "the error is the first failure")
  settle(a, c, d)  -- let the cancellations unwind
  eq({ a:state(), b:state(), c:state(), d:state() }, { "cancelled", "failed", "cancelled", "cancelled" })
end)

test("fail-fast: the first failure by time, not by position", function()
  local err = raises(nil, gather,
    function() sleep(0.2) error("late", 0) end,
    function() sleep(0.01) error("early", 0) end)
  eq(err, "early")
end)

test("fail-fast with an already failed task raises at once", function()
  local f = spawn(function() error("was dead", 0) end)
  settle(f)
  local other = spawn(function() sleep(10) end)
  local err = raises(nil, gather, other, f)
  eq(err, "was dead")
  settle(other)
  eq(other:state(), "cancelled")
end)

test("a gathered child's cancellation propagates as cancellation", function()
  local victim = spawn(function() sleep(10) end)
  local g = spawn(function() return gather(victim, function() sleep(10) end) end)
  sleep(0.01)
  victim:cancel()
  local err = raises(nil, g.wait, g)
  ok(iscancelled(err), "gather re-raised the child's cancellation: " .. tostring(err))
end)

test("the failed child's traceback is kept in the gatherer's report", function()
  local g = spawn(function()
    gather(function() sleep(0) error("deep failure") end)
  end)
  raises("deep failure", g.wait, g)
  local tb = g:traceback()
  h.match(tb, "stack traceback of task #%d+")
  h.match(tb, "re%-raised it")
end)

test("cancelling the task running a gather cancels the children", function()
  local kids = {}
  local g = spawn(function()
    gather(function() kids[1] = current(); sleep(10) end,
           function() kids[2] = current(); sleep(10) end,
           function() kids[3] = current(); while true do sleep(0) end end)
  end)
  sleep(0.02)
  eq(g:state(), "waiting")
  for i = 1, 3 do eq(kids[i]:state() == "waiting" or kids[i]:state() == "ready", true) end
  local t0 = now()
  g:cancel()
  raises("cancelled", g.wait, g)
  settle(kids)
  for i = 1, 3 do eq(kids[i]:state(), "cancelled", "child " .. i) end
  ok(now() - t0 < 0.5, "the children were cancelled promptly")
end)

test("settle waits for everyone and never raises for them", function()
  local t0 = now()
  local a, b, c = settle(
    function() sleep(0.05) return "slow ok" end,
    function() error("bad", 0) end,
    function() sleep(0.01) return 3, "dropped" end)
  ok(now() - t0 >= 0.05, "settle waited for the slowest child")
  eq(a, { ok = true, value = "slow ok" })
  eq(b.ok, false)
  eq(b.error, "bad")
  eq(b.cancelled, false)
  h.match(b.traceback, "stack traceback")
  eq(c, { ok = true, value = 3 })
end)

test("settle list form and cancelled outcomes", function()
  local victim = spawn(function() sleep(10) end)
  victim:cancel()
  local r = settle({ victim, function() return "fine" end })
  eq(#r, 2)
  eq(r[1].ok, false)
  eq(r[1].cancelled, true)
  ok(iscancelled(r[1].error))
  eq(r[2], { ok = true, value = "fine" })
end)

test("cancelling the task running a settle cancels the children", function()
  local kid
  local s = spawn(function() settle(function() kid = current(); sleep(10) end) end)
  sleep(0.01)
  s:cancel()
  raises("cancelled", s.wait, s)
  settle(kid)
  eq(kid:state(), "cancelled")
end)

test("gather of many tasks", function()
  local fns = {}
  for i = 1, 2000 do fns[i] = function() sleep(0.01) return i end end
  local r = gather(fns)
  eq(#r, 2000)
  eq(r[1234], 1234)
end)

test("nested gathers", function()
  local r = { gather(function()
    local a, b = gather(function() sleep(0.01) return 1 end, function() return 2 end)
    return a + b + gather(function() return 3 end)
  end, function() return 4 end) }
  eq(r, { 6, 4 })
end)

-- Deadlock tests run without the harness's watchdog: a pending timer is
-- something that can still happen, so it would keep the deadlock hidden.
test("deadlock: waiting for a task that sleeps forever alone is an error, not a hang", function()
  local t = spawn(function() sleep(math.huge) end)
  local t0 = now()
  local err = raises("deadlock", t.wait, t)
  h.match(err, "can never happen")
  ok(now() - t0 < 1, "detected at once")
  settle(t)
  ok(t:done(), "the sleeper was woken too")
end, { timeout = false })

test("deadlock: gather of tasks that sleep forever", function()
  local err = raises("deadlock", gather,
    function() sleep(math.huge) end,
    function() sleep(math.huge) end)
  ok(err)
end, { timeout = false })

h.done()
