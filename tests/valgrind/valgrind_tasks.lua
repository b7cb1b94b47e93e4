-- Run under valgrind (tests/CMakeLists.txt): spawn, gather, settle, cancel,
-- errors and tasks left behind at exit, so that every path that parks,
-- wakes, cancels or frees a task is taken at least once.
local t = spawn(function(x) sleep(0.01) return x end, 1)
assert(t:wait() == 1)

local a, b = gather(function() sleep(0.02) return "a" end, function() return "b" end)
assert(a == "a" and b == "b")

-- fail-fast: siblings cancelled while sleeping and while pending
assert(not pcall(gather, function() sleep(1) end, function() error("x") end, function() sleep(0) end))

local r = settle({ function() return 1 end, function() error({}) end })
assert(r[1].ok and not r[2].ok)

-- cancel a sleeper, a waiter, a task that never started, a gatherer
local sleeper = spawn(function() sleep(10) end)
local waiter = spawn(function() return sleeper:wait() end)
local never = spawn(function() end)
never:cancel()
local g = spawn(function() gather(function() sleep(10) end, function() sleep(10) end) end)
sleep(0.01)
g:cancel()
waiter:cancel()
sleeper:cancel()
for _, task in ipairs { sleeper, waiter, never, g } do assert(not pcall(task.wait, task)) end

-- a caught cancellation, then the next wait raises again
local stubborn = spawn(function() pcall(sleep, 10) sleep(0) end)
sleep(0)
stubborn:cancel()
assert(not pcall(stubborn.wait, stubborn))

-- deadlock detection
local forever = spawn(function() sleep(math.huge) end)
assert(not pcall(forever.wait, forever))

-- left behind: a pending task and a sleeping task, cancelled at exit
spawn(function() end)
spawn(function() sleep(0.05) end)
sleep(0)
print("valgrind_tasks done")
