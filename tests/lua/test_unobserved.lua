-- A failed task whose error nobody retrieved is reported ("... failed and
-- nobody waited for it", with its traceback) when its handle is collected,
-- or at exit if it never is: once, and not at all once the error has been
-- retrieved.  A script that ends with tasks still running is warned about
-- them (pending_warnings(false) says it means it).  The exit status stays
-- 0, as asyncio's "Task exception was never retrieved" leaves it.  Each
-- case runs in a child lessonrun (or lua5.4) whose stderr is checked.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local test, eq, ok = h.test, h.eq, h.ok
local now = h.lr.now

local exe = assert(arg[-1], "run by lessonrun: arg[-1] names it")
local sanitized = os.getenv("LR_SANITIZED") ~= nil
local REPORT = "failed and nobody waited for it"

local function has(s, plain) return s:find(plain, 1, true) ~= nil end

local function count(s, plain)
  local n, i = 0, 1
  while true do
    local a, b = s:find(plain, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- run(script text [, {shell = prefix, args = s, cmd = full command}]) ->
-- {out, err, code, how, path, dt}: stdout and stderr apart, unless merged.
local function run(text, o)
  o = o or {}
  local path, errpath = os.tmpname() .. ".lua", os.tmpname()
  write(path, text)
  local cmd = o.cmd or ("%q %q %s"):format(exe, path, o.args or "")
  cmd = cmd:gsub("SCRIPT", path)
  if o.shell then cmd = o.shell .. " " .. cmd end
  local t0 = now()
  local p = assert(io.popen(("%s 2>%s"):format(cmd, o.merged and "&1" or ("%q"):format(errpath))))
  local out = p:read("a")
  local _, how, code = p:close()
  local r = { out = out, code = code, how = how, path = path, dt = now() - t0 }
  local f = io.open(errpath)
  r.err = f and f:read("a") or ""
  if f then f:close() end
  os.remove(errpath)
  os.remove(path)
  r.all = "stdout:\n" .. r.out .. "stderr:\n" .. r.err
  return r
end

local FAIL = 'spawn(function() sleep(0.01) error("boom") end)\n'

test("a failed task nobody waits for: reported once, with its traceback and the script's line; exit 0", function()
  local r = run("-- line 1\n" .. FAIL .. "sleep(0.1)\nprint('end')\n")
  eq(r.code, 0, r.all)
  eq(r.out, "end\n", r.all)
  eq(count(r.err, REPORT), 1, r.all)
  local name = ("task #2 (%s:2)"):format(r.path)
  ok(has(r.err, ("lessonrun: %s %s: %s:2: boom\n"):format(name, REPORT, r.path)), r.all)
  ok(has(r.err, "stack traceback of " .. name .. ":\n"), r.all)
  ok(has(r.err, ("\t%s:2: in function <%s:2>"):format(r.path, r.path)), r.all)
end, { timeout = 30 })

test("-e and a script on stdin are reported too", function()
  local r = run("", { cmd = ("%q -e %q"):format(exe, FAIL .. "sleep(0.1)") })
  eq(r.code, 0, r.all)
  eq(count(r.err, REPORT), 1, r.all)
  ok(has(r.err, "(command line):1: boom"), r.all)
  r = run(FAIL .. "sleep(0.1)", { cmd = ("%q < SCRIPT"):format(exe) })
  eq(r.code, 0, r.all)
  eq(count(r.err, REPORT), 1, r.all)
  ok(has(r.err, "stdin:1: boom"), r.all)
end, { timeout = 30 })

test("reported when collected: garbage at once, or after collectgarbage(); never again at exit", function()
  local r = run("io.stdout:setvbuf('no')\n" .. FAIL .. "sleep(0.1)\nprint('next')\n"
    .. "local t = " .. FAIL .. "sleep(0.1)\nprint('before')\nt = nil\ncollectgarbage()\nprint('after')\n",
    { merged = true })
  eq(r.code, 0, r.out)
  eq(count(r.out, REPORT), 2, r.out)
  local first = r.out:find(REPORT, 1, true)
  local second = r.out:find(REPORT, first + 1, true)
  local nxt, before, after = r.out:find("next\n", 1, true), r.out:find("before\n", 1, true), r.out:find("after\n", 1, true)
  ok(first < nxt, "the garbage handle is reported while the script sleeps: " .. r.out)
  ok(before < second and second < after, "the collected one at collectgarbage(): " .. r.out)
  ok(has(r.out, ":2: boom") and has(r.out, ":5: boom"), r.out)
end, { timeout = 30 })

test("reported at exit when the handle is kept to the end (a local or a global), once", function()
  for _, keep in ipairs { "local t = ", "T = " } do
    local r = run("io.stdout:setvbuf('no')\n" .. keep .. FAIL .. "sleep(0.1)\ncollectgarbage()\nprint('end')\n",
                  { merged = true })
    eq(r.code, 0, r.out)
    eq(count(r.out, REPORT), 1, keep .. r.out)
    ok(r.out:find("end\n", 1, true) < r.out:find(REPORT, 1, true), "after the script: " .. r.out)
  end
end, { timeout = 30 })

-- Each way of retrieving the error: the child prints "ok" and reports nothing.
local retrieved = {
  ["t:wait() in pcall"] = "local t = %s sleep(0.05) assert(not pcall(t.wait, t))",
  ["t:wait() while it runs"] = "local t = %s assert(not pcall(t.wait, t))",
  ["gather(t)"] = "local t = %s assert(not pcall(gather, t))",
  ["gather of functions"] = "assert(not pcall(gather, function() sleep(0.01) error('x') end, function() sleep(1) end))",
  ["gather: two siblings failing at once"] =
    "assert(not pcall(gather, function() sleep(0.01) error('a') end, function() sleep(0.01) error('b') end))",
  ["settle{t}"] = "local t = %s assert(settle({t})[1].ok == false)",
  ["settle of functions"] = "assert(settle(function() error('x') end).ok == false)",
  ["t:error()"] = "local t = %s sleep(0.05) assert(t:error():find('boom'))",
  ["t:traceback()"] = "local t = %s sleep(0.05) assert(t:traceback():find('stack traceback'))",
  ["t:result() in pcall"] = "local t = %s sleep(0.05) assert(not pcall(t.result, t))",
  ["timeout(s, fn)"] = "assert(not pcall(timeout, 1, function() sleep(0.01) error('x') end))",
  ["another task's wait"] = "local t = %s local w = spawn(function() return pcall(t.wait, t) end) assert(w:wait() == false)",
  ["cancelled before it failed"] = "local t = %s sleep(0) t:cancel() sleep(0.05) assert(t:state() == 'cancelled')",
}

for what, code in pairs(retrieved) do
  test("retrieved by " .. what .. ": no report", function()
    local r = run(code:format(FAIL:sub(1, -2)) .. " collectgarbage() sleep(0.05) print('ok')\n")
    eq(r.code, 0, r.all)
    eq(r.out, "ok\n", r.all)
    ok(not has(r.err, REPORT), r.all)
    eq(r.err, "", r.all)
  end, { timeout = 30 })
end

-- Looking at a task is not retrieving its error; neither is cancelling it
-- once it has failed (cancel() returns false: as asyncio's cancel() of a
-- finished task, it changes nothing), nor a wait that was given up.
local not_retrieved = {
  ["t:state()"] = "local t = %s sleep(0.05) assert(t:state() == 'failed')",
  ["t:cancel() after it failed"] = "local t = %s sleep(0.05) assert(t:cancel() == false)",
  ["a waiter cancelled first"] = "local t = %s local w = spawn(function() t:wait() end) sleep(0) w:cancel() sleep(0.05)",
}
for what, code in pairs(not_retrieved) do
  test("not retrieved by " .. what .. ": reported once", function()
    local r = run(code:format(FAIL:sub(1, -2)) .. " print('ok')\n")
    eq(r.code, 0, r.all)
    eq(r.out, "ok\n", r.all)
    eq(count(r.err, REPORT), 1, r.all)
  end, { timeout = 30 })
end

test("a named task is reported by its name; an error value that is not a string by its type", function()
  local r = run("spawn(function() sleep(0.01) error({}) end):name('fetcher') sleep(0.05)\n"
    .. "spawn(function() error(setmetatable({}, {__tostring = function() return 'custom' end})) end) sleep(0.05)\n")
  eq(r.code, 0, r.all)
  ok(has(r.err, "lessonrun: task 'fetcher' " .. REPORT .. ": (error object is a table value)"), r.all)
  ok(has(r.err, REPORT .. ": custom\n"), r.all)
end, { timeout = 30 })

-- ---- the exit warning --------------------------------------------------------

test("tasks still running at the end: a warning names up to 5, with their lines; cancelled ones not counted", function()
  local r = run([[
spawn(function() sleep(5) end):name("fetcher")
local function worker()
  sleep(10)
end
for i = 1, 6 do spawn(worker) end
local c = spawn(function() sleep(10) end)
sleep(0.01)
c:cancel()
]])
  eq(r.code, 0, r.all)
  eq(r.out, "", r.all)
  local p = r.path
  ok(has(r.err, "lessonrun: warning: the script ended with 7 tasks still running; cancelling them:\n"), r.all)
  eq(count(r.err, "\n  "), 7, "5 names, 'and 2 more', the hint: " .. r.err)
  ok(has(r.err, ("  fetcher, at %s:1\n"):format(p)), r.all)
  ok(has(r.err, ("(%s:2), at %s:3\n"):format(p, p)), "a worker, where it waits: " .. r.err)
  ok(has(r.err, "  and 2 more\n"), r.all)
  ok(has(r.err, "(wait for them, or call pending_warnings(false) if leaving them is intended)"), r.all)
end, { timeout = 30 })

test("one task left: 'cancelling it', 'not started' when it never ran", function()
  local r = run("spawn(function() sleep(1) end)\n")
  eq(r.code, 0, r.all)
  ok(has(r.err, "the script ended with 1 task still running; cancelling it:\n"), r.all)
  ok(has(r.err, ("  task #2 (%s:1), not started\n"):format(r.path)), r.all)
  ok(has(r.err, "(wait for it, or call pending_warnings(false) if leaving it is intended)"), r.all)
end, { timeout = 30 })

test("the warning redacts a password in a name the script gave; a task in C code says so", function()
  local r = run("local t = spawn(sleep, 10) t:name('get http://u:s3cret@h/') sleep(0)\n")
  eq(r.code, 0, r.all)
  ok(has(r.err, "  get http://u:***@h/, in C code\n"), r.all)
  ok(not has(r.err, "s3cret"), r.all)
end, { timeout = 30 })

test("pending_warnings(false) silences the warning; it returns the setting it replaced", function()
  local r = run("assert(pending_warnings(false) == true) assert(pending_warnings() == false)\n"
    .. "for i = 1, 3 do spawn(function() sleep(10) end) end sleep(0)\n")
  eq(r.code, 0, r.all)
  eq(r.err, "", r.all)
  r = run("pending_warnings(false) pending_warnings(true) spawn(function() sleep(10) end) sleep(0)\n")
  ok(has(r.err, "still running"), "on again: " .. r.all)
end, { timeout = 30 })

test("no warning when every task was waited for, or when the script itself failed", function()
  local r = run("local t = spawn(function() sleep(0.01) end) t:wait()\n")
  eq(r.err, "", r.all)
  r = run("spawn(function() sleep(10) end) sleep(0) error('own')\n")
  eq(r.code, 1, r.all)
  ok(not has(r.err, "still running"), r.all)
  ok(has(r.err, "own"), r.all)
end, { timeout = 30 })

-- ---- deep stacks -------------------------------------------------------------

test("an error 80,000 frames deep in a task: reported promptly, the traceback cut short", function()
  local r = run([[
local function f(n) if n == 0 then error("deep boom") end return f(n - 1) + 1 end
spawn(function() sleep(0.001) f(80000) end)
sleep(0.05)
]], { shell = "ulimit -t 5 &&" })  -- "promptly": 5 s of CPU, past which the kernel stops it
  eq(r.how, "exit", "stopped after 5 s of CPU (quadratic walks took 7.9 s)? " .. r.all:sub(1, 2000))
  eq(r.code, 0, r.all)
  eq(count(r.err, REPORT), 1, r.err:sub(1, 2000))
  ok(has(r.err, ":1: deep boom"), r.err:sub(1, 2000))
  ok(r.err:find("%.%.%.\t%(skipping %d+ levels%)"), r.err:sub(1, 2000))
end, { timeout = 30 })

test("a stack overflow in a task: a prompt 'stack overflow' report", function()
  local r = run([[
local function g(n) return g(n + 1) + 1 end
spawn(function() sleep(0.001) g(1) end)
sleep(0.05)
print("after")
]], { shell = "ulimit -t 5 &&" })  -- 5 s of CPU, past which the kernel stops it
  eq(r.how, "exit", "stopped after 5 s of CPU (it did not end in 30 s)? " .. r.all:sub(1, 2000))
  eq(r.code, 0, r.all:sub(1, 2000))
  eq(r.out, "after\n", r.all:sub(1, 2000))
  eq(count(r.err, REPORT), 1, r.err:sub(1, 2000))
  ok(has(r.err, REPORT .. ": " .. r.path .. ":1: stack overflow"), r.err:sub(1, 2000))
end, { timeout = 30 })

test("tostring and name of a task parked 40,000 frames deep are fast", function()
  local function p(n) if n == 0 then h.lr.sleep(10) return 0 end return p(n - 1) + 1 end
  local t = h.lr.spawn(function() return p(40000) end)
  h.lr.sleep(0.01)
  eq(t:state(), "waiting")
  local c0 = os.clock()
  local s, name = tostring(t), t:name()
  local dt = os.clock() - c0
  t:cancel()
  h.match(s, "^task #%d+ %(.-test_unobserved%.lua:%d+%) %[waiting%]$")
  h.match(name, "^task #%d+ %(")
  ok(dt < 0.5, ("%.3f s of CPU (a walk per level took 1.3 s)"):format(dt))
end)

-- ---- the stock lua5.4 with the module ---------------------------------------

test("lua5.4 with require 'lessonrun': reported when collected and at exit, not when retrieved", function()
  local lua = io.popen("command -v lua5.4"):read("l")
  local dir = exe:match("^(.*)/")
  local so = io.open(dir .. "/lessonrun.so")
  if not lua or not so then
    print("     (skipped: no lua5.4, or no lessonrun.so beside " .. exe .. ")")
    return
  end
  so:close()
  local env = ""
  if sanitized then  -- the module carries the ASan runtime, which must come first
    local cc = io.popen("cc -print-file-name=libasan.so 2>/dev/null"):read("l")
    env = ("env LD_PRELOAD=%q ASAN_OPTIONS=detect_leaks=0"):format(cc or "")
  end
  local prelude = ("package.cpath = %q .. '/?.so;' .. package.cpath\nlocal lr = require 'lessonrun'\n"):format(dir)
  local function lrun(body)
    return run(prelude .. body, { cmd = ("%s %q SCRIPT"):format(env, lua) })
  end
  local r = lrun("lr.spawn(function() lr.sleep(0.01) error('boom') end)\nlr.sleep(0.1)\nprint('end')\n")
  eq(r.code, 0, r.all)
  eq(r.out, "end\n", r.all)
  eq(count(r.err, REPORT), 1, r.all)
  ok(has(r.err, r.path .. ":3: boom"), r.all)
  r = lrun("T = lr.spawn(function() lr.sleep(0.01) error('boom') end)\nlr.sleep(0.1)\ncollectgarbage()\nprint('end')\n")
  eq(count(r.err, REPORT), 1, "at lua_close: " .. r.all)
  r = lrun("local t = lr.spawn(function() lr.sleep(0.01) error('boom') end)\nassert(not pcall(t.wait, t))\n"
    .. "assert(not pcall(lr.gather, function() error('x') end))\ncollectgarbage()\nprint('end')\n")
  eq(r.out, "end\n", r.all)
  eq(r.err, "", r.all)
end, { timeout = 30 })

-- ---- out of memory -----------------------------------------------------------

test("out of memory with many failing tasks: no abort or PANIC, status 1 with a message, promptly", function()
  -- spawns failing tasks (kept, so their reports wait for the exit) until
  -- memory runs out; near the limit every allocation costs a full collection
  local script = [[
local keep, i = {}, 0
while true do
  i = i + 1
  keep[i] = spawn(function() sleep(0.001) error("boom " .. i) end)
  if i % 1000 == 0 then sleep(0) end
end
]]
  -- sanitized builds cannot use ulimit -v (shadow memory): allocation N
  -- fails instead (LR_FAIL_ALLOC_AFTER, debug builds)
  local limits = sanitized and { 20000, 300000, 1000000 } or { 40000, 80000, 160000 }
  for _, lim in ipairs(limits) do
    -- "promptly" is 20 s of CPU (ulimit -t: a busy machine does not stretch
    -- it, as it does the wall clock); past it the kernel stops the run
    local shell = sanitized and ("ulimit -t 20 && exec env LR_FAIL_ALLOC_AFTER=%d timeout -k 5 60"):format(lim)
                  or ("ulimit -v %d && ulimit -t 20 && exec timeout -k 5 60"):format(lim)
    local r = run(script, { shell = shell })
    local what = lim .. (sanitized and " allocations: " or " KB: ") .. r.err:sub(-600)
    ok(not has(r.err, "Sanitizer") and not has(r.err, "runtime error:"), what)
    eq(r.how, "exit", "stopped after 20 s of CPU (it took 20 to 350 s)? " .. what)
    eq(r.code, 1, what)
    ok(not has(r.err, "PANIC"), what)
    ok(has(r.err, "lessonrun: not enough memory\n"), what)
  end
end, { timeout = 120 })

test("the script ended well but cancelling its tasks ran out of memory: status 1, said so", function()
  if sanitized then
    print("     (skipped: ulimit -v and the sanitizers' shadow memory do not mix)")
    return
  end
  local r = run([[
for i = 1, 3 do
  spawn(function()
    pcall(sleep, 100)  -- cancelled at exit: then it needs far more memory than there is
    local t = {}
    for j = 1, 1e8 do t[j] = j end
  end)
end
sleep(0)
pending_warnings(false)
print("script done")
]], { shell = "ulimit -v 200000 && ulimit -t 20 && exec timeout -k 5 60" })
  eq(r.out, "script done\n", r.all)
  eq(r.code, 1, r.all)
  ok(has(r.err, "lessonrun: not enough memory to cancel the 2 tasks left at exit\n"), r.all)
  ok(has(r.err, "lessonrun: not enough memory\n"), r.all)
  eq(r.how, "exit", "stopped after 20 s of CPU? " .. r.all)
end, { timeout = 60 })

h.done()
