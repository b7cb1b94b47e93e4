-- offload(fn, ...): fn runs in a fresh Lua state on libuv's thread pool while
-- the calling task waits (and the others run).  Values travel by copy (nil,
-- booleans, numbers, strings, tables of those); anything else is refused with
-- an error naming the argument; the worker's errors come back with its
-- traceback; cancelling the waiting task lets the job finish in the background.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local test, eq, ok, near, raises = h.test, h.eq, h.ok, h.near, h.raises

-- A CPU loop with no upvalues (so it can travel).
local function spin(n)
  local s = 0
  for i = 1, n do s = s + math.sqrt(i) end
  return s
end

local function cores()
  local p = io.popen("nproc 2>/dev/null")
  local n = p and tonumber(p:read("a"))
  if p then p:close() end
  return n or 1
end

local BAD_ARG = "bad argument #%d to '[%%w.]*offload'"

-- ---- results ---------------------------------------------------------------------

test("numbers keep their subtype and value", function()
  local r = table.pack(offload(function(...) return ... end,
    42, -7, 2.5, 1e300, 1 / 0, -1 / 0, math.maxinteger, math.mininteger, 3.0, 0 / 0))
  eq(r.n, 10)
  eq({ r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] },
     { 42, -7, 2.5, 1e300, 1 / 0, -1 / 0, math.maxinteger, math.mininteger })
  eq(math.type(r[1]), "integer"); eq(math.type(r[7]), "integer")
  eq(math.type(r[9]), "float", "3.0 stays a float"); eq(r[9], 3.0)
  ok(r[10] ~= r[10], "nan")
  eq(offload(function(a, b) return a * b, a // b, a / b end, 6, 4), 24)
  eq({ offload(function(a, b) return a * b, a // b, a / b end, 6, 4) }, { 24, 1, 1.5 })
end)

test("strings: empty, binary, long", function()
  local big = ("0123456789"):rep(100000)
  local a, b, c, n = offload(function(x, y, z) return x, y, z:upper(), #z end, "", "a\0b\255", big)
  eq(a, "")
  eq(b, "a\0b\255")
  eq(n, #big)
  eq(c, big)  -- digits: upper() is the identity
end)

test("nested tables, with all key kinds, by value", function()
  local arg1 = {
    1, "two", { 3, { 4, { 5 } } },
    name = "x", [true] = false, [2.5] = "float key", [-1] = "negative",
    deep = { a = { b = { c = { d = "bottom" } } } },
    empty = {},
  }
  local back = offload(function(t)
    t.seen = true  -- the worker's copy; ours stays as it was
    return t
  end, arg1)
  ok(back ~= arg1, "a copy comes back")
  eq(arg1.seen, nil, "the worker changed its own copy")
  back.seen = nil
  eq(back, arg1)
  eq(back.deep.a.b.c.d, "bottom")
  eq(back[3][2][2][1], 5)
end)

test("multiple results, none, and nil among them", function()
  eq(select("#", offload(function() end)), 0, "no results")
  local r = table.pack(offload(function(...) return select("#", ...), ... end, nil, 2, nil))
  eq(r.n, 4, "the trailing nil argument and result are counted")
  eq({ r[1], r[2], r[3], r[4] }, { 3, nil, 2, nil })
  r = table.pack(offload(function() return nil, nil end))
  eq(r.n, 2)
  local t = offload(function(x) return x end, { 1, nil, 3, n = 3 })
  eq({ t[1], t[2], t[3], t.n }, { 1, nil, 3, 3 })
  eq({ offload(function(a, b, c) return c, b, a end, true, false, "s") }, { "s", false, true })
end)

test("the worker has the standard libraries and its own globals", function()
  eq(offload(function() return table.concat({ string.rep("ab", 2), math.floor(2.5), utf8.char(72) }, "-") end),
     "abab-2-H")
  rawset(_G, "offload_test_global", "main")
  eq(offload(function() return offload_test_global end), nil, "main's globals are not there")
  offload(function() offload_test_global = "worker" end)
  eq(rawget(_G, "offload_test_global"), "main", "the worker's globals do not come back")
  rawset(_G, "offload_test_global", nil)
  eq(offload(function() return type(offload), type(sleep) end), "nil", "no lessonrun inside")
end)

test("the result is what the same function gives here", function()
  eq(offload(spin, 12345), spin(12345))
end)

-- ---- errors ------------------------------------------------------------------------

test("an error in the worker comes back with the worker's traceback", function()
  local line = debug.getinfo(1, "l").currentline + 2
  local err = raises("boom", offload, function(n)
    local function inner(x) error("boom " .. x) end
    inner(n)
  end, 7)
  err = tostring(err)
  h.match(err, "test_offload%.lua:" .. line .. ": boom 7", "the message with the worker's position")
  h.match(err, "stack traceback:", "a traceback")
  h.match(err, "inner", "the traceback names the worker's inner function")
  h.match(err, "test_offload%.lua:" .. (line + 1), "and the line that called it")
  sleep(0)  -- the task goes on normally
end)

test("runtime errors; error values that are not strings travel by value", function()
  raises("attempt to index a nil value", offload, function() local t; return t.x end)
  raises("attempt to perform arithmetic on a boolean value", offload, function(b) return b + 1 end, true)
  local e = { code = 7, detail = { "a", n = 2 } }
  local okay, err = pcall(offload, function(v) error(v) end, e)
  eq(okay, false)
  eq(err, e, "the table comes back whole")
  ok(err ~= e, "as a copy")
  okay, err = pcall(offload, function() error({ code = 7 }) end)
  eq({ okay, err }, { false, { code = 7 } })
  okay, err = pcall(offload, function() error(42) end)
  eq({ okay, err, math.type(err) }, { false, 42, "integer" }, "a number stays a number")
  okay, err = pcall(offload, function() error(false) end)
  eq({ okay, err }, { false, false })
  okay, err = pcall(offload, function() error() end)
  eq({ okay, err }, { false, nil }, "error() raises nil, as in lua5.4")
  raises("offload: the worker raised a function value that cannot travel back %(a function cannot be sent",
    offload, function() error(print) end)
  raises("offload: the worker raised a table value that cannot travel back %(a userdata cannot be sent",
    offload, function() error({ io.stdout }) end)
  raises("offload: the worker raised a table value that cannot travel back %(tables nested too deeply",
    offload, function() local t = {} t.t = t error(t) end)
  rawset(_G, "offload_test_fn", spin)  -- a global here is not one there
  raises("attempt to call a nil value %(global 'offload_test_fn'%)", offload, function(n) return offload_test_fn(n) end, 1)
  rawset(_G, "offload_test_fn", nil)
end)

test("the worker runs without a hook until it is cancelled", function()
  -- any hook slows every instruction: the stop hook is set only on cancel
  eq(offload(function() return debug.gethook() end), nil)
end)

test("the calling task can catch the error and offload again", function()
  local okay, err = pcall(offload, function() error("first") end)
  eq(okay, false)
  h.match(err, "first")
  eq(offload(function(x) return x + 1 end, 1), 2)
end)

-- ---- values that cannot travel ------------------------------------------------------

test("non-transferable arguments are refused, naming the argument", function()
  local id = function(...) return ... end
  raises(BAD_ARG:format(2) .. " %(a function cannot be sent", offload, id, print)
  raises(BAD_ARG:format(3) .. " %(a function cannot be sent", offload, id, 1, function() end)
  raises(BAD_ARG:format(2) .. " %(a coroutine cannot be sent", offload, id, coroutine.create(print))
  raises(BAD_ARG:format(2) .. " %(a userdata cannot be sent", offload, id, io.stdout)
  raises(BAD_ARG:format(2) .. " %(a userdata cannot be sent", offload, id, current())
  raises(BAD_ARG:format(4) .. " %(a function cannot be sent", offload, id, 1, 2, { nested = { print } })
  raises(BAD_ARG:format(2) .. " %(a function cannot be sent", offload, id, { [print] = 1 })
end)

test("the function itself: no upvalues but _ENV, no C function", function()
  local up = 1
  raises(BAD_ARG:format(1) .. " %(the function uses upvalue 'up'", offload, function() return up end)
  raises(BAD_ARG:format(1) .. " %(the function uses upvalue 'spin'", offload, function(n) return spin(n) end, 1)
  raises(BAD_ARG:format(1) .. " %(a C function cannot be sent", offload, print)
  raises(BAD_ARG:format(1) .. " %(a C function cannot be sent", offload, math.sqrt, 4)
  raises(BAD_ARG:format(1), offload, 42)
  raises(BAD_ARG:format(1), offload)
  eq(offload(function() return math.sqrt(16) end), 4.0, "_ENV (globals) is allowed")
end)

test("cycles and very deep tables are refused, not followed forever", function()
  local cyc = {}
  cyc.self = cyc
  raises(BAD_ARG:format(2) .. " %(tables nested too deeply", offload, function() end, cyc)
  local deep = {}
  local t = deep
  for _ = 1, 200 do t.next = {}; t = t.next end
  raises(BAD_ARG:format(2) .. " %(tables nested too deeply", offload, function() end, deep)
  raises("offload: result #1: tables nested too deeply", offload, function()
    local r = {}
    r.self = r
    return r
  end)
end)

test("results that cannot travel give a clear error", function()
  raises("offload: result #1: a function cannot be sent to a worker thread", offload,
    function() return function() end end)
  raises("offload: result #2: a userdata cannot be sent to a worker thread", offload,
    function() return 1, io.stdout end)
  raises("offload: result #1: a coroutine cannot be sent to a worker thread", offload,
    function() return coroutine.create(print) end)
  raises("offload: result #1: a function cannot be sent to a worker thread", offload,
    function() return { f = print } end)
  eq(offload(function() return "still fine" end), "still fine")
end)

-- ---- waiting, cancelling --------------------------------------------------------------

-- Calibrate a spin count that takes about `secs` in a worker.
local function calibrate(secs)
  local n = 200000
  while true do
    local t0 = now()
    offload(spin, n)
    local dt = now() - t0
    if dt > 0.05 then return math.floor(n * secs / dt) end
    n = n * 4
  end
end

test("other tasks run while a task waits for its offloaded work", function()
  local n = calibrate(0.3)
  local ticks, stop = 0, false
  local ticker = spawn(function()
    while not stop do sleep(0.01); ticks = ticks + 1 end
  end)
  offload(spin, n)
  stop = true
  ticker:wait()
  -- a count, not a rate: a busy machine may run the ticker late, but a
  -- loop blocked by the job would not run it at all
  ok(ticks >= 3, ("%d ticks of 10 ms during the offloaded work"):format(ticks))
end)

-- A job that never ends by itself: only the stop hook ends it.
local function forever(path)
  local ok_, err = pcall(function() while true do end end)
  local f = io.open(path, "w")  -- the worker caught its cancellation
  f:write(tostring(err))
  f:close()
  return ok_
end

local function slurp(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

test("cancelling the waiting task: it ends at once, and so does the job", function()
  local flag = os.tmpname()
  os.remove(flag)
  local t = spawn(offload, forever, flag)
  sleep(0.05)
  eq(t:state(), "waiting")
  t:cancel()
  -- the job never ends by itself: the task ending shows it did not wait
  local okay, err = pcall(t.wait, t)
  ok(not okay and iscancelled(err), "wait raises the cancellation: " .. tostring(err))
  eq(t:state(), "cancelled")
  -- the worker is hooked once cancelled, and its loop raises
  while not slurp(flag) do sleep(0.01) end
  h.match(slurp(flag), "offload: cancelled")
  os.remove(flag)
  eq(offload(function(x) return x * 2 end, 21), 42, "offload still works")
end)

test("cancelled jobs free every pool thread (more jobs than threads)", function()
  local threads = tonumber(os.getenv("UV_THREADPOOL_SIZE")) or 4
  local tasks = {}
  for i = 1, threads + 2 do
    tasks[i] = spawn(offload, function() while true do end end)
  end
  sleep(0.05)
  for _, t in ipairs(tasks) do t:cancel() end
  for _, t in ipairs(tasks) do
    local okay, err = pcall(t.wait, t)
    ok(not okay and iscancelled(err))
  end
  -- runs only once a thread is free: each cancelled loop had to stop
  eq(offload(function() return "free" end), "free")
end)

test("cancelling many jobs, queued ones included (more than the pool's threads)", function()
  local n = calibrate(0.1)
  local tasks = {}
  for i = 1, 12 do tasks[i] = spawn(offload, spin, n) end
  sleep(0.02)
  for _, t in ipairs(tasks) do t:cancel() end
  for _, t in ipairs(tasks) do
    local okay, err = pcall(t.wait, t)
    ok(not okay and iscancelled(err))
  end
  eq({ offload(function() return 1, 2 end) }, { 1, 2 }, "offload still works")
end)

test("cancelled after the job finished but before the task ran again", function()
  local t = spawn(offload, function() return "done" end)
  sleep(0)                  -- t starts its job
  blocking_sleep(0.05)      -- the job finishes; the loop has not seen it yet
  sleep(0)                  -- the loop sees it: t is woken (probably) but has not run
  local state = t:state()
  t:cancel()
  local okay, err = pcall(t.wait, t)
  ok(not okay and iscancelled(err), ("cancelled while %s: %s"):format(state, tostring(err)))
  eq(t:state(), "cancelled")
end)

test("a sibling's failure in gather cancels the task waiting for offload", function()
  -- the job never ends by itself: gather raising shows it did not wait
  raises("sibling failed", gather,
    function() return offload(function() while true do end end) end,
    function() sleep(0.02); error("sibling failed") end)
end)

-- ---- parallelism ---------------------------------------------------------------------------

test("two offloaded jobs run at the same time", function()
  -- os.clock() is the process's CPU time, a clock every thread shares: each
  -- job notes it when it starts and ends.  Run one after the other, the two
  -- intervals could not overlap; this holds however busy the machine is.
  local n = calibrate(0.1)
  local function timed(count)
    local t0 = os.clock()
    local s = 0
    for i = 1, count do s = s + math.sqrt(i) end
    return { t0, os.clock(), s }
  end
  local a, b = gather(function() return offload(timed, n) end, function() return offload(timed, n) end)
  eq(a[3], spin(n)); eq(b[3], spin(n))
  ok(a[1] < b[2] and b[1] < a[2],
     ("the jobs overlap: [%.3f, %.3f] and [%.3f, %.3f] s of CPU time"):format(a[1], a[2], b[1], b[2]))
end)

test("out of memory in the worker or for its arguments is an error, not a panic", function()
  if os.getenv("LR_SANITIZED") then
    print("     (skipped: ulimit -v and the sanitizers' shadow memory do not mix)")
    return
  end
  -- a child under a sweep of address-space limits: a big argument, a result
  -- twice its size, a worker that fills memory, then an ordinary job
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write([[
local s = string.rep("x", 40e6)
print(pcall(offload, function(x) return #x end, s))
print(pcall(offload, function(x) return x .. x end, s))
print(pcall(offload, function() local t = {} for i = 1, 1e8 do t[i] = i end end))
print(offload(function() return "last" end))
]])
  f:close()
  local seen = {}
  for kb = 60000, 300000, 15000 do
    local p = assert(io.popen(("ulimit -v %d && exec %q %q 2>&1"):format(kb, arg[-1], script)))
    local out = p:read("a")
    local _, how, code = p:close()
    ok(not out:find("PANIC"), kb .. " KB: " .. out)
    eq(how, "exit", kb .. " KB: ended by a signal: " .. out)
    ok(code == 0 or code == 1, kb .. " KB: exit status " .. tostring(code))
    for line in out:gmatch("[^\n]+") do
      local m = line:match("not enough memory.*")
      if m then seen[m] = true end
    end
    if code == 0 then h.match(out, "last\n$", kb .. " KB") end
  end
  os.remove(script)
  ok(seen["not enough memory in the worker thread"], "some limit failed the worker's allocations")
end, { timeout = 60 })

test("a worker's error message keeps what follows a NUL byte", function()
  -- the message was copied as a C string: "a\0b" came back as "a" and the traceback
  local _, err = pcall(offload, function() error("a\0b", 0) end)
  eq(err:sub(1, 4), "a\0b\n", "the whole message, then the traceback")
  h.match(err, "stack traceback:", "a traceback")
  local _, err2 = pcall(offload, function() error("x\0" .. string.rep("y", 1000) .. "\0", 0) end)
  eq(err2:sub(1, 1004), "x\0" .. string.rep("y", 1000) .. "\0\n")
  -- an error that is a string raised by the worker's own Lua (the runtime)
  local _, err3 = pcall(offload, function() local t = nil; return t["k\0ey"] end)
  h.match(err3, "stack traceback:", "a runtime error too")
end)

h.done()
