-- Run under valgrind (tests/CMakeLists.txt): the built-in server's paths that
-- allocate or hand memory between threads: every endpoint, request bodies,
-- repeated query arguments and headers, /delay timers that fire, requests
-- still suspended at stop, stop twice, <close>, a server left to __gc and
-- one left running at exit.  No timing checks: valgrind is slow.
local s = serve()
local base = s.url

if fetch then
  local paths = { "/", "/get?a=1&a=2&a=3&b", "/headers", "/status/418", "/status/204",
                  "/bytes/100000?seed=1", "/bytes/0", "/redirect/2", "/delay/0.05",
                  "/delay/abc", "/nowhere", "/anything/x?y=z" }
  for _, p in ipairs(paths) do
    local r = fetch(base .. p, { headers = { ["X-Twice"] = "1", ["x-twice"] = "2" } })
    assert(r.status >= 200, p)
  end
  local r = fetch(base .. "/anything", { method = "POST", body = ("x"):rep(5000) })
  assert(r.status == 200)
  assert(blocking_fetch(base .. "/delay/0.05").status == 200)
  -- delays in flight while the server stops: resumed, then closed
  local waiting = {}
  for i = 1, 20 do waiting[i] = spawn(fetch, base .. "/delay/30", { timeout = 20 }) end
  sleep(0.5)
  s:stop()
  for _, t in ipairs(waiting) do pcall(t.wait, t) end
elseif os.execute("command -v curl >/dev/null 2>&1") then
  os.execute("curl -s -o /dev/null '" .. base .. "/get?a=1&a=2' '" .. base .. "/delay/0.05' '" ..
             base .. "/bytes/10000' --data-binary hello '" .. base .. "/anything'")
  os.execute("for i in 1 2 3 4 5; do curl -s -o /dev/null --max-time 10 '" .. base ..
             "/delay/30' & done; sleep 0.5")
end
s:stop()
s:stop()

do
  local c <close> = serve({ host = "127.0.0.1" })
end
do
  local forgotten = serve()
end
collectgarbage()
collectgarbage()
assert(not pcall(serve, { port = 70000 }))

local left = serve()  -- still running at exit: lua_close's __gc stops it
print("valgrind_server done", left.port > 0)
