-- oom_workload.lua: fetch, offload and JSON together, for oom_test.sh to run
-- under a memory limit.  Prints "done N" when every step succeeded.
local srv = serve()
local fetches = {}
for i = 1, 50 do
  fetches[i] = function() return fetch(srv.url .. (i % 2 == 0 and "/get?i=" .. i or "/bytes/4096")) end
end
local responses = gather(fetches)

local function crunch(n, t)  -- offloaded: arguments and results travel by value
  local s = 0
  for i = 1, n do s = s + i % 7 end
  return s, #t
end
local jobs = {}
for i = 1, 4 do jobs[i] = spawn(offload, crunch, 1000 * i, { i, "x", { y = i } }) end
gather(jobs)

local big = {}
for i = 1, 2000 do big[i] = { id = i, name = ("item %d"):format(i), tags = { "a", "b" }, ok = i % 2 == 0 } end
local text = json_encode(big)
assert(#json_decode(text) == #big)
srv:stop()
print("done " .. #responses)
