-- Soak: a million sleeping tasks; ten thousand cancelled while sleeping;
-- ten thousand fetches cancelled mid-flight.  After each, the live tasks and
-- the registry references are back to where they were, and after the
-- fetches the descriptors too.  Prints its figures ("figure: ...").
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "../lua/harness.lua")
local soak = dofile(arg[0]:match("^(.-)[^/]*$") .. "soak.lua")
local lr = h.lr
local core = require "lessonrun.core"

local REFUSED = "http://127.0.0.1:1/"

-- Waits (at most `limit` seconds, looking every `step`) until pred() is
-- true; returns it.
local function wait_until(pred, limit, step)
  local deadline = lr.now() + limit
  while not pred() and lr.now() < deadline do lr.sleep(step or 0.05) end
  return pred()
end

h.test("1,000,000 sleeping tasks gathered", function()
  local N = 1000000
  local tasks_base, refs_base = core.ntasks(), core.refs()
  local rss_before = soak.status("VmRSS")
  local fns, nap = {}, function() lr.sleep(0.5) return 1 end
  for i = 1, N do fns[i] = nap end
  local t0 = lr.now()
  local results = lr.gather(fns)
  local elapsed = lr.now() - t0
  local sum = 0
  for i = 1, N do sum = sum + results[i] end
  h.eq(#results, N)
  h.eq(sum, N, "every task returned 1")
  fns, results = nil, nil
  h.eq(core.ntasks(), tasks_base, "live tasks")
  h.eq(core.refs(), refs_base, "registry references")
  local peak = soak.status("VmHWM")
  soak.figure("%d tasks, each sleep(0.5), gathered in %.2f s (%.2f s over the sleep); "
              .. "peak RSS %.0f MB, about %.2f kB per task", N, elapsed, elapsed - 0.5,
              peak / 1024, (peak - rss_before) / N)
  h.ok(elapsed < 60, "done within a minute")
end, { timeout = 150 })

h.test("10,000 tasks cancelled while sleeping, and 10,000 through their gatherer", function()
  local N = 10000
  local tasks_base, refs_base = core.ntasks(), core.refs()
  local woke = 0
  local tasks = {}
  for i = 1, N do tasks[i] = lr.spawn(function() lr.sleep(30) woke = woke + 1 end) end
  lr.sleep(0)
  for i = 1, N do h.eq(tasks[i]:state(), "waiting", "task " .. i .. " parked in sleep") end
  h.eq(core.ntasks(), tasks_base + N)
  local t0 = lr.now()
  for i = 1, N do h.ok(tasks[i]:cancel(), "cancel() of a sleeping task returns true") end
  lr.sleep(0)
  local direct = lr.now() - t0
  for i = 1, N do
    h.eq(tasks[i]:state(), "cancelled")
    h.ok(lr.iscancelled(tasks[i]:error()), "the error is the cancellation")
  end
  h.eq(woke, 0, "no cancelled sleeper ran on")
  h.eq(core.ntasks(), tasks_base, "live tasks after direct cancels")
  h.eq(core.refs(), refs_base, "registry references after direct cancels")

  -- the same through a gather: cancelling the gatherer cancels its children
  local fns = {}
  for i = 1, N do fns[i] = function() lr.sleep(30) woke = woke + 1 end end
  local gatherer = lr.spawn(lr.gather, fns)
  lr.sleep(0)
  lr.sleep(0)
  h.eq(core.ntasks(), tasks_base + N + 1, "the gatherer and its children are live")
  t0 = lr.now()
  gatherer:cancel()
  h.ok(wait_until(function() return gatherer:done() end, 10), "the gatherer ended")
  h.ok(wait_until(function() return core.ntasks() == tasks_base end, 10), "the children ended")
  local via_gather = lr.now() - t0
  h.eq(gatherer:state(), "cancelled")
  h.eq(woke, 0, "no cancelled sleeper ran on")
  h.eq(core.ntasks(), tasks_base, "live tasks after cancelling the gatherer")
  h.eq(core.refs(), refs_base, "registry references after cancelling the gatherer")
  -- their timers are gone too: a short sleep still wakes on time
  t0 = lr.now()
  lr.sleep(0.05)
  h.near(lr.now() - t0, 0.04, 0.5, "a sleep after the cancellations")
  soak.figure("%d sleeping tasks cancelled in %.3f s; %d more through their gatherer in %.3f s",
              N, direct, N, via_gather)
end, { timeout = 60 })

-- The ready queue and the sleepers' ring halve when a quarter full (above
-- 1 MB), in place: here each wraps around before it drains, so its two
-- parts move.  Order must survive, and so must the positions of sleepers
-- cancelled after the move.
h.test("300,000 tasks through the ready queue and the sleepers' ring as they wrap and shrink", function()
  local N = 300000
  local tasks_base, refs_base = core.ntasks(), core.refs()
  local log, tasks = {}, {}
  for i = 1, N do
    tasks[i] = lr.spawn(function()
      log[#log + 1] = i
      lr.sleep(0)  -- back of the queue, behind the tasks not run yet
      log[#log + 1] = i
    end)
  end
  lr.gather(tasks)
  h.eq(#log, 2 * N)
  local bad
  for k = 1, 2 * N do if log[k] ~= (k - 1) % N + 1 then bad = bad or k end end
  h.eq(bad, nil, "the first entry of the ready queue's log out of turn")

  local order, cancelled, ncancelled = {}, {}, 0
  for i = 1, N do
    tasks[i] = lr.spawn(function()
      lr.sleep(0.1)
      lr.sleep(0.3)  -- queued behind the first sleeps still in the ring
      order[#order + 1] = i
    end)
  end
  local t0 = lr.now()
  while lr.now() - t0 < 0.7 do
    lr.sleep(0.002)
    for _ = 1, 50 do
      local i = math.random(N)
      if tasks[i]:state() == "waiting" and tasks[i]:cancel() then
        cancelled[i], ncancelled = true, ncancelled + 1
      end
    end
  end
  lr.settle(tasks)
  bad = nil
  for k = 2, #order do if order[k] <= order[k - 1] or cancelled[order[k]] then bad = bad or k end end
  h.eq(bad, nil, "the first sleeper out of order (or cancelled yet woken)")
  h.eq(#order + ncancelled, N, "every sleeper woke or was cancelled")
  tasks, log, order = nil, nil, nil
  h.eq(core.ntasks(), tasks_base, "live tasks")
  h.eq(core.refs(), refs_base, "registry references")
end, { timeout = 120 })

h.test("10,000 fetches cancelled mid-flight", function()
  local N = 10000
  h.eq(lr.errorkind(select(2, pcall(lr.fetch, REFUSED))), "connect")  -- curl's multi exists
  local fd_base, tasks_base, refs_base = soak.fds(), core.ntasks(), core.refs()
  local fd_table = soak.fd_table()
  -- The server runs in a process of its own, so that every one of the
  -- 10,000 requests can be on the wire at once: in this process each would
  -- cost two descriptors.  serve() is what lifts the soft descriptor limit
  -- to the hard one (core/server.c); nothing else in the API does.
  lr.serve():stop()
  local srv = soak.serve_elsewhere(arg[-1])
  -- whatever happens below, the server process must go (it holds ctest's
  -- output pipe: left behind, it would keep the whole run waiting)
  local stopped = false
  local function stop() if not stopped then stopped = true srv.stop() end end
  local ok, err = pcall(function()
  local conns = math.min(N, soak.fd_limit() - 100)
  h.ok(conns >= 1000, "descriptor limit too low for this test: " .. soak.fd_limit())
  local config = lr.fetch_config()
  lr.fetch_config({ max_connections = conns })
  local url = srv.url .. "/delay/10"
  local tasks, finished = {}, 0
  local t0 = lr.now()
  for i = 1, N do tasks[i] = lr.spawn(function() lr.fetch(url) finished = finished + 1 end) end
  -- in flight: connected here, and accepted there (counting them reads two
  -- tables of 10,000 entries, and blocks the loop meanwhile: not too often)
  -- (all but a handful: under load the server's listen queue may drop a
  -- SYN, whose retry comes a second or more later; mid-flight is the point)
  local nearly = conns - conns // 200
  local all_open = wait_until(function()
    return soak.sockets(srv.port) >= nearly and select(2, soak.sockets(srv.port, srv.pid)) >= nearly
  end, 60, 0.5)
  local in_flight = lr.now() - t0
  lr.sleep(0.3)  -- the requests follow their connections
  local client = soak.sockets(srv.port)
  local _, server = soak.sockets(srv.port, srv.pid)
  local fd_busy = soak.fds()
  h.ok(all_open, ("%d connections open, %d accepted by the server, of %d"):format(client, server, conns))
  for i = 1, N do h.eq(tasks[i]:state(), "waiting", "task " .. i .. " in its fetch") end
  local t1 = lr.now()
  for i = 1, N do tasks[i]:cancel() end
  h.ok(wait_until(function() return core.ntasks() == tasks_base end, 10), "the tasks ended")
  local cancel_time = lr.now() - t1
  for i = 1, N do h.eq(tasks[i]:state(), "cancelled") end
  h.eq(finished, 0, "no cancelled fetch returned")
  h.eq(core.ntasks(), tasks_base, "live tasks")
  h.eq(core.refs(), refs_base, "registry references")
  local client_after = soak.sockets(srv.port)
  local fd_cancelled = soak.fds()
  h.eq(client_after, 0, "curl closed the connections of the cancelled transfers")
  -- a normal fetch works, at once (not behind the cancelled ones)
  local t2 = lr.now()
  local r = lr.fetch(srv.url .. "/get")
  h.eq(r.status, 200)
  local normal_time = lr.now() - t2
  h.ok(normal_time < 2, "the normal fetch took " .. normal_time .. " s")
  stop()
  local fd_after, requests = soak.drop_dead_connections(lr, fd_base)
  soak.figure("%d fetches of /delay/10 on the wire (%d connections) after %.2f s; cancelled in %.3f s; "
              .. "a fetch after that took %.3f s", N, conns, in_flight, cancel_time, normal_time)
  soak.figure("descriptors: %d before; %d in flight; %d after the cancel; %d once the server stopped "
              .. "and %d more request(s) let curl drop the fetch's cached connection",
              fd_base, fd_busy, fd_cancelled, fd_after, requests)
  h.eq(fd_after, fd_base, "descriptors back to the baseline (new: " .. soak.fd_diff(fd_table, soak.fd_table()) .. ")")
  lr.fetch_config(config)
  end)
  stop()
  if not ok then error(err, 0) end
end, { timeout = 150 })

h.done()
