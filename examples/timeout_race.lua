-- timeout_race.lua: give a slow job a deadline.  The job and a timer run as
-- two tasks; whichever ends first decides, and the other is cancelled.
--   lessonrun examples/timeout_race.lua
local function with_timeout(seconds, fn, ...)
  local job = spawn(fn, ...)
  local expired = false
  local timer = spawn(function() sleep(seconds) expired = true job:cancel() end)
  local ok, result = pcall(job.wait, job)
  timer:cancel()
  job:cancel()  -- if we were cancelled while waiting, the job stops too
  if ok then return result end
  if expired then return nil, "timed out" end
  error(result, 0)  -- the job's own error, or our cancellation
end

local function download(name, seconds)
  sleep(seconds)
  return name .. " downloaded"
end

local start = now()
print(with_timeout(0.5, download, "small file", 0.1))
print(with_timeout(0.5, download, "huge file", 30))
print(pcall(with_timeout, 0.5, function() error("disk full", 0) end))
print(("took %.1f s, not 30"):format(now() - start))
