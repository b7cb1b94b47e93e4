-- Every registry reference the C side takes is given back: after a workload
-- that touches each kind (tasks that finish, fail, are cancelled; gather,
-- settle, timeout, semaphores, fetch, offload, the REPL aside) the count is
-- where it started.  Debug builds also abort at shutdown if it is not zero
-- (core/runtime/runtime.c), which the other tests' normal exits exercise.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local lr = h.lr
local core = require "lessonrun.core"

h.test("refs return to the baseline after a mixed workload", function()
  local base, live = core.refs(), core.ntasks()
  local srv = lr.serve()
  local sem = lr.semaphore(3)
  local fns = {}
  for i = 1, 50 do
    fns[i] = function()
      return sem:with(function()
        if i % 10 == 0 then error("boom " .. i) end
        lr.sleep(0.001 * (i % 5))
        return i
      end)
    end
  end
  lr.settle(fns)
  pcall(lr.gather, function() error("x") end, function() lr.sleep(1) end)
  local t = lr.spawn(lr.sleep, 10)
  lr.sleep(0)
  t:cancel()
  pcall(lr.timeout, 0.01, lr.sleep, 1)
  lr.fetch(srv.url .. "/get")
  pcall(lr.fetch, srv.url .. "/delay/2", { timeout = 0.05 })
  local f = lr.spawn(lr.fetch, srv.url .. "/delay/2")
  lr.sleep(0.02)
  f:cancel()
  lr.offload(function(x) return x + 1 end, 1)
  srv:stop()
  lr.sleep(0.01)  -- let the cancelled ones finish unwinding
  h.eq(core.ntasks(), live, "tasks alive (the harness's and this one)")
  h.eq(core.refs(), base, "registry references held")
end)

h.done()
