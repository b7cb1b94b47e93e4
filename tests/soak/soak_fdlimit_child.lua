-- Run by soak_fdlimit.lua under a lowered descriptor limit:
--   lessonrun soak_fdlimit_child.lua URL|serve COUNT [MAX_CONNECTIONS]
-- fetches URL (or /delay/0.2 of a server started here) COUNT times at once,
-- no semaphore, and prints "ok N of COUNT", the failures by message, and the
-- limits it ran with.  Exit status 0 only if every fetch answered 200.
local target, count, maxc = arg[1], tonumber(arg[2]), tonumber(arg[3])
local srv
if target == "serve" then
  srv = serve()
  target = srv.url .. "/delay/0.2"
end
if maxc then fetch_config({ max_connections = maxc }) end
local config = fetch_config()
local p = io.popen("sh -c 'ulimit -Sn; ulimit -Hn'")
local soft, hard = p:read("l", "l")
p:close()
local fns = {}
for i = 1, count do fns[i] = function() return fetch(target, { timeout = 10 }) end end
local t0 = now()
local outcomes = settle(fns)
local elapsed = now() - t0
local ok, failures = 0, {}
for _, o in ipairs(outcomes) do
  if o.ok and o.value.status == 200 then
    ok = ok + 1
  else
    local msg = o.ok and ("status " .. o.value.status) or tostring(o.error)
    msg = msg:gsub("port %d+", "port P"):gsub("http://[^)]*", "URL")
    failures[msg] = (failures[msg] or 0) + 1
  end
end
print(("limits: soft %s, hard %s; max_connections %d, max_host_connections %d; server %s")
      :format(soft, hard, config.max_connections, config.max_host_connections,
              srv and "in this process" or "in another process"))
print(("ok %d of %d in %.2f s"):format(ok, count, elapsed))
for msg, n in pairs(failures) do print(("failed %d: %s"):format(n, msg)) end
if srv then srv:stop() end
os.exit(ok == count and 0 or 1)
