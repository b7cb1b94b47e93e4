-- The built-in server at its edges: binary-safe echoes (NUL bytes in the
-- query, the body), the codes and limits it refuses with 400, and stop
-- failing a delayed request instead of answering it early.
--   lessonrun tests/lua/test_server_edges.lua
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local lr = h.lr

if not lr.fetch then
  print("SKIP: no fetch in this build")
  return h.done()
end

local function get(s, path, opts)
  return lr.fetch(s.url .. path, opts)
end

local function refused(s, path, pattern)
  local r = get(s, path)
  h.eq(r.status, 400, path)
  h.match(r:json().error, pattern, path)
end

h.test("the echo keeps NUL bytes in the query and the body", function()
  local s <close> = serve()
  local j = get(s, "/anything?a=x%00y&k%00ey=1&a=%00", { method = "POST", body = "a\0b\0" }):json()
  h.eq(j.args.a, { "x\0y", "\0" }, "a repeated argument, in order")
  h.eq(j.args["k\0ey"], "1")
  h.eq(j.data, "a\0b\0")
  h.eq(j.url, s.url .. "/anything?a=x%00y&k%00ey=1&a=%00", "the url as sent")
  j = get(s, "/get?q=%00%00"):json()
  h.eq(j.args.q, "\0\0")
end)

h.test("the echo is always JSON: invalid UTF-8 shows as U+FFFD, a binary body as base64", function()
  local s <close> = serve()
  local j = get(s, "/anything?b=%ff%c3", { method = "PUT", body = "\0\1\255\254" }):json()
  h.eq(j.args.b, "\u{FFFD}\u{FFFD}")
  h.eq(j.data, "data:application/octet-stream;base64,AAH//g==")
  j = get(s, "/anything", { method = "POST", body = "é€" }):json()
  h.eq(j.data, "é€", "a UTF-8 body stays text")
end)

h.test("a NUL byte in the path is refused, not cut short", function()
  local s <close> = serve()
  refused(s, "/get%00/x", "NUL byte %(%%00%) in the path")
  refused(s, "/anything%00", "NUL byte")
  refused(s, "/status/2%0000", "NUL byte")
  h.eq(get(s, "/get?x=%00").status, 200, "in the query it is data")
end)

h.test("/status refuses every code that is not a final answer", function()
  local s <close> = serve()
  for _, c in ipairs({ "100", "101", "102", "103", "199", "0", "99", "600", "999", "1000", "-1", "x", "2e2",
                       "200.0", "", "99999999999999999999999" }) do
    refused(s, "/status/" .. c, "final code in 200%.%.599")
  end
  for _, c in ipairs({ 200, 204, 299, 304, 404, 599 }) do
    h.eq(get(s, "/status/" .. c).status, c)
  end
end)

