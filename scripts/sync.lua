-- sync.lua: three tasks run one after another.  blocking_sleep stops the
-- whole program while it waits (like Python's time.sleep), so the waits add
-- up: 1 + 2 + 3 = about 6 seconds.  Compare with async.lua.
local function task(name, duration)
  print(("Task %s started"):format(name))
  blocking_sleep(duration)
  print(("Task %s finished after %g seconds"):format(name, duration))
end

local start = now()
task("A", 1)
task("B", 2)
task("C", 3)
print(("Total time: %.2f seconds"):format(now() - start))
