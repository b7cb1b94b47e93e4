-- fetch and blocking_fetch against the built-in server on 127.0.0.1.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local lr = h.lr

local srv = lr.serve()
local base = srv.url

local function both(name, fn)
  h.test(name .. " (fetch)", function() fn(lr.fetch) end)
  h.test(name .. " (blocking_fetch)", function() fn(lr.blocking_fetch) end)
end

both("status codes are responses, not errors", function(get)
  for _, code in ipairs({ 200, 201, 204, 404, 418, 500, 503 }) do
    h.eq(get(base .. "/status/" .. code).status, code)
  end
end)

both("response fields", function(get)
  local r = get(base .. "/get?x=1&y=two")
  h.eq(r.status, 200)
  h.eq(r.url, base .. "/get?x=1&y=two")
  h.ok(r.elapsed > 0 and r.elapsed < 5, "elapsed")
  h.match(r.headers["Content-Type"], "application/json")
  h.eq(r.headers["content-type"], r.headers["CONTENT-TYPE"])
  local j = r:json()
  h.eq(j.args.x, "1")
  h.eq(j.args.y, "two")
  h.eq(j.method, "GET")
  local names = {}
  for _, pair in ipairs(r.header_list) do names[#names + 1] = pair[1]:lower() end
  h.ok(table.concat(names, " "):find("content%-type"), "header_list keeps names")
end)

-- The headers wait in a raw block until first used; whatever a program does
-- with a response, it sees them as if they had always been there.
both("headers are built on first use, invisibly", function(get)
  local r = get(base .. "/get")
  h.eq(rawget(r, "headers"), nil, "lazy")
  local keys = {}
  for k, v in pairs(r) do keys[#keys + 1] = k h.eq(type(k), "string") h.ok(v ~= nil) end
  table.sort(keys)
  h.eq(table.concat(keys, " "), "body elapsed header_list headers http_version status url")
  h.ok(rawget(r, "headers"), "built by pairs")
  h.match(r.headers["content-type"], "application/json")

  local j = lr.json_decode(lr.json_encode(get(base .. "/get")))
  h.match(j.headers["content-type"], "application/json", "json_encode sees them")
  h.eq(type(j.header_list[1][1]), "string")

  r = get(base .. "/get")
  local ctype = lr.offload(function(resp) return resp.headers["content-type"] end, r)
  h.match(ctype, "application/json", "offload copies them")

  r = get(base .. "/get")
  r.headers = "mine"  -- set before ever read: the program's value wins
  h.eq(r.headers, "mine")
  h.eq(#r.header_list > 0, true)
  h.eq(r.headers, "mine")
  r = get(base .. "/get")
  r.extra = 1
  h.eq(r.extra, 1)
  h.eq(rawget(r, "headers"), nil, "other fields do not build them")
  h.eq(type(r.json), "function")
  h.eq(r.nothing, nil)
end)

both("request headers, method and body are sent", function(get)
  local r = get(base .. "/anything", { method = "PUT", headers = { ["X-Lesson"] = "six" }, body = "hello" })
  local j = r:json()
  h.eq(j.method, "PUT")
  h.eq(j.data, "hello")
  local found
  for k, v in pairs(j.headers) do if k:lower() == "x-lesson" then found = v end end
  h.eq(found, "six")
end)

-- A finished fetch's curl handle serves the next one (fetch: the last one
-- back is the first out, so these run one after the other on one handle).
-- It is reset between requests: nothing of one request may leak into the
-- next, whatever each of them set.
local function plain_get_is_plain(get, why)
  for _ = 1, 2 do  -- the second one reuses a handle a plain GET left
    local r = get(base .. "/get?plain=1")
    h.eq(r.status, 200, why)
    local j = r:json()
    h.eq(j.method, "GET", why)
    h.eq(j.args, { plain = "1" }, why)
    local names = {}
    for k, v in pairs(j.headers) do
      names[#names + 1] = k:lower()
      if k:lower() == "user-agent" then h.match(v, "^lessonrun/", why) end
    end
    table.sort(names)
    h.eq(table.concat(names, " "), "accept accept-encoding host user-agent", why)
  end
end

both("options of one request never reach the next", function(get)
  local pw = base:gsub("^http://", "http://user:secret@")
  local before = {
    { "/anything", { method = "PUT", headers = { ["X-Lesson"] = "six" }, body = "hello" } },
    { "/anything", { json = { a = 1 } } },
    { "/anything", { method = "DELETE" } },
    { "/get", { method = "HEAD" } },
    { "/get", { method = "GET" } },
    { "/get", { headers = { Accept = "text/plain", ["Content-Type"] = "x/y" } } },
    { "/get", { timeout = 0.3, connect_timeout = 0.3 } },
    { "/redirect/1", { follow = false } },
    { "/redirect/1", { max_redirects = 0 } },
    { "/bytes/10", { max_body = 10 } },
    { "/get", { verify = false } },
    { pw .. "/get" },
    { "http://127.0.0.1:1/" },  -- refused: a plain GET that failed
  }
  for _, case in ipairs(before) do
    local url = case[1]:match("^http") and case[1] or base .. case[1]
    pcall(get, url, case[2])
    local why = "after " .. url .. " " .. h.show(case[2])
    plain_get_is_plain(get, why)
    -- and what the reset path must undo: a timeout, follow, max_body
    if case[2] and case[2].timeout then h.eq(get(base .. "/delay/0.5").status, 200, why) end
    h.match(get(base .. "/redirect/2").url, "/get$", why)
    h.eq(#get(base .. "/bytes/5000").body, 5000, why)
  end
end)

both("a handle left by plain GETs takes any options", function(get)
  plain_get_is_plain(get, "first")
  h.eq(get(base .. "/get", { method = "HEAD" }).body, "")
  plain_get_is_plain(get, "after HEAD")
  local j = get(base .. "/anything", { method = "PATCH", headers = { ["X-Lesson"] = "seven" }, body = "b" }):json()
  h.eq(j.method, "PATCH")
  h.eq(j.data, "b")
  local found
  for k, v in pairs(j.headers) do if k:lower() == "x-lesson" then found = v end end
  h.eq(found, "seven")
  plain_get_is_plain(get, "after PATCH")
  h.eq(lr.errorkind(h.raises("timeout", get, base .. "/delay/3", { timeout = 0.2 })), "timeout")
  plain_get_is_plain(get, "after a timeout")
  h.eq(lr.errorkind(h.raises("max_body", get, base .. "/bytes/5000", { max_body = 1000 })), "too_large")
  h.eq(get(base .. "/redirect/1", { follow = false }).status, 302)
  local pw = base:gsub("^http://", "http://user:secret@")
  local auth
  for k, v in pairs(get(pw .. "/get"):json().headers) do if k:lower() == "authorization" then auth = v end end
  h.match(auth, "^Basic ", "credentials in the URL are sent")
  plain_get_is_plain(get, "after user:secret@")
end)

both("json= sends JSON with its content type", function(get)
  local j = get(base .. "/anything", { json = { a = 1, list = { 1, 2, 3 } } }):json()
  h.eq(j.method, "POST")
  h.eq(lr.json_decode(j.data), { a = 1, list = { 1, 2, 3 } })
  local ctype
  for k, v in pairs(j.headers) do if k:lower() == "content-type" then ctype = v end end
  h.eq(ctype, "application/json")
end)

both("binary bodies arrive intact", function(get)
  local r = get(base .. "/bytes/70000?seed=7")
  h.eq(#r.body, 70000)
  h.eq(get(base .. "/bytes/70000?seed=7").body, r.body, "same seed, same bytes")
  local zero = false
  for i = 1, #r.body do if r.body:byte(i) == 0 then zero = true break end end
  h.ok(zero, "a body of 70000 random bytes holds a NUL")
end)

both("bodies of every size near the first buffer's", function(get)
  for n = 250, 1030, 13 do
    local r = get(base .. "/bytes/" .. n .. "?seed=3")
    h.eq(#r.body, n)
    h.eq(r.body:sub(1, 200), get(base .. "/bytes/1030?seed=3").body:sub(1, 200), "same seed, same start")
  end
end)

both("redirects are followed, limited, or not followed", function(get)
  local r = get(base .. "/redirect/3")
  h.eq(r.status, 200)
  h.match(r.url, "/get$")
  local e = h.raises("redirect", get, base .. "/redirect/5", { max_redirects = 2 })
  h.eq(lr.errorkind(e), "redirect")
  h.eq(get(base .. "/redirect/1", { follow = false }).status, 302)
end)

both("invalid JSON is a clear error", function(get)
  local r = get(base .. "/bytes/10")
  local e = h.raises("invalid JSON", r.json, r)
  h.eq(lr.errorkind(e), "json")
end)

both("timeouts", function(get)
  local t0 = lr.now()
  local e = h.raises("timeout", get, base .. "/delay/3", { timeout = 0.2 })
  h.eq(lr.errorkind(e), "timeout")
  h.eq(e.url, base .. "/delay/3")
  h.near(lr.now() - t0, 0.15, 1.5, "gave up after about 0.2 s")
end)

both("refused port", function(get)
  local e = h.raises("connect", get, "http://127.0.0.1:1/")
  h.eq(lr.errorkind(e), "connect")
end)

both("body over max_body is an error, not a truncation", function(get)
  local e = h.raises("max_body", get, base .. "/bytes/5000", { max_body = 1000 })
  h.eq(lr.errorkind(e), "too_large")
  h.eq(#get(base .. "/bytes/1000", { max_body = 1000 }).body, 1000)
end)

both("only http and https", function(get)
  for _, url in ipairs({ "file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1/", "dict://x" }) do
    local e = h.raises("only http", get, url)
    h.eq(lr.errorkind(e), "url")
  end
end)

both("header injection is refused", function(get)
  h.raises("header injection", get, base .. "/get", { headers = { ["X-A"] = "a\r\nX-B: b" } })
  h.raises("not allowed", get, base .. "/get", { headers = { ["X-A\r\nX-B"] = "b" } })
  h.raises("not a valid HTTP method", get, base .. "/get", { method = "GET /x HTTP/1.1\r\n" })
end)

both("options: {} is no option; inherited ones count", function(get)
  h.eq(get(base .. "/get", {}):json().method, "GET")
  h.eq(get(base .. "/get", setmetatable({}, { __index = { method = "HEAD" } })).body, "")
end)

both("bad options are errors", function(get)
  h.raises("unknown option 'tiemout'", get, base .. "/get", { tiemout = 1 })
  h.raises("'timeout' must be", get, base .. "/get", { timeout = -1 })
  h.raises("'follow' must be a boolean", get, base .. "/get", { follow = "yes" })
  h.raises("string expected", get, 42)
  h.raises("table expected", get, base .. "/get", 42)
end)

h.test("1,000 concurrent fetches under a semaphore of 100", function()
  local sem, active, peak = lr.semaphore(100), 0, 0
  local fns = {}
  for i = 1, 1000 do
    fns[i] = function()
      return sem:with(function()
        active = active + 1
        peak = math.max(peak, active)
        local r = lr.fetch(base .. "/delay/0.05")
        active = active - 1
        return r.status
      end)
    end
  end
  local t0 = lr.now()
  local statuses = lr.gather(fns)
  h.eq(#statuses, 1000)
  for i = 1, 1000 do h.eq(statuses[i], 200) end
  h.eq(peak, 100, "at most 100 in flight, and the limit reached")
  h.eq(sem:available(), 100)
  h.ok(lr.now() - t0 < 20, "done in reasonable time")
end)

h.test("fetches run concurrently; blocking_fetch does not", function()
  local t0 = lr.now()
  lr.gather(function() return lr.fetch(base .. "/delay/0.3") end,
            function() return lr.fetch(base .. "/delay/0.3") end,
            function() return lr.fetch(base .. "/delay/0.3") end)
  h.near(lr.now() - t0, 0.25, 0.8, "three 0.3 s fetches together")
  t0 = lr.now()
  local was = lr.blocking_warnings(false)  -- blocking among tasks is the point here
  lr.gather(function() return lr.blocking_fetch(base .. "/delay/0.2") end,
            function() return lr.blocking_fetch(base .. "/delay/0.2") end)
  lr.blocking_warnings(was)
  h.near(lr.now() - t0, 0.38, 1.5, "two blocking 0.2 s fetches one after the other")
end)

h.test("cancelling a task mid-transfer frees it", function()
  local t = lr.spawn(lr.fetch, base .. "/delay/5")
  lr.sleep(0.1)
  h.eq(t:state(), "waiting")
  h.ok(t:cancel())
  lr.sleep(0)
  h.eq(t:state(), "cancelled")
  h.ok(lr.iscancelled(t:error()))
  -- the connection pool still works afterwards
  h.eq(lr.fetch(base .. "/status/200").status, 200)
end)

h.test("a timeout in gather cancels the siblings", function()
  local slow = lr.spawn(lr.fetch, base .. "/delay/5")
  h.raises("timeout", lr.gather, slow, function() return lr.fetch(base .. "/delay/3", { timeout = 0.1 }) end)
  lr.sleep(0)
  h.eq(slow:state(), "cancelled")
end)

h.test("fetch_all keeps order and the limit", function()
  local urls = {}
  for i = 1, 12 do urls[i] = base .. "/get?i=" .. i end
  local seen = 0
  local rs = lr.fetch_all(urls, { limit = 3, progress = function(done, total) seen = done h.eq(total, 12) end })
  for i = 1, 12 do h.eq(rs[i]:json().args.i, tostring(i)) end
  h.eq(seen, 12)
  h.raises("limit must be", lr.fetch_all, urls, { limit = 0 })
  h.raises("table of URLs", lr.fetch_all, "x")
end)

h.test("fetch_config changes the connection limits", function()
  local before = lr.fetch_config()
  h.eq(lr.fetch_config({ max_host_connections = 4 }).max_host_connections, 4)
  h.raises("unknown option", lr.fetch_config, { bogus = 1 })
  lr.fetch_config(before)
  h.eq(lr.fetch_config().max_host_connections, before.max_host_connections)
end)

srv:stop()
h.done()
