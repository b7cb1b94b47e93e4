-- Tasks: spawn, wait, state, result, error, traceback, cancel, name, id,
-- current; cancellation is an error you can catch, and it is level-triggered.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local test, eq, ok, raises = h.test, h.eq, h.ok, h.raises

test("spawn passes arguments and wait returns every result", function()
  local t = spawn(function(a, b, c) sleep(0.01) return a + b, c, nil, "last" end, 1, 2, "x")
  local r = table.pack(t:wait())
  eq(r.n, 4)
  eq({ r[1], r[2], r[3], r[4] }, { 3, "x", nil, "last" })
  -- waiting again gives the same results
  eq(table.pack(t:wait()).n, 4)
end)

test("a finished task keeps its results, not its coroutine", function()
  -- 0, 1 and several results, nils among them, survive a full collection
  local t0 = spawn(function() end)
  local t1 = spawn(function() return { "table" } end)
  local t4 = spawn(function() return nil, 2, nil, nil end)
  local co
  local tc = spawn(function() co = coroutine.running() return "c" end)
  settle(t0, t1, t4, tc)
  local weak = setmetatable({ co }, { __mode = "v" })
  co = nil
  collectgarbage("collect")
  eq(weak[1], nil, "the returned task's coroutine was collected")
  eq(table.pack(t0:wait()).n, 0)
  eq(t1:wait()[1], "table")
  local r = table.pack(t4:wait())
  eq(r.n, 4)
  eq({ r[1], r[2], r[3], r[4] }, { nil, 2, nil, nil })
  eq(t4:result(), nil)
  eq({ gather({ t1, t4, tc }) }, { { t1:wait(), nil, "c" } })
  eq(tc:state(), "done")
  h.match(tostring(tc:name()), "^task #%d+")
  -- so a program that keeps many finished handles keeps little: a
  -- coroutine alone is ~1 KB
  collectgarbage("collect")
  local before = collectgarbage("count")
  local ts = {}
  for i = 1, 5000 do ts[i] = spawn(function() return i end) end
  gather(ts)
  collectgarbage("collect")
  local per = (collectgarbage("count") - before) * 1024 / #ts
  ok(per < 400, ("%.0f bytes per finished task kept"):format(per))
  eq(ts[5000]:wait(), 5000)
end)

test("a task goes pending -> waiting -> done", function()
  local t = spawn(function() sleep(0.02) return "r" end)
  eq(t:state(), "pending")
  eq(t:done(), false)
  sleep(0)
  eq(t:state(), "waiting")
  eq(t:done(), false)
  eq(t:wait(), "r")
  eq(t:state(), "done")
  eq(t:done(), true)
end)

test("current() is the running task, in state running", function()
  local me = current()
  ok(me, "current() inside a task")
  eq(me:state(), "running")
  local child_saw
  local c = spawn(function() child_saw = current() end)
  c:wait()
  ok(rawequal(child_saw, c), "current() in the child is the child's handle")
  ok(not rawequal(me, c))
end)

test("result() is non-blocking: it errors before the end, returns after", function()
  local t = spawn(function() sleep(0.01) return 1, 2 end)
  raises("not finished", t.result, t)
  t:wait()
  eq({ t:result() }, { 1, 2 })
  eq(t:error(), nil)
  eq(t:traceback(), nil)
end)

test("a failed task: wait and result re-raise its error, error() and traceback()", function()
  local function inner() error("boom", 0) end
  local t = spawn(function() sleep(0) inner() end)
  local err = raises("^boom$", t.wait, t)
  eq(err, "boom")
  eq(t:state(), "failed")
  eq(t:done(), true)
  eq(t:error(), "boom")
  raises("^boom$", t.result, t)
  local tb = t:traceback()
  h.match(tb, "stack traceback of task #%d+")
  h.match(tb, "inner", "the traceback names the function that raised")
end)

test("error values that are not strings come back unchanged", function()
  local e = { code = 42 }
  local t = spawn(function() error(e) end)
  local got = raises(nil, t.wait, t)
  ok(rawequal(got, e), "the same table is re-raised")
  ok(rawequal(t:error(), e))
end)