h.test("limits answer 400 naming the limit, never a silent clamp", function()
  local s <close> = serve()
  refused(s, "/bytes/104857601", "at most 104857600")
  refused(s, "/bytes/18446744073709551615", "")
  refused(s, "/delay/61", "at most 60 seconds")
  refused(s, "/delay/60.001", "at most 60 seconds")
  refused(s, "/delay/99999999999999999999", "at most 60 seconds")
  refused(s, "/redirect/101", "in 1%.%.100")
  refused(s, "/redirect/0", "in 1%.%.100")
  refused(s, "/bytes/5?seed=1%002", "seed must be a whole number")
  local r = get(s, "/anything", { method = "POST", body = string.rep("x", 1024 * 1024 + 1) })
  h.eq(r.status, 413, "a body over 1 MiB")
  h.eq(#get(s, "/bytes/1000").body, 1000)
end)

-- stop resumes the waiting requests so that libmicrohttpd can stop; they
-- must then fail, never be answered before their delay is over
h.test("stop during /delay fails the request, every time", function()
  local answered = {}
  for run = 1, 20 do
    local s = serve()
    local t = lr.spawn(function()
      local ok, r = pcall(lr.fetch, s.url .. "/delay/5")
      return ok and r.status or (type(r) == "table" and r.kind) or tostring(r)
    end)
    lr.sleep(0.1)
    s:stop()
    local got = t:wait()
    if got ~= "connection" then answered[#answered + 1] = ("run %d: %s"):format(run, tostring(got)) end
  end
  h.eq(answered, {}, "runs where the fetch did not fail with kind connection")
end)

h.test("a delay that is due is still answered", function()
  local s <close> = serve()
  local t0 = lr.now()
  local r = get(s, "/delay/0.2")
  h.eq(r.status, 200)
  h.ok(lr.now() - t0 >= 0.2, "not early")
end)

-- Raw requests, as no client library would send them: the bytes go to the
-- server through bash's /dev/tcp (the server answers from its own thread),
-- and everything it sends back until it closes, or 5 s pass, is returned.
local function raw(s, req)
  local port = s.url:match(":(%d+)$")
  local file = os.tmpname()
  local fh = assert(io.open(file, "wb"))
  fh:write(req)
  fh:close()
  local p = assert(io.popen(("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%s && cat %s >&3 && timeout 5 cat <&3'")
    :format(port, file)))
  local out = p:read("a")
  p:close()
  os.remove(file)
  local codes = {}
  for c in out:gmatch("HTTP/1%.1 (%d%d%d)") do codes[#codes + 1] = tonumber(c) end
  return codes, out
end

-- each is refused alone, and the connection closed at once: what follows
-- it (the smuggled request here) is never read as a request
local function refused_raw(s, req, code, pattern, what)
  local t0 = lr.now()
  local codes, out = raw(s, req .. "GET /status/418 HTTP/1.1\r\nHost: x\r\n\r\n")
  h.eq(codes, { code }, what)
  h.match(out, pattern, what)
  h.match(out:lower(), "connection: close", what)
  h.ok(lr.now() - t0 < 4, what .. ": closed at once, not after the client gave up")
end

h.test("whitespace before the colon and obs-fold are refused, never smuggled (RFC 9112 5.1, 5.2)", function()
  local s <close> = serve()
  local head = "POST /anything HTTP/1.1\r\nHost: x\r\n"
  refused_raw(s, head .. "Content-Length : 39\r\n\r\n", 400, "not a token", "space before the colon")
  refused_raw(s, head .. "Content-Length\t: 39\r\n\r\n", 400, "not a token", "tab before the colon")
  refused_raw(s, head .. "Transfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, "not a token",
              "Transfer-Encoding with a space")
  refused_raw(s, head .. "X(A): 1\r\nContent-Length: 0\r\n\r\n", 400, "not a token", "a name with ( )")
  refused_raw(s, head .. "Content-Length:\r\n 39\r\n\r\n", 400, "obs%-fold", "a folded Content-Length")
  refused_raw(s, "GET /anything HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, "obs%-fold",
              "a folded value")
  refused_raw(s, "GET /anything HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400, "obs%-fold",
              "folded with a tab")
  local codes, out = raw(s, "GET /anything HTTP/1.1\r\nHost: x\r\nX-A:  a b \r\nConnection: close\r\n\r\n")
  h.eq(codes, { 200 }, "a well-formed head is still taken")
  h.match(out, '"X%-A": "a b', "its value")
end)

h.test("a NUL byte anywhere in the head is refused, not cut short (RFC 9110 5.5)", function()
  local s <close> = serve()
  refused_raw(s, "GET /anything HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\nX-B: 1\r\n\r\n", 400, "NUL byte",
              "in a value")
  refused_raw(s, "GET /anything HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400, "NUL byte", "in the last value")
  -- libmicrohttpd refuses this one itself (it finds no colon), in HTML
  refused_raw(s, "GET /anything HTTP/1.1\r\nHost: x\r\nX-\0A: b\r\n\r\n", 400, "", "in a name")
  refused_raw(s, "GET /anything HTTP/1.1\nHost: x\nX-A: a\0b\n\n", 400, "NUL byte", "with bare LF line ends")
  refused_raw(s, "GET /anything\0/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "NUL byte in the request line",
              "in the path")
  refused_raw(s, "GET /anything?a=1\0b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "NUL byte in the request line",
              "in the query")
  local codes = raw(s, "POST /anything HTTP/1.1\nHost: x\nContent-Length: 3\nConnection: close\n\nabc")
  h.eq(codes, { 200 }, "bare LF line ends and a body are still taken")
end)

h.test("a transfer coding other than chunked is answered 501 at once, never left hanging", function()
  local s <close> = serve()
  local head = "POST /anything HTTP/1.1\r\nHost: x\r\n"
  for _, te in ipairs({ "gzip, chunked", "chunked, gzip", "xchunked", "gzip", "identity" }) do
    refused_raw(s, head .. "Transfer-Encoding: " .. te .. "\r\n\r\n0\r\n\r\n", 501, "other than chunked", te)
  end
  refused_raw(s, head .. "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
              "more than one Transfer%-Encoding", "twice")
  local codes, out = raw(s, head .. "Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
  h.eq(codes, { 200 }, "chunked is still taken")
  h.match(out, '"data": "abc"', "its body")
end)

h.test("serve refuses a NUL byte in host and in option names", function()
  local ok, err = pcall(serve, { host = "0.0.0.0\0x" })
  h.eq(ok, false, "host")
  h.match(err, "bad argument #1 to '[%w.]*serve' %(option 'host' must not contain a NUL byte%)")
  ok, err = pcall(serve, { ["host\0x"] = "0.0.0.0" })
  h.eq(ok, false, "an option name")
  h.match(err, "bad argument #1 to '[%w.]*serve' %(option names must not contain a NUL byte%)")
  local s <close> = serve()
  h.eq(s["url\0x"], nil, "a field name with a NUL is no field")
end)

h.done()
