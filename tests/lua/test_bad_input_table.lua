-- The bad-input table: every public function, each kind of bad argument, and
-- what the user gets.  Each row is a test; the same rows make
-- docs/bad-input.md (`lessonrun tests/lua/test_bad_input_table.lua --markdown`),
-- and a test checks that the document matches them.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")

-- {function, kind of input, call, expected}: expected is an error pattern,
-- or a table {ok = "what happens"} with an optional check(results...), or a
-- table {err = pattern, check = check(error value), shown = "what the
-- document says"} for an error whose value, not only its message, matters
-- (shown replaces a message that changes from run to run).
local F = "[%w%.]*"  -- 'sleep' or 'lessonrun.sleep': Lua names the function either way
-- the text as it is, as a pattern
local function lit(text) return (text:gsub("%p", "%%%0")) end
-- what spawn, run... add when they get what a call returned, not the function
local function called(fname, got, usage)
  return lit(("bad argument #%s to '"):format(fname:match("#(%d)") or 1)) .. F
    .. lit(("%s' (function expected, got %s; pass the function and its arguments: %s)")
      :format(fname:gsub("#%d", ""), got, usage))
end
local function gathered(fname, where, got, args)
  return lit(("bad %s to '%s' (function or task expected, got %s; pass tasks or functions, not what they return: %s(%s))")
    :format(where, fname, got, fname, args))
end
local function kind(k) return function(e) assert(errorkind(e) == k, "error kind " .. tostring(errorkind(e))) end end
local function equals(want)
  return function(got) assert(got == want, ("expected %q, got %q"):format(tostring(want), tostring(got))) end
end
-- The built-in server, for the calls that must get through
local server = serve({ port = 0 })
SERVER = server.url
pending_warnings(false)  -- rows such as task:result's leave a task sleeping
local rows = {
  { "sleep", "wrong type", [[sleep("x")]], "bad argument #1 to '" .. F .. "sleep' %(number expected, got string%)" },
  { "sleep", "nil", [[sleep(nil)]], "bad argument #1 to '" .. F .. "sleep' %(number expected, got nil%)" },
  { "sleep", "no argument", [[sleep()]], "bad argument #1 to '" .. F .. "sleep' %(number expected, got no value%)" },
  { "sleep", "NaN", [[sleep(0/0)]], "seconds must be a number, got nan" },
  { "sleep", "negative", [[sleep(-1)]], "seconds must be >= 0, got %-1" },
  { "sleep", "-inf", [[sleep(-math.huge)]], "seconds must be >= 0" },
  { "sleep", "zero", [[sleep(0)]], { ok = "yields once to the others and the loop, then returns" } },
  { "sleep", "+inf", [[timeout(0.05, sleep, math.huge)]], "timeout: gave up",
    note = "waits until cancelled (here by a timeout)" },
  { "sleep", "huge", [[timeout(0.05, sleep, 1e300)]], "timeout: gave up", note = "waits (practically) forever" },
  { "blocking_sleep", "wrong type", [[blocking_sleep({})]], "number expected, got table" },
  { "blocking_sleep", "NaN", [[blocking_sleep(0/0)]], "seconds must be a number, got nan" },
  { "blocking_sleep", "negative", [[blocking_sleep(-0.5)]], "seconds must be >= 0" },
  { "blocking_sleep", "+inf", [[blocking_sleep(math.huge)]], "seconds must be finite" },
  { "blocking_sleep", "zero", [[blocking_sleep(0)]], { ok = "returns at once" } },
  { "spawn", "wrong type", [[spawn(42)]], called("spawn", "number", "spawn(f, a), not spawn(f(a))") },
  { "spawn", "nil", [[spawn(nil)]], called("spawn", "nil", "spawn(f, a), not spawn(f(a))") },
  { "spawn", "empty string", [[spawn("")]], called("spawn", "string", "spawn(f, a), not spawn(f(a))") },
  { "spawn", "no argument", [[spawn()]], called("spawn", "no value", "spawn(f, a), not spawn(f(a))") },
  { "spawn", "a call instead of the function", [[spawn(sleep(0))]], called("spawn", "no value", "spawn(f, a), not spawn(f(a))"),
    note = "the call runs first (here `sleep(0)`, which returns nothing), then" },
  { "spawn", "a task", [[spawn(spawn(sleep, 0))]], "function expected, got lessonrun.Task; a task starts when it is spawned: wait for it with t:wait%(%)" },
  { "spawn", "userdata", [[spawn(io.stdout)]], "bad argument #1 to '" .. F .. "spawn' %(function expected, got FILE%*%)$" },
  { "gather", "wrong type", [[gather(42)]], gathered("gather", "argument #1", "number", "spawn(f, a), g") },
  { "gather", "nil among others", [[gather(function() end, nil)]], gathered("gather", "argument #2", "nil", "spawn(f, a), g") },
  { "gather", "calls instead of the functions", [[gather(sleep(0), sleep(0))]], gathered("gather", "argument #1", "nil", "spawn(f, a), g"),
    note = "the calls run first, one after the other, then" },
  { "gather", "bad list item", [[gather({function() end, "x"})]], gathered("gather", "item 2 of the list", "string", "{spawn(f, a), g}") },
  { "gather", "itself", [[gather(current())]], "a task cannot wait for itself" },
  { "gather", "no argument", [[gather()]], { ok = "returns nothing at once" } },
  { "gather", "empty list", [[gather({})]], { ok = "returns an empty table" } },
  { "settle", "wrong type", [[settle(true)]], gathered("settle", "argument #1", "boolean", "spawn(f, a), g") },
  { "run", "wrong type", [[run(42)]], called("run", "number", "run(f, a), not run(f(a))") },
  { "run", "nil", [[run(nil)]], called("run", "nil", "run(f, a), not run(f(a))") },
  { "run", "no argument", [[run()]], called("run", "no value", "run(f, a), not run(f(a))") },
  { "timeout", "wrong type (seconds)", [[timeout("1", sleep, 0)]], "bad argument #1 to 'timeout' %(seconds must be a number >= 0, got string%)" },
  { "timeout", "NaN", [[timeout(0/0, sleep, 0)]], "bad argument #1 to 'timeout' %(seconds must be a number >= 0, got nan%)" },
  { "timeout", "negative", [[timeout(-1, sleep, 0)]], "bad argument #1 to 'timeout'" },
  { "timeout", "wrong type (fn)", [[timeout(1, 42)]], called("timeout#2", "number", "timeout(s, f, a), not timeout(s, f(a))") },
  { "timeout", "no fn", [[timeout(1)]], called("timeout#2", "no value", "timeout(s, f, a), not timeout(s, f(a))") },
  { "timeout", "zero", [[timeout(0, sleep, 1)]], "timeout: gave up after 0 seconds" },
  { "timeout", "+inf", [[timeout(math.huge, sleep, 0.01)]], { ok = "no deadline: returns fn's results" } },
  { "task:wait", "not a task", [[spawn(sleep, 0).wait(42)]], "bad argument #1 to 'wait' %(lessonrun.Task expected, got number%)" },
  { "task:wait", "itself", [[current():wait()]], "a task cannot wait for itself" },
  { "task:name", "wrong type", [[spawn(sleep, 0):name({})]], "string expected, got table" },
  { "task:result", "unfinished", [[spawn(sleep, 1):result()]], "result: pending has not finished %(use wait%)" },
  { "semaphore", "wrong type", [[semaphore("x")]], "bad argument #1 to '" .. F .. "semaphore' %(number expected, got string%)" },
  { "semaphore", "zero", [[semaphore(0)]], "bad argument #1 to '" .. F .. "semaphore' %(must be at least 1%)" },
  { "semaphore", "negative", [[semaphore(-3)]], "must be at least 1" },
  { "semaphore", "NaN", [[semaphore(0/0)]], "number has no integer representation" },
  { "semaphore", "+inf", [[semaphore(math.huge)]], "number has no integer representation" },
  { "semaphore", "fraction", [[semaphore(1.5)]], "number has no integer representation" },
  { "sem:release", "more than acquired", [[semaphore(1):release()]], "released more times than it was acquired" },
  { "sem:with", "wrong type", [[semaphore(1):with(42)]], called("with", "number", "sem:with(f, a), not sem:with(f(a))") },
  { "fetch", "wrong type (url)", [[fetch(42)]], "bad argument #1 to '" .. F .. "fetch' %(string expected, got number%)" },
  { "fetch", "nil url", [[fetch(nil)]], "string expected, got nil" },
  { "fetch", "empty string", [[fetch("")]], "only http:// and https:// URLs are allowed, got ''" },
  { "fetch", "other scheme", [[fetch("file:///etc/passwd")]], "only http:// and https:// URLs are allowed" },
  { "fetch", "space in URL", [[fetch("http://x/a b")]], "URL contains a space, CR or LF" },
  { "fetch", "wrong type (opts)", [[fetch("http://127.0.0.1:1/", 42)]], "bad argument #2 to '" .. F .. "fetch' %(table expected, got number%)" },
  { "fetch", "wrong option name", [[fetch("http://127.0.0.1:1/", {tiemout = 1})]], "bad argument #2 to 'fetch' %(unknown option 'tiemout'%)" },
  { "fetch", "NUL in an option name", [[fetch("http://127.0.0.1:1/", {["timeout\0x"] = 1})]], "bad argument #2 to 'fetch' %(unknown option 'timeout\\0x'%)" },
  { "fetch", "wrong option type", [[fetch("http://127.0.0.1:1/", {follow = "yes"})]], "option 'follow' must be a boolean" },
  { "fetch", "timeout NaN", [[fetch("http://127.0.0.1:1/", {timeout = 0/0})]], "option 'timeout' must be > 0" },
  { "fetch", "timeout zero", [[fetch("http://127.0.0.1:1/", {timeout = 0})]], "option 'timeout' must be > 0" },
  { "fetch", "timeout negative", [[fetch("http://127.0.0.1:1/", {timeout = -1})]], "option 'timeout' must be > 0" },
  { "fetch", "timeout huge", [[fetch("http://127.0.0.1:1/", {timeout = 1e9})]], "at most 1e6 seconds" },
  { "fetch", "max_body negative", [[fetch("http://127.0.0.1:1/", {max_body = -1})]], "option 'max_body' must be a non%-negative integer" },
  { "fetch", "max_redirects fraction", [[fetch("http://127.0.0.1:1/", {max_redirects = 1.5})]], "option 'max_redirects' must be an integer" },
  { "fetch", "empty method", [[fetch("http://127.0.0.1:1/", {method = ""})]], "option 'method' must not be empty" },
  { "fetch", "header injection", [[fetch("http://127.0.0.1:1/", {headers = {X = "a\r\nB: c"}})]], "header injection refused" },
  { "fetch", "bad header name", [[fetch("http://127.0.0.1:1/", {headers = {["X Y"] = "1"}})]], "has a character not allowed there" },
  { "fetch", "body and json", [[fetch("http://127.0.0.1:1/", {body = "a", json = {}})]], "give either 'body' or 'json', not both" },
  { "fetch", "json not encodable", [[fetch("http://127.0.0.1:1/", {json = {f = print}})]], "option 'json': cannot encode a function" },
  { "fetch", "NUL in the host", [[fetch("http://127.0.0.1\0.example:8080/")]], "bad argument #1 to '" .. F .. "fetch' %(URL contains a NUL byte%)" },
  { "fetch", "NUL in the path", [[fetch("http://127.0.0.1:1/get\0/../x")]], "bad argument #1 to '" .. F .. "fetch' %(URL contains a NUL byte%)" },
  { "fetch", "NUL in the method", [[fetch("http://127.0.0.1:1/", {method = "PO\0ST"})]], "option 'method' contains a NUL byte" },
  { "fetch", "NUL in a header name", [[fetch("http://127.0.0.1:1/", {headers = {["X\0Y"] = "1"}})]], "bad argument #2 to '" .. F .. "fetch' %(header name .*a NUL byte" },
  { "fetch", "NUL in a header value", [[fetch("http://127.0.0.1:1/", {headers = {X = "a\0b"}})]], "header 'X' contains CR, LF or NUL" },
  { "fetch", "Content-Length header", [[fetch("http://127.0.0.1:1/", {headers = {["Content-Length"] = "1"}})]], "header 'Content%-Length' is not yours to set" },
  { "fetch", "Transfer-Encoding header", [[fetch("http://127.0.0.1:1/", {headers = {["transfer-encoding"] = "chunked"}})]], "header 'transfer%-encoding' is not yours to set" },
  { "fetch", "Upgrade header", [[fetch("http://127.0.0.1:1/", {headers = {Upgrade = "h2c"}})]], "header 'Upgrade' is refused" },
  { "fetch", "Connection: upgrade", [[fetch("http://127.0.0.1:1/", {headers = {Connection = "upgrade"}})]], "header 'Connection' may only be 'close' or 'keep%-alive'" },
  { "fetch", "Expect other than 100-continue", [[fetch("http://127.0.0.1:1/", {headers = {Expect = "x"}})]], "header 'Expect' may only be '100%-continue'" },
  { "fetch", "Host not the URL's", [[fetch("http://127.0.0.1:1/", {headers = {Host = "example.org"}})]], "header 'Host' must be the URL's host" },
  { "fetch", "Host the URL's", [[fetch(SERVER .. "/get", {headers = {Host = SERVER:match("//(.*)")}}).status]],
    { ok = "sent as given: 200", check = equals(200) } },
  { "fetch", "empty header value", [[json_decode(fetch(SERVER .. "/headers", {headers = {X = ""}}).body).headers.X]],
    { ok = "sent empty: the server saw `X: `", check = equals("") } },
  { "fetch", "blank header value", [[json_decode(fetch(SERVER .. "/headers", {headers = {X = " \t "}}).body).headers.X]],
    { ok = "sent empty, as an empty value is", check = equals("") } },
  { "fetch", "control character in a header value", [[fetch("http://127.0.0.1:1/", {headers = {X = "a\1"}})]],
    "bad argument #2 to '" .. F .. "fetch' %(header 'X' contains control character 0x01 at byte 2 of its value%)" },
  { "fetch", "header line over 64 KiB", [[fetch("http://127.0.0.1:1/", {headers = {X = ("a"):rep(65536)}})]],
    "bad argument #2 to '" .. F .. "fetch' %(header 'X' too long: 65539 bytes, at most 65536%)" },
  { "fetch", "URL over 256 KiB", [[fetch("http://127.0.0.1:1/" .. ("a"):rep(256 * 1024))]],
    { err = "^fetch: URL too long %(262163 bytes, at most 262144%)", check = kind("url"),
      shown = "error of kind `url`: `fetch: URL too long (262163 bytes, at most 262144), got 'http://127.0.0.1:1/aaa…'`" } },
  { "fetch", "password in the URL", [[fetch("http://user:s3cret@127.0.0.1:1/")]],
    { err = "user:%*%*%*@127%.0%.0%.1:1/", check = function(e) assert(not e.message:find("s3cret") and not e.url:find("s3cret")) end,
      shown = "error of kind `connect` whose message and `url` say `http://user:***@127.0.0.1:1/`" } },
  { "fetch", "max_body 2^20 (a float)", [[fetch(SERVER .. "/get", {max_body = 2^20}).status]], { ok = "taken as 1048576: 200", check = equals(200) } },
  { "fetch", "max_body fraction", [[fetch("http://127.0.0.1:1/", {max_body = 2.5})]], "option 'max_body' must be a non%-negative integer" },
  { "fetch", "max_redirects 5.0", [[fetch(SERVER .. "/redirect/2", {max_redirects = 5.0}).status]], { ok = "taken as 5: 200", check = equals(200) } },
  { "blocking_fetch", "wrong option name", [[blocking_fetch("http://127.0.0.1:1/", {bogus = 1})]], "bad argument #2 to 'blocking_fetch' %(unknown option 'bogus'%)" },
  { "blocking_fetch", "other scheme", [[blocking_fetch("ftp://127.0.0.1/")]], "only http:// and https:// URLs are allowed" },
  { "blocking_fetch", "NUL in the URL", [[blocking_fetch("http://127.0.0.1\0.example/")]], "bad argument #1 to '" .. F .. "blocking_fetch' %(URL contains a NUL byte%)" },
  { "blocking_fetch", "NUL in the method", [[blocking_fetch("http://127.0.0.1:1/", {method = "GE\0T"})]], "option 'method' contains a NUL byte" },
  { "blocking_fetch", "NUL in a header name", [[blocking_fetch("http://127.0.0.1:1/", {headers = {["X\0Y"] = "1"}})]], "bad argument #2 to '" .. F .. "blocking_fetch' %(header name .*a NUL byte" },
  { "blocking_fetch", "NUL in a header value", [[blocking_fetch("http://127.0.0.1:1/", {headers = {X = "a\0b"}})]], "header 'X' contains CR, LF or NUL" },
  { "blocking_fetch", "control character in a header value", [[blocking_fetch("http://127.0.0.1:1/", {headers = {X = "\127"}})]],
    "bad argument #2 to '" .. F .. "blocking_fetch' %(header 'X' contains control character 0x7F at byte 1 of its value%)" },
  { "blocking_fetch", "header line over 64 KiB", [[blocking_fetch("http://127.0.0.1:1/", {headers = {X = ("a"):rep(1 << 20)}})]],
    "bad argument #2 to '" .. F .. "blocking_fetch' %(header 'X' too long: 1048579 bytes, at most 65536%)" },
  { "blocking_fetch", "Content-Length header", [[blocking_fetch("http://127.0.0.1:1/", {headers = {["Content-Length"] = "1"}})]], "bad argument #2 to 'blocking_fetch' %(header 'Content%-Length' is not yours to set" },
  { "blocking_fetch", "URL over 256 KiB", [[blocking_fetch("http://127.0.0.1:1/" .. ("a"):rep(256 * 1024))]],
    { err = "^blocking_fetch: URL too long", check = kind("url"),
      shown = "error of kind `url`: `blocking_fetch: URL too long (262163 bytes, at most 262144), got 'http://127.0.0.1:1/aaa…'`" } },
  { "fetch_all", "wrong type", [[fetch_all("x")]], "bad argument #1 to 'fetch_all' %(table of URLs expected, got string%)" },
  { "fetch_all", "limit zero", [[fetch_all({}, {limit = 0})]], "limit must be an integer >= 1" },
  { "fetch_all", "bad item", [[fetch_all({"http://127.0.0.1:1/", 42})]], "^bad argument #1 to 'fetch_all' %(item 2: string expected, got number%)" },
  { "fetch_all", "bad option", [[fetch_all({"http://127.0.0.1:1/"}, {tiemout = 1})]], "^bad argument #2 to 'fetch_all' %(unknown option 'tiemout'%)" },
  { "fetch_all", "progress not a function", [[fetch_all({"http://127.0.0.1:1/"}, {progress = 42})]], "^bad argument #2 to 'fetch_all' %(option 'progress' must be a function, got number%)" },
  { "fetch_all", "limit 2.0", [[#fetch_all({SERVER .. "/get"}, {limit = 2.0})]], { ok = "taken as 2: the URL is fetched", check = equals(1) } },
  { "fetch_all", "limit fraction", [[fetch_all({}, {limit = 2.5})]], "bad argument #2 to 'fetch_all' %(limit must be an integer >= 1%)" },
  { "fetch_config", "wrong option name", [[fetch_config({max = 1})]], "unknown option 'max'" },
  { "fetch_config", "a table key whose __tostring raises", [[fetch_config({[setmetatable({}, {__tostring = function() error("ts") end})] = 1})]], "unknown option '%(a table%)'" },
  { "fetch_config", "NUL in an option name", [[fetch_config({["max_connections\0x"] = 1})]], "unknown option 'max_connections\\0x'" },
  { "fetch_config", "negative", [[fetch_config({max_connections = -1})]], "must be an integer from 0 to 100000" },
  { "fetch_config", "huge", [[fetch_config({max_connections = 1e12})]], "must be an integer from 0 to 100000" },
  { "fetch_config", "fraction", [[fetch_config({max_connections = 2.5})]], "must be an integer from 0 to 100000" },
  { "fetch_config", "100.0", [[fetch_config({max_connections = 100.0}).max_connections]], { ok = "taken as 100", check = equals(100) } },
  { "serve", "wrong type", [[serve(42)]], "bad argument #1 to '" .. F .. "serve' %(table expected, got number%)" },
  { "serve", "wrong option name", [[serve({prot = 1})]], "unknown option 'prot'" },
  { "serve", "port negative", [[serve({port = -1})]], "option 'port' must be an integer in 0..65535" },
  { "serve", "port huge", [[serve({port = 70000})]], "option 'port' must be an integer in 0..65535" },
  { "serve", "host not an address", [[serve({host = "example.org"})]], "must be a numeric IPv4 or IPv6 address" },
  { "serve", "GET /status/102", [[fetch(SERVER .. "/status/102").status]], { ok = "400: a 1xx code is not an answer", check = equals(400) } },
  { "serve", "GET /bytes/104857601", [[fetch(SERVER .. "/bytes/104857601").status]], { ok = "400: at most 100 MiB", check = equals(400) } },
  { "serve", "GET /delay/61", [[fetch(SERVER .. "/delay/61").status]], { ok = "400: at most 60 s", check = equals(400) } },
  { "serve", "%00 in the path", [[fetch(SERVER .. "/get%00x").status]], { ok = "400", check = equals(400) } },
  { "serve", "%00 in the query", [[json_decode(fetch(SERVER .. "/anything?a=b%00c").body).args.a]], { ok = "echoed whole: `b\\0c`", check = equals("b\0c") } },
  { "serve", "NUL in the body", [[json_decode(fetch(SERVER .. "/anything", {method = "POST", body = "a\0b"}).body).data]], { ok = "echoed whole: `a\\0b`", check = equals("a\0b") } },
  { "json_decode", "wrong type", [[json_decode({})]], "string expected, got table" },
  { "json_decode", "empty string", [[json_decode("")]], "json_decode: invalid JSON" },
  { "json_decode", "invalid", [[json_decode("{x")]], "json_decode: invalid JSON at byte" },
  { "json_decode", "trailing garbage", [[json_decode("3abc")]], "json_decode: invalid JSON at byte 2 of 4" },
  { "json_decode", "NUL byte after the value", [[json_decode("1\0")]], "json_decode: invalid JSON at byte 2 of 2 %(NUL byte%)" },
  { "json_decode", "only blanks", [[json_decode("  ")]], "json_decode: invalid JSON at the end of 2 bytes" },
  { "json_decode", "invalid UTF-8", [[json_decode('"\xff"')]], { err = "^json_decode: invalid JSON", check = kind("json") } },
  { "json_decode", "lone surrogate", [[json_decode('"\\ud800"')]], { err = "^json_decode: invalid JSON", check = kind("json") } },
  { "json_decode", "1001 levels", [[json_decode(("["):rep(1001) .. ("]"):rep(1001))]], { err = "^json_decode: invalid JSON", check = kind("json") } },
  { "json_decode", "1000 levels", [[#json_decode(("["):rep(1000) .. ("]"):rep(1000))]], { ok = "decoded", check = equals(1) } },
  { "json_decode", "number too big", [[json_decode("1e400")]], { err = "^json_decode: invalid JSON", check = kind("json") } },
  { "json_decode", "\\u0000", [[json_decode('"a\\u0000b"')]], { ok = "a string with a NUL byte", check = equals("a\0b") } },
  { "json_encode", "function", [[json_encode(print)]], "cannot encode a function" },
  { "json_encode", "NaN", [[json_encode(0/0)]], "cannot encode nan or inf" },
  { "json_encode", "cycle", [[(function() local t = {} t.t = t return json_encode(t) end)()]], "nested too deeply" },
  { "json_encode", "NUL in a string", [[json_encode("a\0b")]], { ok = "`\"a\\u0000b\"`", check = equals('"a\\u0000b"') } },
  { "json_encode", "invalid UTF-8", [[json_encode("\xff")]], "bad argument #1 to '" .. F .. "json_encode' %(.*UTF%-8" },
  { "json_encode", "2^53 + 1 (an integer)", [[json_encode((1 << 53) + 1)]], { ok = "`9007199254740993`, exact", check = equals("9007199254740993") } },
  { "offload", "wrong type", [[offload(42)]], called("offload", "number", "offload(f, a), not offload(f(a))") },
  { "offload", "a call instead of the function", [[offload(math.sqrt(4))]], called("offload", "number", "offload(f, a), not offload(f(a))") },
  { "offload", "error table", [[offload(function() error({code = 7}) end)]],
    { check = function(e) assert(type(e) == "table" and e.code == 7) end, shown = "error value `{code = 7}`: the worker's table, copied back" } },
  { "offload", "C function", [[offload(print)]], "a C function cannot be sent to a worker thread" },
  { "offload", "upvalue", [[(function() local u = 1 return offload(function() return u end) end)()]], "uses upvalue 'u'" },
  { "offload", "function argument", [[offload(function(f) end, print)]], "bad argument #2 to '" .. F .. "offload' %(a function cannot be sent to a worker thread%)" },
  { "offload", "userdata argument", [[offload(function(f) end, io.stdout)]], "a userdata cannot be sent to a worker thread" },
  { "isatty", "wrong type", [[isatty("x")]], "file or file descriptor expected" },
  { "blocking_warnings", "a number for a boolean", [[blocking_warnings(0)]], "bad argument #1 to '" .. F .. "blocking_warnings' %(boolean expected, got number%)" },
  { "pending_warnings", "a string for a boolean", [[pending_warnings("no")]], "bad argument #1 to '" .. F .. "pending_warnings' %(boolean expected, got string%)" },
}

local function check_row(row)
  local fn = assert(load("return " .. row[3], "=" .. row[3]))
  local res = table.pack(pcall(fn))
  local want = row[4]
  if type(want) == "table" and not want.ok then  -- an error whose value matters
    if res[1] then error(("%s: expected an error, but it returned"):format(row[3]), 0) end
    local msg = tostring(res[2])
    if want.err and not msg:find(want.err) then
      error(("%s: expected an error matching %q, got %q"):format(row[3], want.err, msg), 0)
    end
    if want.check then want.check(res[2]) end
  elseif type(want) == "table" then
    if not res[1] then error(("%s: expected it to work, got %s"):format(row[3], tostring(res[2])), 0) end
    if row[4].check then row[4].check(table.unpack(res, 2, res.n)) end
  else
    if res[1] then error(("%s: expected an error matching %q, but it returned"):format(row[3], row[4]), 0) end
    local msg = tostring(res[2])
    if not msg:find(row[4]) then
      error(("%s: expected an error matching %q, got %q"):format(row[3], row[4], msg), 0)
    end
  end
end

local function outcome(row)
  if type(row[4]) == "table" and row[4].ok then return row[4].ok end
  local _, err = pcall(assert(load("return " .. row[3], "=call")))
  local msg = tostring(err):gsub("^call:%d+: ", ""):gsub("\n.*", "")
  msg = type(row[4]) == "table" and row[4].shown or "error `" .. msg .. "`"
  return (row.note and row.note .. ": " or "") .. msg:gsub("|", "\\|")
end

local function markdown()
  local out = { "# Bad input: what each public function does with it", "",
    "Generated from `tests/lua/test_bad_input_table.lua` (each row is a test there) by",
    "`lessonrun tests/lua/test_bad_input_table.lua --markdown`. Misuse raises an error that names",
    "the function and the argument; a failure of the network raises an error value with a",
    "`kind` (see the README). None of these crashes, hangs or leaks. `SERVER` is the URL of",
    "the built-in server (`serve({port = 0}).url`), for the calls that get through.", "",
    "| function | input | call | what you get |", "| --- | --- | --- | --- |" }
  for _, row in ipairs(rows) do
    out[#out + 1] = ("| `%s` | %s | `%s` | %s |"):format(row[1], row[2], row[3]:gsub("|", "\\|"), outcome(row))
  end
  return table.concat(out, "\n") .. "\n"
end

if arg[1] == "--markdown" then
  run(function() io.write(markdown()) end)
  server:stop()
  return
end

for _, row in ipairs(rows) do
  h.test(("%s: %s"):format(row[1], row[2]), function() check_row(row) end)
end

h.test("docs/bad-input.md matches these rows", function()
  local path = arg[0]:match("^(.-)[^/]*$") .. "../../docs/bad-input.md"
  local f = io.open(path)
  h.ok(f, "docs/bad-input.md exists (make it with --markdown)")
  local text = f:read("a")
  f:close()
  h.eq(text, markdown(), "regenerate it: lessonrun tests/lua/test_bad_input_table.lua --markdown > docs/bad-input.md")
end)

h.done()
