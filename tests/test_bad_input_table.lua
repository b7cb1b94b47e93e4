-- The bad-input table: every public function, each kind of bad argument, and
-- what the user gets.  Each row is a test; the same rows make
-- docs/bad-input.md (`lessonrun tests/test_bad_input_table.lua --markdown`),
-- and a test checks that the document matches them.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")

-- {function, kind of input, call, expected}: expected is an error pattern,
-- or a table {ok = "what happens"} with an optional check(results...).
local F = "[%w%.]*"  -- 'sleep' or 'lessonrun.sleep': Lua names the function either way
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
  { "spawn", "wrong type", [[spawn(42)]], "bad argument #1 to '" .. F .. "spawn' %(function expected, got number%)" },
  { "spawn", "nil", [[spawn(nil)]], "function expected, got nil" },
  { "spawn", "empty string", [[spawn("")]], "function expected, got string" },
  { "gather", "wrong type", [[gather(42)]], "bad argument #1 to 'gather' %(function or task expected, got number%)" },
  { "gather", "nil among others", [[gather(function() end, nil)]], "bad argument #2 to 'gather' %(function or task expected, got nil%)" },
  { "gather", "bad list item", [[gather({function() end, "x"})]], "bad item 2 of the list to 'gather'" },
  { "gather", "itself", [[gather(current())]], "a task cannot wait for itself" },
  { "gather", "no argument", [[gather()]], { ok = "returns nothing at once" } },
  { "gather", "empty list", [[gather({})]], { ok = "returns an empty table" } },
  { "settle", "wrong type", [[settle(true)]], "bad argument #1 to 'settle' %(function or task expected, got boolean%)" },
  { "run", "wrong type", [[run(42)]], "bad argument #1 to 'run' %(function expected, got number%)" },
  { "run", "nil", [[run(nil)]], "bad argument #1 to 'run' %(function expected, got nil%)" },
  { "timeout", "wrong type (seconds)", [[timeout("1", sleep, 0)]], "bad argument #1 to 'timeout' %(seconds must be a number >= 0, got string%)" },
  { "timeout", "NaN", [[timeout(0/0, sleep, 0)]], "bad argument #1 to 'timeout' %(seconds must be a number >= 0, got nan%)" },
  { "timeout", "negative", [[timeout(-1, sleep, 0)]], "bad argument #1 to 'timeout'" },
  { "timeout", "wrong type (fn)", [[timeout(1, 42)]], "bad argument #2 to 'timeout' %(function expected, got number%)" },
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
  { "sem:with", "wrong type", [[semaphore(1):with(42)]], "bad argument #1 to 'with' %(function expected, got number%)" },
  { "fetch", "wrong type (url)", [[fetch(42)]], "bad argument #1 to '" .. F .. "fetch' %(string expected, got number%)" },
  { "fetch", "nil url", [[fetch(nil)]], "string expected, got nil" },
  { "fetch", "empty string", [[fetch("")]], "only http:// and https:// URLs are allowed, got ''" },
  { "fetch", "other scheme", [[fetch("file:///etc/passwd")]], "only http:// and https:// URLs are allowed" },
  { "fetch", "space in URL", [[fetch("http://x/a b")]], "URL contains a space, CR or LF" },
  { "fetch", "wrong type (opts)", [[fetch("http://127.0.0.1:1/", 42)]], "bad argument #2 to '" .. F .. "fetch' %(table expected, got number%)" },
  { "fetch", "wrong option name", [[fetch("http://127.0.0.1:1/", {tiemout = 1})]], "bad argument #2 to 'fetch' %(unknown option 'tiemout'%)" },
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
  { "blocking_fetch", "wrong option name", [[blocking_fetch("http://127.0.0.1:1/", {bogus = 1})]], "bad argument #2 to 'blocking_fetch' %(unknown option 'bogus'%)" },
  { "blocking_fetch", "other scheme", [[blocking_fetch("ftp://127.0.0.1/")]], "only http:// and https:// URLs are allowed" },
  { "fetch_all", "wrong type", [[fetch_all("x")]], "bad argument #1 to 'fetch_all' %(table of URLs expected, got string%)" },
  { "fetch_all", "limit zero", [[fetch_all({}, {limit = 0})]], "limit must be an integer >= 1" },
  { "fetch_config", "wrong option name", [[fetch_config({max = 1})]], "unknown option 'max'" },
  { "fetch_config", "negative", [[fetch_config({max_connections = -1})]], "must be an integer from 0 to 100000" },
  { "fetch_config", "huge", [[fetch_config({max_connections = 1e12})]], "must be an integer from 0 to 100000" },
  { "serve", "wrong type", [[serve(42)]], "bad argument #1 to '" .. F .. "serve' %(table expected, got number%)" },
  { "serve", "wrong option name", [[serve({prot = 1})]], "unknown option 'prot'" },
  { "serve", "port negative", [[serve({port = -1})]], "option 'port' must be an integer in 0..65535" },
  { "serve", "port huge", [[serve({port = 70000})]], "option 'port' must be an integer in 0..65535" },
  { "serve", "host not an address", [[serve({host = "example.org"})]], "must be a numeric IPv4 or IPv6 address" },
  { "json_decode", "wrong type", [[json_decode({})]], "string expected, got table" },
  { "json_decode", "empty string", [[json_decode("")]], "json_decode: invalid JSON" },
  { "json_decode", "invalid", [[json_decode("{x")]], "json_decode: invalid JSON at byte" },
  { "json_decode", "trailing garbage", [[json_decode("3abc")]], "json_decode: invalid JSON at byte 2 of 4" },
  { "json_encode", "function", [[json_encode(print)]], "cannot encode a function" },
  { "json_encode", "NaN", [[json_encode(0/0)]], "cannot encode nan or inf" },
  { "json_encode", "cycle", [[(function() local t = {} t.t = t return json_encode(t) end)()]], "nested too deeply" },
  { "offload", "wrong type", [[offload(42)]], "bad argument #1 to '" .. F .. "offload' %(function expected, got number%)" },
  { "offload", "C function", [[offload(print)]], "a C function cannot be sent to a worker thread" },
  { "offload", "upvalue", [[(function() local u = 1 return offload(function() return u end) end)()]], "uses upvalue 'u'" },
  { "offload", "function argument", [[offload(function(f) end, print)]], "bad argument #2 to '" .. F .. "offload' %(a function cannot be sent to a worker thread%)" },
  { "offload", "userdata argument", [[offload(function(f) end, io.stdout)]], "a userdata cannot be sent to a worker thread" },
  { "isatty", "wrong type", [[isatty("x")]], "file or file descriptor expected" },
}

