-- pipeline.lua: start every piece of work at once, then use the results in
-- order.  A task handle is a promise: wait() gives its result when ready.
--   lessonrun examples/pipeline.lua
local function render(page)
  sleep(0.3 - page * 0.05)  -- later pages happen to be quicker
  return ("page %d rendered"):format(page)
end

local start = now()
local pending = {}
for page = 1, 5 do pending[page] = spawn(render, page) end  -- all start now

for page, task in ipairs(pending) do  -- consumed in order, as each is needed
  print(task:wait())
end
print(("%.2f s in all: the time of the slowest, not the sum"):format(now() - start))
