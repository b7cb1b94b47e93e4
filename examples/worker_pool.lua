-- worker_pool.lua: 8 jobs, at most 3 at a time.  A semaphore with 3 slots
-- is the pool: each job holds a slot while it works.
--   lessonrun examples/worker_pool.lua
local pool = semaphore(3)
local busy, most = 0, 0

local function job(n)
  return pool:with(function()
    busy = busy + 1
    most = math.max(most, busy)
    sleep(0.1)  -- the work: a request, a query...
    busy = busy - 1
    return n * n
  end)
end

local start = now()
local jobs = {}
for n = 1, 8 do jobs[n] = function() return job(n) end end
local squares = gather(jobs)
print("results: " .. table.concat(squares, " "))
print(("at most %d at once, %.1f s in all (8 jobs of 0.1 s, 3 at a time)"):format(most, now() - start))