test("cancel a sleeping task: wait raises the cancellation", function()
  local reached = false
  local t = spawn(function() sleep(10) reached = true end)
  sleep(0.01)
  eq(t:state(), "waiting")
  local t0 = now()
  eq(t:cancel(), true)
  local err = raises("cancelled", t.wait, t)
  ok(now() - t0 < 0.5, "cancellation is prompt")
  ok(iscancelled(err), "iscancelled(err)")
  eq(errorkind(err), "cancelled")
  eq(t:state(), "cancelled")
  ok(iscancelled(t:error()))
  eq(reached, false)
  eq(t:cancel(), false, "cancelling a finished task returns false")
end)

test("cancel a pending task: it never runs", function()
  local ran = false
  local t = spawn(function() ran = true end)
  eq(t:state(), "pending")
  eq(t:cancel(), true)
  eq(t:cancel(), true, "cancelling twice is harmless")
  local err = raises(nil, t.wait, t)
  ok(iscancelled(err))
  eq(t:state(), "cancelled")
  eq(ran, false)
  h.match(t:traceback(), "before it started")
end)

test("cancel a finished task returns false and changes nothing", function()
  local t = spawn(function() return 7 end)
  eq(t:wait(), 7)
  eq(t:cancel(), false)
  eq(t:state(), "done")
  eq(t:result(), 7)
end)

test("cancellation is catchable with pcall, and iscancelled tells it apart", function()
  local caught
  local t = spawn(function()
    local okp, e = pcall(sleep, 10)
    caught = { ok = okp, cancelled = iscancelled(e) }
    return "cleaned up"
  end)
  sleep(0)
  t:cancel()
  eq(t:wait(), "cleaned up")
  eq(caught, { ok = false, cancelled = true })
  eq(iscancelled("task cancelled"), false, "a plain string is not the cancellation")
  eq(iscancelled(nil), false)
  eq(errorkind("x"), nil)
end)

