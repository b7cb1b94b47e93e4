-- The benchmarks' shared reading (lessonrun and lua5.4 alike): peak RSS in
-- KiB, VmHWM from /proc/self/status.
--   local peak_rss_kb = dofile(arg[0]:match("^(.-)[^/]*$") .. "peak_rss.lua")
return function()
  local f = io.open("/proc/self/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end
