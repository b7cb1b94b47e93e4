-- sync.lua: three tasks run one after another.  blocking_sleep stops the
-- whole program while it waits (like Python's time.sleep), and each task is
-- waited for before the next starts, so the waits add up: 1 + 2 + 3 = about
-- 6 seconds.  Compare with async.lua.
local function task(name, duration)
  print(("Task %s started"):format(name))
  blocking_sleep(duration)
  print(("Task %s finished after %g seconds"):format(name, duration))
end

local start = now()
spawn(task, "A", 1):wait()
spawn(task, "B", 2):wait()
spawn(task, "C", 3):wait()
print(("Total time: %.2f seconds"):format(now() - start))
