-- fetch and blocking_fetch against a peer that misbehaves on purpose
-- (tests/faults/badpeer.c): each fault ends in its error kind, within its timeout,
-- with the task that fetched finished and nothing left behind, and /ok still
-- answers afterwards.  Run through faults_test.sh, which starts the peer and
-- sets FAULTS_PORT:
--   tests/faults/faults_test.sh build/tests/badpeer -- build/lessonrun tests/faults/test_faults.lua
-- FAULTS_SLACK=<factor> widens the time limits (the valgrind entry sets it).
--
-- The kinds asserted are what lessonrun maps from libcurl 7.88 today; the
-- ones that once read differently are in CHANGELOG.md ("fault kinds").
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "../lua/harness.lua")
local lr = h.lr
local core = require "lessonrun.core"

local port = tonumber(os.getenv("FAULTS_PORT") or "")
if not port then
  io.stderr:write("test_faults.lua: FAULTS_PORT is not set; run it through tests/faults/faults_test.sh\n")
  os.exit(1)
end
local base = "http://127.0.0.1:" .. port
local slack = tonumber(os.getenv("FAULTS_SLACK") or "") or 1
local SHORT = 0.5        -- the timeout given to faults that never end by themselves
local LONG = 3 * slack   -- the timeout given to faults that should end at once

-- blocking_fetch in a test task holds the harness's watchdog up: that is
-- the point of it, not something to warn about here
lr.blocking_warnings(false)

local function both(name, fn, opts)
  h.test(name .. " (fetch)", function() fn(lr.fetch) end, opts)
  h.test(name .. " (blocking_fetch)", function() fn(lr.blocking_fetch) end, opts)
end

-- get(base .. path, opts) in a task of its own.  Returns ok, the response
-- or the error, and the seconds it took; checks that the task ended and
-- that no task is left behind.
local function attempt(get, path, opts)
  local before = core.ntasks()
  local t0 = lr.now()
  local t = lr.spawn(get, base .. path, opts)
  local ok, res = pcall(t.wait, t)
  local secs = lr.now() - t0
  h.ok(t:done(), "the fetching task ended")
  h.eq(core.ntasks(), before, "tasks alive, back to what they were")
  return ok, res, secs
end

-- The peer still serves a normal request through the same API.
local function still_works(get)
  local r = get(base .. "/ok", { timeout = LONG })
  h.eq(r.status, 200)
  h.eq(r.body, "ok\n")
end

