-- A tiny test harness.  Each test runs as its own task (so sleep, gather and
-- cancellation work inside it) with a time limit; a failure prints the
-- test's name, the message and the task's traceback.  Call done() last: it
-- prints "N passed, N failed" and exits non-zero if anything failed.
--
--   local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
--   (from another folder of tests/: .. "../lua/harness.lua")
--   h.test("sleep(0) yields", function() h.eq(1, 1) end)
--   h.done()
--
-- It runs under `lessonrun` (globals) and under a stock lua5.4 with
-- lessonrun.so on package.cpath (require "lessonrun").
local lr = rawget(_G, "lessonrun") or require "lessonrun"

local H = { passed = 0, failed = 0, lr = lr }
local only = os.getenv("TEST_ONLY")  -- run only the tests whose name has this

-- A readable rendering of a value, tables included (one level deep is enough
-- for messages).
local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" or depth > 1 or getmetatable(v) then return tostring(v) end
  local parts, n = {}, #v
  for i = 1, n do parts[#parts + 1] = show(v[i], depth + 1) end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(v[k], depth + 1) end
  return "{" .. table.concat(parts, ", ") .. "}"
end
H.show = show

local function deep_eq(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or getmetatable(a) or getmetatable(b) then
    return a ~= a and b ~= b  -- nan equals nan here
  end
  for k, v in pairs(a) do if not deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function where(msg)
  return msg and (msg .. ": ") or ""
end

--- eq(actual, expected [, msg]): equal values (tables compared deeply)
function H.eq(actual, expected, msg)
  if not deep_eq(actual, expected) then
    error(("%sexpected %s, got %s"):format(where(msg), show(expected), show(actual)), 2)
  end
end

--- ok(v [, msg]): v is truthy
function H.ok(v, msg)
  if not v then error(where(msg) .. "expected a true value, got " .. show(v), 2) end
  return v
end

--- near(x, lo, hi [, msg]): lo <= x <= hi (for timings)
function H.near(x, lo, hi, msg)
  if type(x) ~= "number" or x < lo or x > hi then
    error(("%sexpected a number in [%g, %g], got %s"):format(where(msg), lo, hi, show(x)), 2)
  end
end

--- match(s, pattern [, msg]): string s matches the Lua pattern
function H.match(s, pattern, msg)
  if type(s) ~= "string" or not s:find(pattern) then
    error(("%sexpected a string matching %q, got %s"):format(where(msg), pattern, show(s)), 2)
  end
end

--- raises(pattern, fn, ...) -> the error: fn(...) must raise an error whose
-- string form matches the Lua pattern (nil: any error).
function H.raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then
    error(("expected an error matching %q, but it returned normally"):format(tostring(pattern)), 2)
  end
  if pattern and not tostring(err):find(pattern) then
    error(("expected an error matching %q, got %s"):format(pattern, show(err)), 2)
  end
  return err
end

local function report_failure(name, err, tb)
  H.failed = H.failed + 1
  print(("FAIL %s\n  %s"):format(name, tostring(err):gsub("\n", "\n  ")))
  if tb then print("  " .. tb:gsub("\n", "\n  ")) end
end

--- test(name, fn [, {timeout = seconds}]): run fn as its own task, cancelled
-- after timeout seconds (default 5).  timeout = false: no watchdog, for tests
-- of deadlock detection (a pending watchdog timer is something that can still
-- happen, so it would hide the deadlock); ctest's TIMEOUT still applies.
--
-- {main = true}: run fn directly, not as a task (for a stock lua5.4, to test
-- the primitives called from the main thread).
function H.test(name, fn, opts)
  if only and not name:find(only, 1, true) then return end
  if opts and opts.main then
    local ok, err = xpcall(fn, debug.traceback)
    if ok then
      H.passed = H.passed + 1
      print("ok   " .. name)
    else
      report_failure(name, err)
    end
    return
  end
  local limit = 5
  if opts and opts.timeout ~= nil then limit = opts.timeout end
  local function body()
    local t = lr.spawn(fn)
    t:name(name)
    local timed_out = false
    -- The watchdog ends a test that hangs with a message naming it, rather
    -- than leaving the whole file to ctest's TIMEOUT.
    local dog = limit and lr.spawn(function()
      lr.sleep(limit)
      timed_out = true
      t:cancel()
    end)
    local ok, err = pcall(t.wait, t)
    -- deadlock detection may wake this waiter too (when the test's task is
    -- not the newest waiting one): keep waiting until the test has finished
    while not ok and not t:done() do ok, err = pcall(t.wait, t) end
    if t:done() then ok, err = t:state() == "done", t:error() end
    if dog then dog:cancel() end
    if ok then
      H.passed = H.passed + 1
      print("ok   " .. name)
    elseif timed_out then
      report_failure(name, ("timed out after %g s"):format(limit), t:traceback())
    else
      report_failure(name, err, t:traceback())
    end
  end
  local ok, err = pcall(lr.run, body)
  if not ok then report_failure(name, "harness: " .. tostring(err)) end
end

--- done(): print the totals and exit (non-zero if a test failed)
--- skip_unless_built(trick, why): exit 77 (ctest: skipped) unless lessonrun
--- was built with that speed trick (LR_TRICKS, set by tests/CMakeLists.txt;
--- unset: the defaults, all built), the reason logged where ctest shows it
function H.skip_unless_built(trick, why)
  local tricks = os.getenv("LR_TRICKS")
  if not tricks or (" " .. tricks .. " "):find(" " .. trick .. " ", 1, true) then return end
  local reason = ("skipped: %s (lessonrun built without it: LR_TRICKS=%q)"):format(why, tricks)
  print(reason)
  local log = os.getenv("LR_SKIPPED_LOG")
  local f = log and io.open(log, "a")
  if f then
    f:write(("  %s: %s\n"):format(os.getenv("LR_TEST_NAME") or arg[0], reason))
    f:close()
  end
  io.stdout:flush()
  os.exit(77)
end

function H.done()
  print(("%d passed, %d failed"):format(H.passed, H.failed))
  io.stdout:flush()
  os.exit(H.failed == 0 and H.passed > 0 and 0 or 1)
end

return H
