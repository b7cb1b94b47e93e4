-- oom_tasks.lua: many sleeping tasks while the heap fills up, for
-- oom_test.sh: when memory runs out, the script ends and every task left
-- must be cancelled promptly (no full collection per task).
for _ = 1, 1000 do spawn(function() sleep(60) end) end
sleep(0)
local t = {}
for i = 1, 50000 do t[i] = { i, tostring(i) } end
pending_warnings(false)  -- the sleepers are left on purpose
print(#t)
