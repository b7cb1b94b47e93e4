-- timeout(seconds, fn, ...): a deadline on a scope.  It cancels whatever fn
-- waits on, raises a timeout error (not a cancellation), nests, and never
-- swallows the caller's own cancellation.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local lr = h.lr

h.test("in time: fn's results", function()
  h.eq(table.pack(lr.timeout(1, function(a, b) lr.sleep(0.01) return a, b end, 1, 2)), { n = 2, 1, 2 })
end)

h.test("too late: a timeout error, at the deadline, and fn was cancelled", function()
  local cleaned = false
  local t0 = lr.now()
  local e = h.raises("gave up after 0.1 seconds", lr.timeout, 0.1, function()
    local ok, err = pcall(lr.sleep, 5)
    cleaned = not ok and lr.iscancelled(err)  -- fn sees a cancellation and may clean up
    error(err, 0)
  end)
  h.eq(lr.errorkind(e), "timeout")
  h.ok(not lr.iscancelled(e), "a timeout is not a cancellation")
  h.near(lr.now() - t0, 0.09, 0.5, "ended at the deadline")
  h.ok(cleaned, "fn was cancelled at its wait point and ran its cleanup")
end)

h.test("fn's own error passes through with its message", function()
  h.raises("inner boom", lr.timeout, 1, function() lr.sleep(0.01) error("inner boom") end)
end)

h.test("nested: the inner deadline fires first; catching it keeps the outer one", function()
  local t0 = lr.now()
  local inner_kind, inner_at
  local e = h.raises("gave up after 0.3 seconds", lr.timeout, 0.3, function()
    local ok, err = pcall(lr.timeout, 0.1, lr.sleep, 5)
    inner_kind, inner_at = lr.errorkind(err), lr.now() - t0
    lr.sleep(5)  -- the outer deadline must still end this
  end)
  h.eq(inner_kind, "timeout")
  h.near(inner_at, 0.09, 0.25, "inner fired at 0.1 s")
  h.near(lr.now() - t0, 0.28, 0.7, "outer fired at 0.3 s")
  h.eq(lr.errorkind(e), "timeout")
end)

h.test("nested: an outer deadline that comes first is not mistaken for the inner", function()
  local t0 = lr.now()
  local e = h.raises("gave up after 0.1 seconds", lr.timeout, 0.1, lr.timeout, 5, lr.sleep, 10)
  h.eq(lr.errorkind(e), "timeout")
  h.near(lr.now() - t0, 0.09, 0.5)
end)

h.test("cancelling the caller cancels fn and stays a cancellation", function()
  local child_cancelled = false
  local t = lr.spawn(function()
    return lr.timeout(5, function()
      local ok, err = pcall(lr.sleep, 10)
      child_cancelled = not ok and lr.iscancelled(err)
      error(err, 0)
    end)
  end)
  lr.sleep(0.05)
  t:cancel()
  local ok, err = pcall(t.wait, t)
  h.ok(not ok and lr.iscancelled(err), "the caller ends cancelled, not timed out: " .. tostring(err))
  lr.sleep(0)
  h.ok(child_cancelled, "fn was cancelled too")
end)

h.test("a fetch inside a timeout is cancelled mid-transfer", function()
  local srv = lr.serve()
  local e = h.raises("gave up", lr.timeout, 0.1, lr.fetch, srv.url .. "/delay/3")
  h.eq(lr.errorkind(e), "timeout")
  h.eq(lr.fetch(srv.url .. "/status/200").status, 200, "the connection pool still works")
  srv:stop()
end)

h.test("zero and infinite deadlines", function()
  h.raises("gave up after 0 seconds", lr.timeout, 0, lr.sleep, 1)
  h.eq(lr.timeout(math.huge, function() lr.sleep(0.01) return "done" end), "done")
end)

h.done()