-- fault(name, path, kind, pattern [, timeout]): the fetch raises
-- {kind=kind} whose message (less the URL at its end) matches pattern (or
-- one of a list of patterns); with a timeout (SHORT) it takes about that
-- long, without it it ends well before LONG.
local function fault(name, path, kind, pattern, timeout)
  both(name, function(get)
    local ok, e, secs = attempt(get, path, { timeout = timeout or LONG })
    h.ok(not ok, "raised")
    local code = type(e) == "table" and e.curl_code
    h.eq(lr.errorkind(e), kind, "kind (curl code " .. tostring(code) .. ")")
    h.eq(e.url, base .. path)
    local suffix = " (" .. base .. path .. ")"
    h.eq(e.message:sub(-#suffix), suffix, "the message ends with the URL")
    local detail = e.message:sub(1, -#suffix - 1)
    local alts = type(pattern) == "table" and pattern or { pattern }
    local matched = false
    for _, p in ipairs(alts) do matched = matched or detail:find(p) ~= nil end
    h.ok(matched, ("message %q matches one of %s"):format(detail, h.show(alts)))
    if timeout then
      h.near(secs, timeout - 0.05, timeout + 1.0 * slack, "ended at its timeout")
    else
      h.near(secs, 0, 1.0 * slack, "ended at once, not at its timeout")
    end
    still_works(get)
  end)
end

both("the peer answers /ok", function(get)
  local ok, r = attempt(get, "/ok")
  h.ok(ok, "no error")
  h.eq(r.status, 200)
  h.eq(r.body, "ok\n")
  h.eq(r.headers["content-type"], "text/plain")
end)

-- headers are built when first read (the response keeps their raw block
-- until then): case-insensitive, repeats joined, header_list keeps them all
both("repeated headers, built on first use", function(get)
  local r = get(base .. "/repeat-headers")
  h.eq(rawget(r, "headers"), nil, "not built before they are read")
  h.eq(r.headers["X-Dup"], "one, two, three")
  h.eq(r.headers["x-dup"], r.headers["X-DUP"])
  h.eq(r.headers["set-cookie"], "a=1, b=2")
  h.eq(#r.header_list, 7)
  h.eq(r.header_list[1], { "X-Dup", "one" })
  h.eq(r.header_list[3], { "x-dup", "two" })
  h.eq(r.header_list[6], { "X-DUP", "three" })
  h.eq(r.body, "ok\n")
  -- the other of the two, read first
  h.eq(get(base .. "/repeat-headers").header_list[4], { "Set-Cookie", "a=1" })
end)

-- never answers / streams forever / too slow: the timeout fires
fault("no answer: timeout", "/never", "timeout", "timed out", SHORT)
fault("a chunked body that never ends: timeout", "/chunked-forever", "timeout", "timed out", SHORT)
fault("1 byte per 100 ms: timeout", "/drip", "timeout", "timed out", SHORT)

-- closed before or during the response
fault("closed without an answer: connection", "/empty", "connection", "Empty reply")          -- 52
fault("closed inside the status line: connection", "/close-status", "connection", "Empty reply")  -- 52
fault("closed mid-body: connection", "/close-body", "connection", "900 bytes remaining")     -- 18
-- fixed: on a socket error curl_uv.c lets curl read, so fetch reports the
-- reset itself, as blocking_fetch does (it used to say "select/poll
-- returned error")
fault("reset mid-body: connection", "/reset-body", "connection", "Connection reset by peer")
fault("body shorter than Content-Length: connection", "/short-body", "connection", "90 bytes remaining")  -- 18

-- libcurl reports "Received HTTP/0.9 when not allowed" as
-- CURLE_UNSUPPORTED_PROTOCOL (1); the URL was fine, the reply was not HTTP:
-- "protocol" (it used to be mapped to "url")
fault("an invalid status line: protocol", "/bad-status", "protocol", "HTTP/0%.9")
-- over curl's 300 KB of headers is CURLE_RECV_ERROR (56); the connection
-- was fine, the reply too large: "too_large" (it used to be "connection")
fault("1 MB of headers: too_large", "/huge-headers", "too_large", "Too large response headers")

-- closed after the status line, inside the headers: libcurl reports
-- success (CURLE_OK), but the blank line that ends the headers never came,
-- so lessonrun raises "connection" (it used to return an empty 200)
fault("closed mid-headers: connection", "/close-headers", "connection",
      "connection closed before the end of the response headers")

-- a body longer than its Content-Length: curl reads Content-Length bytes,
-- ignores the rest and does not reuse that connection
both("body longer than Content-Length: the declared bytes, no error", function(get)
  local ok, r, secs = attempt(get, "/long-body", { timeout = LONG })
  h.ok(ok, "no error raised")
  h.eq(r.status, 200)
  h.eq(r.body, "0123456789")
  h.near(secs, 0, 1.0 * slack, "ended at once")
  still_works(get)
end)

both("a redirect loop: redirect", function(get)
  local ok, e, secs = attempt(get, "/redirect-loop", { timeout = LONG })
  h.ok(not ok, "raised")
  h.eq(lr.errorkind(e), "redirect")
  h.match(e.message, "Maximum %(10%) redirects followed")
  h.near(secs, 0, 1.0 * slack, "ended at once")
  ok, e = attempt(get, "/redirect-loop", { timeout = LONG, max_redirects = 3 })
  h.ok(not ok, "raised")
  h.eq(lr.errorkind(e), "redirect")
  h.match(e.message, "Maximum %(3%) redirects followed")
  local r = get(base .. "/redirect-loop", { follow = false, timeout = LONG })
  h.eq(r.status, 302)
  h.eq(r.headers.location, "/redirect-loop")
  still_works(get)
end)

h.test("200 concurrent fetches of /never all time out together", function()
  local before = core.ntasks()
  local n, kinds, ends = 200, {}, {}
  local t0 = lr.now()
  local tasks = {}
  for i = 1, n do
    tasks[i] = lr.spawn(function()
      local ok, e = pcall(lr.fetch, base .. "/never", { timeout = 0.3 })
      ends[i] = lr.now() - t0
      kinds[i] = ok and "no error" or lr.errorkind(e)
    end)
  end
  lr.gather(tasks)
  h.eq(core.ntasks(), before, "every task ended")
  local first, last = math.huge, 0
  for i = 1, n do
    h.eq(kinds[i], "timeout", "fetch #" .. i)
    first, last = math.min(first, ends[i]), math.max(last, ends[i])
  end
  h.near(first, 0.25, 0.3 + 1.0 * slack, "the first gave up after about 0.3 s")
  h.near(last - first, 0, 0.5 * slack, "and the last soon after")
  still_works(lr.fetch)
end)

-- (fetch only: a blocking_fetch cannot be cancelled by another task, none runs)
h.test("a task cancelled while a chunked body streams ends cancelled", function()
  local before = core.ntasks()
  local t = lr.spawn(lr.fetch, base .. "/chunked-forever")  -- no timeout
  lr.sleep(0.3)
  h.eq(t:state(), "waiting")
  h.ok(t:cancel())
  lr.sleep(0)
  h.eq(t:state(), "cancelled")
  h.ok(lr.iscancelled(t:error()))
  h.eq(core.ntasks(), before, "nothing left behind")
  still_works(lr.fetch)
end)

-- Not h.done(): it exits at once with the Lua state open, so whatever the
-- runtime still holds (curl handles, sockets) would count as reachable.
-- Ending the script lets lessonrun close everything, and then valgrind and
-- LeakSanitizer see what a real program leaves behind.
print(("%d passed, %d failed"):format(h.passed, h.failed))
if h.failed > 0 or h.passed == 0 then os.exit(1) end
