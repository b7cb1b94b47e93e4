-- fetch and blocking_fetch at their edges (issue #10): NUL bytes, headers
-- that frame or route a request, request smuggling, passwords in URLs,
-- integral floats, millisecond timeouts, redirects to other schemes, long
-- URLs, empty header values, the POST a body implies, fetch_all's up-front
-- checks, and many fetches under a tiny descriptor limit.
--   lessonrun tests/lua/test_fetch_edges.lua   (from build/tests, or with FAULTS_PORT)
-- Some tests talk to tests/faults/badpeer.c, which echoes the raw request: taken
-- from FAULTS_PORT when faults_test.sh runs this file, else started here.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local lr = h.lr

local DIR = arg[0]:match("^(.-)[^/]*$")
local LR = arg[-1]

if not lr.fetch then
  print("SKIP: no fetch in this build")
  return h.done()
end

local srv = lr.serve()
local base = srv.url
local authority = base:match("^http://([^/]+)")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function both(name, fn, opts)
  h.test(name .. " (fetch)", function() fn(lr.fetch, "fetch") end, opts)
  h.test(name .. " (blocking_fetch)", function() fn(lr.blocking_fetch, "blocking_fetch") end, opts)
end

-- The peer's stdin is this pipe: it exits when this process does.
local peer_url, peer_pipe
local function peer()
  if peer_url then return peer_url end
  local port = os.getenv("FAULTS_PORT")
  if not port then
    local exe
    for _, c in ipairs({ "./badpeer", (LR or ""):match("^(.-)[^/]*$") .. "tests/badpeer" }) do
      local f = io.open(c)
      if f then f:close() exe = c break end
    end
    assert(exe, "tests/badpeer not found: run from the build's tests folder, or set FAULTS_PORT")
    local out = os.tmpname()
    peer_pipe = assert(io.popen(q(exe) .. " > " .. q(out), "w"))
    local deadline = lr.now() + 5
    repeat
      lr.sleep(0.01)
      local f = io.open(out)
      local s = f and f:read("a")
      if f then f:close() end
      port = s and s:match("PORT (%d+)")
    until port or lr.now() > deadline
    os.remove(out)
    assert(port, "badpeer did not print its port")
  end
  peer_url = "http://127.0.0.1:" .. port
  return peer_url
end

local function no_secret(s, what)
  h.ok(type(s) == "string" and not s:find("s3cret", 1, true), (what or "") .. " without the password: " .. h.show(s))
end

-- ---- NUL bytes ---------------------------------------------------------------

-- C strings end at a NUL: "http://127.0.0.1\0.example:8080/" went to
-- 127.0.0.1:80, "/get\0/../x" fetched /get, "PO\0ST" sent PO.
both("a NUL byte is refused in the URL, the method, a header name or value", function(get, name)
  local cases = {
    { "http://127.0.0.1\0.example:8080/", nil, "#1 to '" .. name .. "' %(URL contains a NUL byte%)" },
    { base .. "/get\0/../x", nil, "#1 to '" .. name .. "' %(URL contains a NUL byte%)" },
    { base .. "/anything", { method = "PO\0ST" }, "#2 to '" .. name .. "' %(option 'method' contains a NUL byte%)" },
    { base .. "/get", { headers = { ["X-A\0b"] = "1" } },
      "#2 to '" .. name .. "' %(header name 'X%-A%.%.%.' has a character not allowed there %(a NUL byte%)%)" },
    { base .. "/get", { headers = { ["X-A"] = "1\0b" } }, "#2 to '" .. name .. "' %(header 'X%-A' contains CR, LF or NUL" },
    { base .. "/get", { headers = { ["X-A"] = "\0" } }, "#2 to '" .. name .. "' %(header 'X%-A' contains CR, LF or NUL" },
  }
  for _, c in ipairs(cases) do
    local ok, err = pcall(get, c[1], c[2])
    h.ok(not ok, "refused: " .. h.show(c[1]))
    h.eq(type(err), "string", "an argument error, not a transfer's failure")
    h.match(err, "^bad argument " .. c[3])
  end
end)

-- ---- headers that frame or route the request ------------------------------------

both("framing headers are refused, whatever their case", function(get, name)
  local pre = "^bad argument #2 to '" .. name .. "' %(header '"
  local refused = {
    { "Content-Length", "5", "is not yours to set" }, { "content-length", "0", "is not yours to set" },
    { "CONTENT-LENGTH", "0", "is not yours to set" }, { "Transfer-Encoding", "chunked", "is not yours to set" },
    { "transfer-ENCODING", "identity", "is not yours to set" },
    { "Upgrade", "websocket", "is refused" }, { "upgrade", "h2c", "is refused" }, { "UPGRADE", "", "is refused" },
    { "Host", "example.com", "must be the URL's host" }, { "host", "127.0.0.1", "must be the URL's host" },
    { "HOST", authority .. "0", "must be the URL's host" }, { "Host", "", "must be the URL's host" },
    { "Connection", "Upgrade", "may only be 'close' or 'keep%-alive'" },
    { "connection", "close, upgrade", "may only be" }, { "Connection", "te", "may only be" },
    { "Connection", "", "may only be" },
    { "Expect", "200-ok", "may only be '100%-continue'" }, { "expect", "100-continue, x", "may only be" },
  }
  for _, c in ipairs(refused) do
    -- (a timeout: a Content-Length the body does not fill would wait for the rest)
    local ok, err = pcall(get, base .. "/anything", { method = "POST", body = "x", headers = { [c[1]] = c[2] }, timeout = 2 })
    h.ok(not ok, c[1] .. ": " .. c[2])
    h.match(err, pre .. c[1]:gsub("%-", "%%-") .. "' " .. c[3], c[1])
  end
  -- a name with a space, a colon or a tab is no header name at all
  for _, n in ipairs({ "content-length ", "Content-Length:", " Content-Length", "Content-Length\t",
                       "Transfer-Encoding :", "Host:" }) do
    local ok, err = pcall(get, base .. "/get", { headers = { [n] = "0" } })
    h.ok(not ok, h.show(n))
    h.match(err, "^bad argument #2 to '" .. name .. "' %(header name '.*' has a character not allowed there", n)
  end
end)

both("the allowed forms of Host, Connection and Expect are sent as curl would", function(get)
  local P = peer()
  local a = P:match("^http://(.*)$")
  for _, hd in ipairs({ { Host = a }, { HOST = a }, { Connection = "close" }, { connection = " Keep-Alive " },
                        { Expect = "100-continue" }, { expect = " 100-Continue " } }) do
    local r = get(P .. "/echo", { headers = hd })
    h.eq(r.status, 200, h.show(hd))
    local _, hosts = r.body:gsub("\r\n[Hh][Oo][Ss][Tt]:", "")
    h.eq(hosts, 1, "one Host line: " .. r.body)
    h.match(r.body, "\r\nHost: " .. a:gsub("%.", "%%.") .. "\r\n")
  end
  -- the authority is the URL's host:port, without user:password@
  local r = get("http://u:s3cret@" .. a .. "/echo", { headers = { Host = a } })
  h.eq(r.status, 200)
end)

-- ---- request smuggling -------------------------------------------------------------

-- A Content-Length shorter than the body left the rest on the kept-alive
-- connection, where badpeer reads it as a request of its own: the next
-- request got the smuggled one's 418.  X-Conn and X-Req (badpeer's count of
-- connections and of requests on one) show the same connection and no
-- request in between.
both("no header can smuggle a request: the connection's next request gets its own answer", function(get)
  local P = peer()
  local smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
  for _, hd in ipairs({ { ["Content-Length"] = "0" }, { ["content-length"] = "1" }, { ["CONTENT-LENGTH"] = "0" },
                        { ["Transfer-Encoding"] = "chunked" }, { ["Content-Length"] = "0", Connection = "keep-alive" } }) do
    local first = get(P .. "/echo")
    local ok, err = pcall(get, P .. "/echo", { method = "POST", body = smuggled, headers = hd, timeout = 2 })
    local nxt = get(P .. "/echo")
    h.eq(nxt.status, 200, "the next request's own answer (418 is the smuggled request's)")
    h.match(nxt.body, "^GET /echo HTTP/1%.1\r\n")
    h.eq(nxt.headers["x-conn"], first.headers["x-conn"], "the same kept-alive connection")
    h.eq(tonumber(nxt.headers["x-req"]), tonumber(first.headers["x-req"]) + 1, "no request in between")
    h.ok(not ok, "refused: " .. h.show(hd))
    h.match(err, "is not yours to set")
  end
  -- the body is framed by curl: its Content-Length is the body's
  local r = get(P .. "/echo", { method = "POST", body = smuggled })
  h.match(r.body, "\r\nContent%-Length: " .. #smuggled .. "\r\n")
  h.eq(r.body:sub(-#smuggled), smuggled)
  h.eq(get(P .. "/ok").body, "ok\n")
end)

-- ---- passwords in URLs ---------------------------------------------------------

both("a URL's password never shows: the error, err.url, r.url, tostring(r)", function(get)
  local ok, err = pcall(get, "http://user:s3cret@127.0.0.1:1/")
  h.ok(not ok)
  h.eq(lr.errorkind(err), "connect")
  no_secret(tostring(err), "tostring(err)")
  no_secret(err.message, "err.message")
  no_secret(err.url, "err.url")
  h.eq(err.url, "http://user:***@127.0.0.1:1/")
  h.match(err.message, "http://user:%*%*%*@127%.0%.0%.1:1/")

  local r = get("http://user:s3cret@" .. authority .. "/get")
  h.eq(r.status, 200)
  h.eq(r.url, "http://user:***@" .. authority .. "/get")
  no_secret(tostring(r), "tostring(r)")

  -- a refused scheme, a long URL, a timeout: every message that quotes it
  for _, c in ipairs({ { "ftp://user:s3cret@127.0.0.1/x" },
                       { "http://user:s3cret@" .. authority .. "/get?" .. string.rep("a", 300 * 1024) },
                       { "http://user:s3cret@" .. authority .. "/delay/1", { timeout = 0.01 } } }) do
    ok, err = pcall(get, c[1], c[2])
    h.ok(not ok)
    no_secret(tostring(err), "tostring(err)")
    no_secret(err.url, "err.url")
  end
end)

h.test("a task's name in --trace hides a URL's password and keeps the bytes after a NUL", function()
  local core = require "lessonrun.core"
  local was = core.trace(true)
  local function f() end
  local a = lr.spawn(f, "h://:s3cret@")
  local b = lr.spawn(f, "a\0b\n1")
  local c = lr.spawn(f, "http://u:s3cret@127.0.0.1:1/")
  a:wait() b:wait() c:wait()
  core.trace(was)
  local names = core.trace_data().names
  h.eq(names[a:id()], 'f("h://:***@")')
  h.eq(names[b:id()], 'f("a\\0b\\0101")', "control bytes written as %q writes them")
  h.eq(names[c:id()], 'f("http://u:*..")', "redacted before it is cut")
  -- and the chart that --trace prints
  local script = os.tmpname()
  local fh = assert(io.open(script, "w"))
  fh:write('local function f() sleep(0.01) end\nspawn(f, "h://:s3cret@"):wait()\n')
  fh:close()
  local p = assert(io.popen(("%s --trace %s 2>&1"):format(q(LR), q(script))))
  local out = p:read("a")
  p:close()
  os.remove(script)
  h.match(out, 'f%("h://:%*%*%*@"%)', "the task's row")
  no_secret(out, "the --trace chart")
end)

-- ---- numbers -----------------------------------------------------------------------

both("integral floats are taken as integers; 2.5, nan and inf are refused", function(get, name)
  for _, o in ipairs({ { max_body = 2 ^ 20 }, { max_body = 1e6 }, { max_redirects = 5.0 }, { max_redirects = 0.0 } }) do
    h.eq(get(base .. "/get", o).status, 200, h.show(o))
  end
  local ok, err = pcall(get, base .. "/bytes/100", { max_body = 50.0 })
  h.eq(lr.errorkind(err), "too_large", "max_body = 50.0 is 50 bytes")
  ok, err = pcall(get, base .. "/redirect/3", { max_redirects = 2.0 })
  h.eq(lr.errorkind(err), "redirect", "max_redirects = 2.0 is 2")
  h.eq(get(base .. "/redirect/3", { max_redirects = 3.0 }).status, 200)
  for _, v in ipairs({ 2.5, 0 / 0, math.huge, -math.huge, 2.0 ^ 63, -1.0 }) do
    ok, err = pcall(get, base .. "/get", { max_body = v })
    h.ok(not ok, "max_body " .. tostring(v))
    h.match(err, "^bad argument #2 to '" .. name .. "' %(option 'max_body' must be a non%-negative integer")
    ok, err = pcall(get, base .. "/get", { max_redirects = v })
    h.ok(not ok, "max_redirects " .. tostring(v))
    h.match(err, "^bad argument #2 to '" .. name .. "' %(option 'max_redirects' must be an integer from 0 to 1000%)")
  end
  for _, v in ipairs({ 0 / 0, math.huge, -1, 0 }) do
    ok, err = pcall(get, base .. "/get", { timeout = v })
    h.match(err, "option 'timeout' must be > 0", "timeout " .. tostring(v))
  end
end)

h.test("fetch_all{limit = 2.0} and fetch_config{max_connections = 100.0} take integral floats", function()
  local rs = lr.fetch_all({ base .. "/get", base .. "/get?x=1", base .. "/get?x=2" },
                          { limit = 2.0, headers = { Host = authority } })
  h.eq(#rs, 3)
  h.eq(rs[3]:json().args.x, "2")
  for _, v in ipairs({ 2.5, 0 / 0, math.huge, 0.0 }) do
    h.raises("bad argument #2 to 'fetch_all' %(limit must be an integer >= 1%)", lr.fetch_all, { base .. "/get" }, { limit = v })
  end
  local old = lr.fetch_config()
  local c = lr.fetch_config({ max_connections = 100.0, max_host_connections = 4.0 })
  h.eq(c.max_connections, 100)
  h.eq(math.type(c.max_connections), "integer")
  h.eq(c.max_host_connections, 4)
  for _, v in ipairs({ 2.5, 0 / 0, math.huge, -1.0 }) do
    h.raises("'max_connections' must be an integer from 0 to 100000", lr.fetch_config, { max_connections = v })
    h.raises("'max_host_connections' must be an integer", lr.fetch_config, { max_host_connections = v })
  end
  lr.fetch_config({ max_connections = old.max_connections, max_host_connections = old.max_host_connections })
  h.eq(lr.fetch_config(), old, "restored")
end)

-- ---- timeouts ------------------------------------------------------------------------

-- curl 7.88's multi interface dropped a 1 ms deadline while it connected
-- and gave up at its 200 ms connect timer.  The fastest of five runs tells
-- that bug (0.2 s every time) from a loaded machine (some runs late).
both("timeout = 0.001 ends in kind timeout at once, not at curl's 200 ms timer", function(get)
  local best = math.huge
  for _ = 1, 5 do
    local t0 = lr.now()
    local ok, err = pcall(get, base .. "/delay/1", { timeout = 0.001 })
    local dt = lr.now() - t0
    h.ok(not ok, "a 1 s delay cannot beat a 1 ms timeout")
    h.eq(lr.errorkind(err), "timeout", tostring(err))
    h.ok(dt < 0.9, ("%.3f s: well before the 1 s answer"):format(dt))
    if dt < best then best = dt end
  end
  h.ok(best < 0.15, ("the fastest of 5 took %.3f s"):format(best))
end, { timeout = 15 })

-- ---- redirects, long URLs --------------------------------------------------------------

both("a redirect to file: or ftp: is kind url, naming the target", function(get)
  local P = peer()
  for _, c in ipairs({ { "/redirect-file", "file:///etc/passwd" }, { "/redirect-ftp", "ftp://127.0.0.1/x" } }) do
    local ok, err = pcall(get, P .. c[1])
    h.ok(not ok, c[1])
    h.eq(lr.errorkind(err), "url", tostring(err))
    h.match(err.message, "redirect to '" .. c[2]:gsub("%p", "%%%0") .. "' refused")
    h.eq(err.url, P .. c[1])
    local r = get(P .. c[1], { follow = false })
    h.eq(r.status, 302, "not followed: the redirect itself")
    h.eq(r.headers.location, c[2])
  end
  h.eq(get(P .. "/ok").status, 200)
end)

both("a URL over 256 KiB is kind url, too long, and not quoted whole", function(get, name)
  local long = base .. "/get?x=" .. string.rep("a", 256 * 1024)
  local ok, err = pcall(get, long)
  h.ok(not ok)
  h.eq(lr.errorkind(err), "url")
  h.match(err.message, "^" .. name .. ": URL too long %(" .. #long .. " bytes, at most 262144%)")
  h.ok(#err.message < 400, "the message quotes the start only")
  h.eq(err.url, long)
end)

-- ---- what is sent ---------------------------------------------------------------------------

both("headers = {X = ''} sends the header, empty", function(get)
  local P = peer()
  local r = get(P .. "/echo", { headers = { X = "", ["X-Two"] = "v" } })
  h.match(r.body, "\r\nX:\r\n", "an empty X")
  h.match(r.body, "\r\nX%-Two: v\r\n")
  local j = get(base .. "/anything", { headers = { ["X-Empty"] = "" } }):json()
  local found
  for k, v in pairs(j.headers) do if k:lower() == "x-empty" then found = v end end
  h.eq(found, "", "the built-in server sees it")
end)

-- A body without a method is a POST, as with curl -d and requests.post: the
-- body's Content-Type is curl's form default, and json = ... says JSON.
both("body = '...' without a method is a POST", function(get)
  local P = peer()
  local r = get(P .. "/echo", { body = "a=1" })
  h.match(r.body, "^POST /echo HTTP/1%.1\r\n")
  h.match(r.body, "\r\nContent%-Length: 3\r\n")
  h.match(r.body, "\r\nContent%-Type: application/x%-www%-form%-urlencoded\r\n")
  h.eq(r.body:sub(-3), "a=1")
  r = get(P .. "/echo", { json = { a = 1 } })
  h.match(r.body, "^POST /echo HTTP/1%.1\r\n")
  h.match(r.body, "\r\nContent%-Type: application/json\r\n")
  local j = get(base .. "/anything", { body = "hello" }):json()
  h.eq(j.method, "POST")
  h.eq(j.data, "hello")
  h.eq(get(base .. "/anything", { method = "PUT", body = "x" }):json().method, "PUT", "a method given wins")
end)

-- ---- fetch_all ------------------------------------------------------------------------------

-- {progress = 42} failed after the first fetch ("attempt to call a number
-- value"), and a bad option was blamed on fetch at api.lua.  The first URL
-- takes 1 s: an error before that was raised before any fetch ended.
-- A response's headers are built on first read; raw walkers (json_encode,
-- offload) have HTTP's settler build them first.  Nothing a script can set
-- reaches that machinery, and a response is still one without its metatable.
h.test("raw walkers see a response's headers, whatever its metatable; no table can ask to be settled", function()
  local r = lr.fetch(base .. "/get")
  for k in pairs(getmetatable(r)) do h.ok(not k:find("settle"), "the response's metatable shows " .. k) end
  local bare = lr.fetch(base .. "/get")
  setmetatable(bare, nil)  -- the headers still wait in their raw block
  local j = lr.json_decode(lr.json_encode(bare))
  h.eq(type(j.headers), "table", "json_encode of a response without its metatable")
  h.eq(j.status, 200)
  h.eq(lr.offload(function(x) return type(x.headers), #x.header_list > 0 end, setmetatable(lr.fetch(base .. "/get"), nil)),
       "table", "offload of a response without its metatable")
  -- a table of the script's own: its metatable's fields are never called
  local calls = 0
  local t = setmetatable({ a = 1 }, { __lr_settle = function(x) calls = calls + 1; x.b = 2 end })
  h.eq(lr.json_encode(t), '{"a":1}')
  h.eq(select(2, lr.offload(function(x) return x.a, x.b end, t)), nil)
  h.eq(calls, 0, "a metatable's __lr_settle was called")
  local loud = setmetatable({}, { __index = function(_, k) error("looked up " .. tostring(k)) end })
  h.eq(lr.json_encode(setmetatable({ a = 1 }, loud)), '{"a":1}', "a metatable whose __index raises")
  h.eq(lr.offload(function(x) return x.a end, setmetatable({ a = 1 }, loud)), 1)
  h.eq(lr.json_encode(lr.fetch(base .. "/get")):find('"headers"') ~= nil, true)
end)

h.test("fetch_all checks every argument before it fetches, naming fetch_all at the caller's line", function()
  local slow = base .. "/delay/1"
  local cases = {
    { { slow }, { progress = 42 }, "bad argument #2 to 'fetch_all' %(option 'progress' must be a function, got number%)" },
    { { slow, 42 }, nil, "bad argument #1 to 'fetch_all' %(item 2: string expected, got number%)" },
    { { slow, base .. "/get\0x" }, nil, "bad argument #1 to 'fetch_all' %(item 2: URL contains a NUL byte%)" },
    { { slow, base .. "/a b" }, nil, "bad argument #1 to 'fetch_all' %(item 2: URL contains a space, CR or LF%)" },
    { { slow, "ftp://127.0.0.1/x" }, nil, "^fetch_all: item 2: only http:// and https:// URLs are allowed", "url" },
    { { slow, base .. "/" .. string.rep("a", 300 * 1024) }, nil, "^fetch_all: item 2: URL too long", "url" },
    { { slow }, { bogus = 1 }, "bad argument #2 to 'fetch_all' %(unknown option 'bogus'%)" },
    { { slow }, { max_body = 2.5 }, "bad argument #2 to 'fetch_all' %(option 'max_body' must be" },
    { { slow }, { timeout = "soon" }, "bad argument #2 to 'fetch_all' %(option 'timeout' must be a number" },
    { { slow }, { limit = 2.5 }, "bad argument #2 to 'fetch_all' %(limit must be an integer" },
    { { slow }, { headers = { ["Content-Length"] = "1" } }, "bad argument #2 to 'fetch_all' %(header 'Content%-Length' is not yours" },
    { { slow }, { headers = { ["X\0"] = "1" } }, "bad argument #2 to 'fetch_all' %(header name" },
    { { slow, "http://example.com/" }, { headers = { host = authority } },
      "bad argument #2 to 'fetch_all' %(header 'host' must be each URL's host%[:port%], and item 2's is another" },
    { { slow }, { method = "PO\0ST" }, "bad argument #2 to 'fetch_all' %(option 'method' contains a NUL byte%)" },
    { { slow }, 42, "bad argument #2 to 'fetch_all' %(table expected, got number%)" },
    { 42, nil, "bad argument #1 to 'fetch_all' %(table of URLs expected, got number%)" },
  }
  for _, c in ipairs(cases) do
    local t0 = lr.now()
    local ok, err = pcall(function() local rs = lr.fetch_all(c[1], c[2]) return rs end)  -- no tail call: keeps the line
    local dt = lr.now() - t0
    h.ok(not ok, c[3])
    local msg = tostring(err)
    h.match(msg, c[3])
    if c[4] then
      h.eq(lr.errorkind(err), c[4], msg)
    else
      h.match(msg, "^[^:]*test_fetch_edges%.lua:%d+: ", "at the caller's line")
    end
    h.ok(not msg:find("api.lua", 1, true), "not blamed on api.lua: " .. msg)
    h.ok(dt < 0.5, ("refused before fetching: %.2f s"):format(dt))
  end
end)

-- ---- descriptors --------------------------------------------------------------------------

-- The default cap on connections was a quarter of the descriptor limit,
-- ignoring those the runtime already held: under `ulimit -n 14`, 298 of
-- 300 fetches failed at once ("Couldn't connect") instead of waiting.  The
-- server is in another process, so the 14 are the client's alone.
h.test("300 fetches under ulimit -n 14 all succeed: queued, none fails at once", function()
  local soak = dofile(DIR .. "../soak/soak.lua")
  local other = soak.serve_elsewhere(LR)
  local script = os.tmpname()
  local fh = assert(io.open(script, "w"))
  fh:write([[
local url = arg[1] .. "/get"
local fns = {}
for i = 1, 300 do fns[i] = function() return fetch(url, { timeout = 30 }) end end
local n, first = 0, nil
for _, o in ipairs(settle(fns)) do
  if o.ok and o.value.status == 200 then n = n + 1
  else first = first or (o.ok and ("status " .. o.value.status) or tostring(o.error)) end
end
print(("ok %d of 300, max_connections %d"):format(n, fetch_config().max_connections))
if first then print("first failure: " .. first) end
os.exit(n == 300 and 0 or 1)
]])
  fh:close()
  local cmd = ("ulimit -n 14 && exec timeout 40 %s %s %s 2>&1"):format(q(LR), q(script), q(other.url))
  local p = assert(io.popen("bash -c " .. q(cmd)))
  local out = p:read("a")
  local ok = p:close()
  other.stop()
  os.remove(script)
  h.match(out, "ok 300 of 300", "the child said: " .. out)
  h.ok(ok, "the child exited 0: " .. out)
end, { timeout = 60 })

-- ---- header values: blanks, control characters, length (issue #10) ----------------------

-- curl takes "X-A:" followed by blanks as "remove X-A": "   " and "\t" were
-- silently not sent, though an empty value is sent empty.
both("a value of only blanks is sent as an empty header", function(get)
  local P = peer()
  local r = get(P .. "/echo", { headers = { ["X-A"] = "   ", ["X-B"] = "\t", ["X-C"] = " \t ", ["X-D"] = " x " } })
  h.match(r.body, "\r\nX%-A:\r\n", "X-A, empty")
  h.match(r.body, "\r\nX%-B:\r\n", "X-B, empty")
  h.match(r.body, "\r\nX%-C:\r\n", "X-C, empty")
  h.match(r.body, "\r\nX%-D: +x +\r\n", "X-D with its value")
end)

-- RFC 9110 5.5: a field value holds no control character but HTAB.
both("a control character other than tab in a header value is refused", function(get, name)
  for _, c in ipairs({ { "\1", "0x01", 1 }, { "a\127", "0x7F", 2 }, { "ok\27[31m", "0x1B", 3 }, { "\31", "0x1F", 1 } }) do
    local ok, err = pcall(get, base .. "/get", { headers = { ["X-A"] = c[1] } })
    h.ok(not ok, h.show(c[1]))
    h.eq(type(err), "string", "an argument error")
    h.match(err, "^bad argument #2 to '" .. name .. "' %(header 'X%-A' contains control character " .. c[2]
      .. " at byte " .. c[3] .. " of its value%)", h.show(c[1]))
  end
  h.eq(get(base .. "/get", { headers = { ["X-A"] = "a\tb" } }).status, 200, "a tab is fine")
end)

-- curl builds the request head in a 1 MiB buffer: past it the fetch failed
-- as kind "other", "Out of memory".
both("a header line over 64 KiB, or headers over 512 KiB in all, are refused up front", function(get, name)
  local pre = "^bad argument #2 to '" .. name .. "' %("
  local ok, err = pcall(get, base .. "/get", { headers = { ["X-Big"] = string.rep("x", 1 << 20) } })
  h.ok(not ok)
  h.eq(type(err), "string", "an argument error, not kind 'other'")
  h.match(err, pre .. "header 'X%-Big' too long: 1048583 bytes, at most 65536%)")
  ok, err = pcall(get, base .. "/get", { headers = { ["X-Big"] = string.rep("x", 65536 - 6) } })
  h.match(err, pre .. "header 'X%-Big' too long: 65537 bytes, at most 65536%)", "one byte over")
  local many = {}
  for i = 1, 9 do many["X-" .. i] = string.rep("x", 60000) end
  ok, err = pcall(get, base .. "/get", { headers = many })
  h.match(err, pre .. "request headers too long: 540063 bytes in all, at most 524288%)")
  -- at the limits curl sends it all: badpeer, which holds 16 KiB, cuts it off
  local P = peer()
  local most = { Y = string.rep("y", 524288 - 7 * 65538 - 5) }
  for i = 1, 7 do most["X-" .. i] = string.rep("x", 65536 - 5) end
  for _, hd in ipairs({ { X = string.rep("x", 65536 - 3) }, most }) do
    ok, err = pcall(get, P .. "/echo", { headers = hd, timeout = 10 })
    h.ok(not ok and type(err) == "table", "a transfer's failure")
    h.ok(lr.errorkind(err) ~= "other", "not curl's Out of memory: " .. h.show(err))
  end
end)

-- curl itself writes Host without the scheme's default port.
both("Host may name the URL's default port, or leave it out, in either case of host", function(get, name)
  local P = peer()
  local port = P:match(":(%d+)$")
  h.eq(get("http://LocalHost:" .. port .. "/echo", { headers = { Host = "localHOST:" .. port } }).status, 200,
       "a host in another case")
  for _, c in ipairs({ { "http://127.0.0.1:80/", "127.0.0.1" }, { "http://127.0.0.1/", "127.0.0.1:80" },
                       { "https://127.0.0.1:443/", "127.0.0.1" }, { "https://127.0.0.1/", "127.0.0.1:443" },
                       { "http://[::1]:80/", "[::1]" }, { "http://127.0.0.1:80/", "127.0.0.1:" },
                       { "HTTP://127.0.0.1:80/", " 127.0.0.1 " } }) do
    local ok, err = pcall(get, c[1], { headers = { Host = c[2] }, timeout = 2, connect_timeout = 2 })
    h.ok(ok or type(err) == "table", c[1] .. " with Host " .. c[2] .. ": " .. h.show(err))
  end
  for _, c in ipairs({ { "http://127.0.0.1:443/", "127.0.0.1" }, { "https://127.0.0.1/", "127.0.0.1:80" },
                       { "http://127.0.0.1/", "127.0.0.1:8" }, { "http://127.0.0.1:80/", "127.0.0.2" },
                       { "http://[::1]/", "::1" }, { "http://127.0.0.1/", "127.0.0.1:99999" } }) do
    local ok, err = pcall(get, c[1], { headers = { Host = c[2] } })
    h.ok(not ok, c[1] .. " with Host " .. c[2])
    h.match(err, "^bad argument #2 to '" .. name .. "' %(header 'Host' must be the URL's host", c[2])
  end
end)

h.test("an option name with a NUL is unknown, not the option before it; fetch_all's Host rule is fetch's", function()
  for _, f in ipairs({ lr.fetch, lr.blocking_fetch }) do
    h.raises("unknown option 'timeout", f, base .. "/get", { ["timeout\0x"] = 0.001 })
  end
  local port = base:match(":(%d+)$")
  -- the Host curl itself would write, with blanks, and with the default port spelled out
  local rs = lr.fetch_all({ base .. "/get", base .. "/get" }, { headers = { Host = " 127.0.0.1:" .. port .. " " } })
  h.eq(rs[1].status, 200)
  h.eq(rs[2].status, 200)
  h.raises("must be each URL's host", lr.fetch_all, { "http://127.0.0.1:80/" }, { headers = { Host = "127.0.0.2" } })
  local ok, err = pcall(lr.fetch_all, { "http://127.0.0.1:1/" }, { headers = { Host = "127.0.0.1:1" } })
  h.ok(not ok and lr.errorkind(err) == "connect", tostring(err))  -- accepted, then refused by the port
end)

srv:stop()
h.done()
