-- The allocator's reuse across sizes: 1.5 M small tables freed, then 1 M
-- short strings; prints the peak RSS (KiB).  Same script under lua5.4 and
-- lessonrun: bench/run.sh alloc compares them.
local peak_rss_kb = dofile(arg[0]:match("^(.-)[^/]*$") .. "peak_rss.lua")
local t = {}
for i = 1, 1500000 do t[i] = {i, i} end
t = nil
collectgarbage()
collectgarbage()
local s = {}
for i = 1, 1000000 do s[i] = "string number " .. i end
print(("RESULT peak_kb=%d strings=%d"):format(peak_rss_kb(), #s))
