-- The CPU lesson's shape (scripts/cpu.lua): two CPU loops one after another
-- on the main thread, then offloaded to two worker threads, in turns, in
-- one process.  Prints one RESULT line per round.
--   lessonrun bench/cpu_lessonrun.lua [N] [ROUNDS]
local N = tonumber(arg[1]) or 2e7
local ROUNDS = tonumber(arg[2]) or 5

local function work(n)
  local sum = 0
  for i = 1, n do sum = sum + math.sqrt(i) end
  return sum
end

for r = 1, ROUNDS do
  local t0 = now()
  local a = work(N) + work(N)
  local serial = now() - t0
  t0 = now()
  local x, y = gather(spawn(offload, work, N), spawn(offload, work, N))
  local offloaded = now() - t0
  assert(x + y == a, "the offloaded work gives the same sum")
  print(("RESULT round=%d n=%d serial=%.4f offloaded=%.4f ratio=%.3f"):format(r, N, serial, offloaded, serial / offloaded))
end
