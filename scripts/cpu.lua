-- cpu.lua: async is great for waiting, not for computing.  Two CPU-heavy
-- tasks gathered on the loop take as long as running them one after another:
-- only one task's Lua code runs at a time, and there is nothing to wait for.
-- offload runs each in a fresh Lua state on a worker thread, so with two or
-- more cores they really run at the same time.   lessonrun cpu.lua [N]
local N = tonumber(arg[1]) or 2e7

local function work(n)          -- pure computation: no waiting anywhere
  local sum = 0
  for i = 1, n do sum = sum + math.sqrt(i) end
  return sum
end

local start = now()
work(N); work(N)
local plain = now() - start
print(("one after another:        %.2f s"):format(plain))

start = now()
gather(spawn(work, N), spawn(work, N))
print(("gathered on the loop:     %.2f s  (no faster: nothing to wait for)"):format(now() - start))

start = now()
gather(spawn(offload, work, N), spawn(offload, work, N))
local threads = now() - start
local r = plain / threads
local why = r >= 1.15 and ("%.1fx faster"):format(r)
  or (r > 0.87 and "no faster" or "slower") .. ": the machine is busy or has one core"
print(("offloaded to two threads: %.2f s  (%s)"):format(threads, why))
