-- index.lua: N HTTP requests, first one by one with blocking_fetch (like
-- Python's requests), then all together with fetch, at most LIMIT in flight
-- (like aiohttp with a semaphore).  Offline, it starts the built-in server,
-- whose every answer takes 0.2 s of simulated network latency.
--   lessonrun index.lua [URL] [N] [LIMIT]
local URL, N, LIMIT = arg[1], tonumber(arg[2]) or 20, tonumber(arg[3]) or 5

local server
if not URL or URL == "-" then
  server = serve()                      -- 127.0.0.1, any free port
  URL = server.url .. "/delay/0.2"
end
print(("%d requests to %s, at most %d at once"):format(N, URL, LIMIT))

local function report(how, seconds, responses)
  local counts = {}
  for _, r in ipairs(responses) do counts[r.status] = (counts[r.status] or 0) + 1 end
  local list = {}
  for status, n in pairs(counts) do list[#list + 1] = ("%d x %d"):format(n, status) end
  print(("%-28s %6.2f s   (%s)"):format(how, seconds, table.concat(list, ", ")))
end

local tty = isatty(io.stderr)           -- progress on stderr, only on a terminal
local function progress(done)
  if tty then io.stderr:write(done < N and ("\r  %d/%d"):format(done, N) or "\r\27[K") end
end

local start = now()
local one_by_one = {}
for i = 1, N do one_by_one[i] = blocking_fetch(URL); progress(i) end
local sync_time = now() - start
report("blocking_fetch, one by one:", sync_time, one_by_one)

local sem = semaphore(LIMIT)
local done = 0
local function fetch_one(url)
  local r = sem:with(fetch, url)
  done = done + 1; progress(done)
  return r
end
start = now()
local tasks = {}
for i = 1, N do tasks[i] = spawn(fetch_one, URL) end
local together = gather(tasks)
local async_time = now() - start
report(("fetch, %d at a time:"):format(LIMIT), async_time, together)
print(("speed-up: %.1fx"):format(sync_time / async_time))
if server then server:stop() end
