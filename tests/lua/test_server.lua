-- serve() from Lua: argument checks, the server object (url, host, port,
-- running, stop, <close>, __gc, tostring), two servers at once, and that the
-- server answers while this (main) thread is blocked.
--   lessonrun tests/lua/test_server.lua
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local lr = h.lr
local serve = lr.serve

local has_curl = os.execute("command -v curl >/dev/null 2>&1")

-- Status code (0: no answer) and body of a GET through the curl CLI.  It
-- blocks this thread, so an answer proves the server runs on its own.
local function get(url)
  local p = assert(io.popen("curl -s --max-time 10 -w '\\n%{http_code}' '" .. url .. "' 2>/dev/null"))
  local out = p:read("a")
  p:close()
  local body, code = out:match("^(.*)\n(%d+)$")
  return tonumber(code), body
end

-- ---- argument checks ---------------------------------------------------------
local badarg = "bad argument #1 to '[%w%.]*serve'"

h.test("options must be a table", function()
  h.raises(badarg .. " %(table expected, got number%)", serve, 42)
  h.raises(badarg .. " %(table expected, got string%)", serve, "x")
end)

h.test("port must be an integer in 0..65535", function()
  local msg = badarg .. " %(option 'port' must be an integer in 0%.%.65535%)"
  h.raises(msg, serve, { port = -1 })
  h.raises(msg, serve, { port = 70000 })
  h.raises(msg, serve, { port = 1.5 })
  h.raises(msg, serve, { port = "80" })
end)

h.test("unknown and malformed options", function()
  h.raises(badarg .. " %(unknown option 'bogus'", serve, { bogus = 1 })
  h.raises(badarg .. " %(option names must be strings", serve, { true })
  h.raises(badarg .. " %(option 'host' must be a string, got number%)", serve, { host = 1 })
  h.raises(badarg .. " %(option 'host' must be a numeric IPv4 or IPv6 address", serve,
           { host = "example.com" })
end)

h.test("serve(nil) and serve{} are serve()", function()
  local a, b = serve(nil), serve({})
  h.eq(a.host, "127.0.0.1")
  h.eq(b.host, "127.0.0.1")
  a:stop()
  b:stop()
end)

-- ---- one server ------------------------------------------------------------------
h.test("the server object", function()
  local s = serve()
  h.eq(type(s), "userdata")
  h.eq(s.host, "127.0.0.1")
  h.eq(math.type(s.port), "integer")
  h.ok(s.port > 0 and s.port <= 65535, "port")
  h.eq(s.url, "http://127.0.0.1:" .. s.port)
  h.eq(s.running, true)
  h.eq(s.nonsense, nil)
  h.match(tostring(s), "^lessonrun%.Server %(http://127%.0%.0%.1:%d+%)$")
  s:stop()
end)

if has_curl then
  h.test("it answers HTTP", function()
    local s <close> = serve()
    local code, body = get(s.url .. "/get?x=1")
    h.eq(code, 200)
    h.ok(body:find(s.url .. "/get?x=1", 1, true), "the echo has the url")
    h.eq((get(s.url .. "/status/418")), 418)
  end)

  -- while this thread is blocked for 1.5 s, a /delay/0.2 started in the
  -- background still finishes in about 0.2 s: the server keeps its own time
  h.test("it answers while the script blocks", function()
    local s <close> = serve()
    local timing = os.tmpname()
    os.execute("curl -s -o /dev/null -w '%{time_total}' '" .. s.url .. "/delay/0.2' > " .. timing .. " &")
    lr.blocking_sleep(1.5)
    local f = assert(io.open(timing))
    local took = tonumber(f:read("a"))
    f:close()
    os.remove(timing)
    h.near(took, 0.15, 1.0, "curl's time for /delay/0.2")
  end)
end

