-- async.lua: the same three tasks, run together.  sleep only parks the task
-- that calls it (like Python's asyncio.sleep), so while A waits, B and C
-- run: the total is the longest wait, about 3 seconds.  Compare with sync.lua.
local function task(name, duration)
  print(("Task %s started"):format(name))
  sleep(duration)
  print(("Task %s finished after %g seconds"):format(name, duration))
end

local start = now()
gather(spawn(task, "A", 1), spawn(task, "B", 2), spawn(task, "C", 3))
print(("Total time: %.2f seconds"):format(now() - start))
