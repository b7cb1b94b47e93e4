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

test("runtime errors and non-string error values", function()
  raises("attempt to index a nil value", offload, function() local t; return t.x end)
  raises("attempt to perform arithmetic on a boolean value", offload, function(b) return b + 1 end, true)
  raises("error object is a table value", offload, function() error({ code = 1 }) end)
  raises("error object is a nil value", offload, function() error() end)
  rawset(_G, "offload_test_fn", spin)  -- a global here is not one there
  raises("attempt to call a nil value %(global 'offload_test_fn'%)", offload, function(n) return offload_test_fn(n) end, 1)
  rawset(_G, "offload_test_fn", nil)
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
  local t0 = now()
  offload(spin, n)
  local dt = now() - t0
  stop = true
  ticker:wait()
  ok(ticks >= 0.3 * dt / 0.01, ("%d ticks of 10 ms during %.2f s of offloaded work"):format(ticks, dt))
end)

test("cancelling the waiting task: it ends at once, and so does the job", function()
  local n = calibrate(0.3)
  local flag = os.tmpname()
  os.remove(flag)
  local t = spawn(offload, function(count, path)
    local s = 0
    for i = 1, count do s = s + math.sqrt(i) end
    local f = io.open(path, "w")
    f:write("finished")
    f:close()
    return s
  end, n, flag)
  sleep(0.05)
  eq(t:state(), "waiting")
  local t0 = now()
  t:cancel()
  local okay, err = pcall(t.wait, t)
  ok(not okay and iscancelled(err), "wait raises the cancellation: " .. tostring(err))
  ok(now() - t0 < 0.1, ("the task ended %.3f s after cancel, not when the job did"):format(now() - t0))
  eq(t:state(), "cancelled")
  -- the worker checks a stop flag every 10,000 instructions: it gives up
  -- instead of finishing (and holding a core, and the process's exit)
  sleep(0.6)
  local f = io.open(flag)
  ok(not f, "the job stopped early instead of running to its end")
  if f then f:close() os.remove(flag) end
  eq(offload(function(x) return x * 2 end, 21), 42, "offload still works")
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
  local n = calibrate(0.3)
  local t0 = now()
  raises("sibling failed", gather,
    function() return offload(spin, n) end,
    function() sleep(0.02); error("sibling failed") end)
  ok(now() - t0 < 0.25, "gather raised without waiting for the job")
end)

-- ---- parallelism ---------------------------------------------------------------------------

test("two offloaded CPU loops run in parallel (on 2+ cores)", function()
  local ncores = cores()
  if ncores < 2 then
    print("     (skipped: this machine has 1 core)")
    return
  end
  local n = calibrate(0.3)
  local tries = {}
  -- up to 3 tries: another process may take a core for a moment; serial
  -- execution fails them all
  for _ = 1, 3 do
    local t0 = now()
    local a = offload(spin, n)
    local one = now() - t0
    t0 = now()
    offload(spin, n)
    local two = now() - t0
    t0 = now()
    local x, y = gather(function() return offload(spin, n) end, function() return offload(spin, n) end)
    local both = now() - t0
    eq(x, a); eq(y, a)
    tries[#tries + 1] = ("%.2f s together vs %.2f + %.2f s in turn"):format(both, one, two)
    if both < 0.85 * (one + two) then return end
  end
  error("no parallelism on " .. ncores .. " cores: " .. table.concat(tries, "; "))
end, { timeout = 20 })

h.done()