test("cancellation is level-triggered: after catching, the next wait raises again", function()
  local log = {}
  local t = spawn(function()
    local ok1, e1 = pcall(sleep, 10)
    log[#log + 1] = iscancelled(e1) and "first" or tostring(e1)
    local ok2, e2 = pcall(sleep, 0)
    log[#log + 1] = (not ok2 and iscancelled(e2)) and "again" or "no error"
    local other = spawn(function() return 1 end)
    local ok3, e3 = pcall(other.wait, other)
    log[#log + 1] = (not ok3 and iscancelled(e3)) and "wait too" or "no error"
    local ok4, e4 = pcall(gather, function() return 1 end)
    log[#log + 1] = (not ok4 and iscancelled(e4)) and "gather too" or "no error"
    sleep(0)  -- not caught: the task ends cancelled
    log[#log + 1] = "not reached"
  end)
  sleep(0)
  t:cancel()
  raises("cancelled", t.wait, t)
  eq(log, { "first", "again", "wait too", "gather too" })
  eq(t:state(), "cancelled")
end)

test("a task may cancel itself; it stops at its next wait point", function()
  local log = {}
  local t = spawn(function()
    eq(current():cancel(), true)
    log[#log + 1] = "still running"
    sleep(0)
    log[#log + 1] = "not reached"
  end)
  raises("cancelled", t.wait, t)
  eq(log, { "still running" })
end)

test("a waiter cancelled while waiting stops waiting; the awaited task goes on", function()
  local child = spawn(function() sleep(0.5) return "child done" end)
  local waiter = spawn(function() return child:wait() end)
  sleep(0.01)
  eq(waiter:state(), "waiting")
  waiter:cancel()
  raises("cancelled", waiter.wait, waiter)
  eq(child:state(), "waiting", "the child is not cancelled with its waiter")
  eq(child:wait(), "child done")
end)

test("many waiters on one task all get its result", function()
  local target = spawn(function() sleep(0.02) return "shared" end)
  local waiters = {}
  for i = 1, 10 do waiters[i] = spawn(function() return target:wait() end) end
  for i = 1, 10 do eq(waiters[i]:wait(), "shared") end
end)

test("several waiters on one task, some cancelled while they wait", function()
  -- the target is watched by waits, a gather and a settle at once; the
  -- first, a middle and the last of the waits to start are cancelled, and a
  -- new one comes after that
  local target = spawn(function() sleep(0.05) return "shared" end)
  local waits = {}
  for i = 1, 6 do waits[i] = spawn(function() return target:wait() end) end
  local gathered = spawn(function() return gather(target, function() return "other" end) end)
  local settled = spawn(function() return settle({ target })[1].value end)
  sleep(0.01)
  for _, i in ipairs { 1, 3, 6 } do
    eq(waits[i]:state(), "waiting")
    waits[i]:cancel()
  end
  waits[7] = spawn(function() return target:wait() end)
  eq(target:wait(), "shared")
  for i = 1, 7 do
    if i == 1 or i == 3 or i == 6 then
      raises("cancelled", waits[i].wait, waits[i])
    else
      eq(waits[i]:wait(), "shared", "wait " .. i)
    end
  end
  eq({ gathered:wait() }, { "shared", "other" })
  eq(settled:wait(), "shared")
end)

test("name: default names the function's place, name(s) sets it", function()
  local t = spawn(function() sleep(0.01) end)
  local id = t:id()
  ok(math.type(id) == "integer", "id() is an integer")
  h.match(t:name(), "^task #" .. id .. " %(.*test_tasks%.lua:%d+%)$")
  ok(rawequal(t:name("fetcher"), t), "name(s) returns the task")
  eq(t:name(), "fetcher")
  h.match(tostring(t), "^fetcher %[")
  t:wait()
  eq(t:name(), "fetcher")
  h.match(tostring(t), "%[done%]")
  local u = spawn(function() end)
  ok(u:id() > id, "ids increase")
end)

test("a failed named task's traceback uses the name", function()
  local t = spawn(function() error("x") end):name("worker-7")
  raises("x", t.wait, t)
  h.match(t:traceback(), "stack traceback of worker%-7")
end)

test("a bare coroutine.yield inside a task behaves like sleep(0)", function()
  local log = {}
  gather(function()
    log[#log + 1] = "a1"
    coroutine.yield()
    log[#log + 1] = "a2"
  end, function()
    log[#log + 1] = "b1"
  end)
  eq(log, { "a1", "b1", "a2" })
end)

test("plain coroutines inside a task still work", function()
  local co = coroutine.wrap(function(a)
    local b = coroutine.yield(a + 1)
    return b * 2
  end)
  eq(co(1), 2)
  eq(co(5), 10)
end)

test("sleep inside a plain coroutine run by a task gives a clear error", function()
  local co = coroutine.create(function() sleep(0.01) end)
  local okc, err = coroutine.resume(co)
  eq(okc, false)
  h.match(err, "must be called from a task")
end)

test("spawn accepts a callable table", function()
  local c = setmetatable({}, { __call = function(self, x) return "called", x end })
  eq({ spawn(c, 5):wait() }, { "called", 5 })
end)

test("wait on itself is an error, not a hang", function()
  raises("cannot wait for itself", function() return current():wait() end)
end)

test("two tasks waiting for each other: deadlock error, not a hang", function()
  local a, b
  a = spawn(function() sleep(0) return b:wait() end)
  b = spawn(function() sleep(0) return a:wait() end)
  -- the newest waiting task (b) is woken with the deadlock error; a then
  -- sees b's error, and settle, which waits for both, collects the two
  local ra, rb = settle(a, b)
  for _, r in ipairs { ra, rb } do
    eq(r.ok, false)
    h.match(r.error, "deadlock")
  end
  for _, t in ipairs { a, b } do
    eq(t:state(), "failed")
    h.match(t:error(), "deadlock")
  end
  h.match(ra.traceback, "re%-raised")
end, { timeout = false })

h.done()