local function check_row(row)
  local fn = assert(load("return " .. row[3], "=" .. row[3]))
  local res = table.pack(pcall(fn))
  if type(row[4]) == "table" then
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
  if type(row[4]) == "table" then return row[4].ok end
  local _, err = pcall(assert(load("return " .. row[3], "=call")))
  local msg = tostring(err):gsub("^call:%d+: ", ""):gsub("\n.*", "")
  return (row.note and row.note .. ": " or "") .. "error `" .. msg:gsub("|", "\\|") .. "`"
end

local function markdown()
  local out = { "# Bad input: what each public function does with it", "",
    "Generated from `tests/test_bad_input_table.lua` (each row is a test there) by",
    "`lessonrun tests/test_bad_input_table.lua --markdown`. Misuse raises an error that names",
    "the function and the argument; a failure of the network raises an error value with a",
    "`kind` (see the README). None of these crashes, hangs or leaks.", "",
    "| function | input | call | what you get |", "| --- | --- | --- | --- |" }
  for _, row in ipairs(rows) do
    out[#out + 1] = ("| `%s` | %s | `%s` | %s |"):format(row[1], row[2], row[3]:gsub("|", "\\|"), outcome(row))
  end
  return table.concat(out, "\n") .. "\n"
end

if arg[1] == "--markdown" then
  run(function() io.write(markdown()) end)
  return
end

for _, row in ipairs(rows) do
  h.test(("%s: %s"):format(row[1], row[2]), function() check_row(row) end)
end

h.test("docs/bad-input.md matches these rows", function()
  local path = arg[0]:match("^(.-)[^/]*$") .. "../docs/bad-input.md"
  local f = io.open(path)
  h.ok(f, "docs/bad-input.md exists (make it with --markdown)")
  local text = f:read("a")
  f:close()
  h.eq(text, markdown(), "regenerate it: lessonrun tests/test_bad_input_table.lua --markdown > docs/bad-input.md")
end)

h.done()