-- in-process clients: many delayed requests at once take about one delay,
-- and a blocking request from this thread is answered too
if lr.fetch and lr.fetch_config then
  h.test("500 concurrent fetches of /delay/0.5 take about one delay", function()
    local s <close> = serve()
    local saved = lr.fetch_config()
    lr.fetch_config({ max_connections = 1000 })
    local t0 = lr.now()
    local tasks = {}
    for i = 1, 500 do tasks[i] = lr.spawn(lr.fetch, s.url .. "/delay/0.5?i=" .. i) end
    local ok, responses = pcall(lr.gather, tasks)
    local elapsed = lr.now() - t0
    lr.fetch_config({ max_connections = saved.max_connections })
    h.ok(ok, responses)
    local n200 = 0
    for _, r in ipairs(responses) do
      if r.status == 200 then n200 = n200 + 1 end
    end
    h.eq(n200, 500, "answers with status 200")
    h.near(elapsed, 0.45, 3.0, "elapsed")
    h.eq(lr.blocking_fetch(s.url .. "/status/201").status, 201)
  end)
end

if lr.fetch then
  h.test("delays of several lengths at once: each answered in its turn, never early", function()
    local s <close> = serve()
    local delays = { 0.3, 0.1, 0.25, 0, 0.05, 0.2, 0.1 }
    local t0, order = lr.now(), {}
    local tasks = {}
    for i, d in ipairs(delays) do
      tasks[i] = lr.spawn(function()
        lr.fetch(s.url .. "/delay/" .. d .. "?i=" .. i)
        order[#order + 1] = d
        return lr.now() - t0
      end)
    end
    local took = lr.gather(tasks)
    for i, d in ipairs(delays) do
      h.ok(took[i] >= d, ("/delay/%g answered after %.4f s"):format(d, took[i]))
      h.ok(took[i] < d + 0.5, ("/delay/%g answered after %.4f s"):format(d, took[i]))
    end
    for i = 2, #order do h.ok(order[i - 1] <= order[i], "answered in order of their delays: " .. table.concat(order, " ")) end
  end)
end

-- a taken port is a runtime failure: it raises, naming the address
h.test("a taken port raises", function()
  local s <close> = serve()
  h.raises("serve: cannot listen on 127%.0%.0%.1 port " .. s.port, serve, { port = s.port })
end)

-- ---- two servers at once -------------------------------------------------------------
h.test("two servers at once", function()
  local a <close> = serve()
  local b <close> = serve({ host = "127.0.0.1", port = 0 })
  h.ok(a.port ~= b.port, "different ports")
  if has_curl then
    h.eq((get(a.url .. "/headers")), 200)
    h.eq((get(b.url .. "/headers")), 200)
  end
end)

-- ---- stop -------------------------------------------------------------------------------
h.test("stop", function()
  local s = serve()
  local other <close> = serve()
  local url, port = s.url, s.port
  s:stop()
  h.eq(s.running, false)
  s:stop()  -- idempotent
  h.eq(s.url, url, "fields stay readable")
  h.eq(s.port, port)
  h.match(tostring(s), "stopped")
  if has_curl then
    h.eq((get(url .. "/get")), 0, "a stopped server does not answer")
    h.eq((get(other.url .. "/get")), 200, "the other one still does")
  end
  local again = serve({ port = port })  -- the port is free again
  h.eq(again.port, port)
  again:stop()
  h.raises("bad argument #1 .*lessonrun%.Server expected, got number", s.stop, 42)
end)

-- requests waiting on their delay are resumed: stop does not wait for them
h.test("stop with requests still waiting is prompt", function()
  local s = serve()
  if has_curl then
    os.execute("for i in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null --max-time 5 '" ..
               s.url .. "/delay/3' & done; sleep 0.3")
  end
  local t0 = lr.now()
  s:stop()
  h.near(lr.now() - t0, 0, 1.0, "time to stop")
end)

h.test("<close> and __gc stop it", function()
  local url
  do
    local s <close> = serve()
    url = s.url
    h.eq(s.running, true)
  end
  if has_curl then h.eq((get(url .. "/get")), 0, "<close>") end
  local function forget()
    local lost = serve()
    return lost.url
  end
  url = forget()
  collectgarbage()
  collectgarbage()
  if has_curl then h.eq((get(url .. "/get")), 0, "__gc") end
end)

-- IPv6 loopback, when the machine has it
h.test("IPv6 loopback", function()
  local ok, s = pcall(serve, { host = "::1" })
  if not ok then return end  -- no IPv6 here
  h.eq(s.url, "http://[::1]:" .. s.port)
  s:stop()
end)

h.done()
