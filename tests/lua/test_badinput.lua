-- Misuse raises an error that names the function and the argument, and
-- points at the caller's line (as the standard library does).
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local test, eq, ok, raises = h.test, h.eq, h.ok, h.raises

-- fn() must raise "<this file>:<line>: bad argument #1 to '<name>' (<detail>)"
local function bad(name, detail, fn)
  local err = raises(nil, fn)
  h.match(err, "^[^\n]*test_badinput%.lua:%d+: bad argument #1 to '" .. name .. "' %(",
          "message names the caller's line, the function and the argument")
  h.match(err, detail)
  return err
end

test("sleep rejects negative, nan, non-numbers and no argument", function()
  bad("sleep", "must be >= 0", function() sleep(-1) end)
  bad("sleep", "must be >= 0", function() sleep(-math.huge) end)
  bad("sleep", "nan", function() sleep(0 / 0) end)
  bad("sleep", "number expected, got string", function() sleep("x") end)
  bad("sleep", "number expected, got no value", function() sleep() end)
  bad("sleep", "number expected, got table", function() sleep({}) end)
end)

test("sleep accepts what Lua calls a number", function()
  sleep(0)
  sleep(-0.0)
  sleep("0.001")  -- a numeric string, as everywhere in Lua
  sleep(1 // 1000)
end)

test("blocking_sleep rejects negative, nan, infinite and non-numbers", function()
  bad("blocking_sleep", "must be >= 0", function() blocking_sleep(-1) end)
  bad("blocking_sleep", "finite", function() blocking_sleep(math.huge) end)
  bad("blocking_sleep", "nan", function() blocking_sleep(0 / 0) end)
  bad("blocking_sleep", "number expected", function() blocking_sleep("soon") end)
  bad("blocking_sleep", "number expected, got no value", function() blocking_sleep() end)
end)

test("spawn needs something callable", function()
  bad("spawn", "function expected, got number", function() spawn(42) end)
  bad("spawn", "function expected, got no value", function() spawn() end)
  bad("spawn", "function expected, got table", function() spawn({}) end)
  bad("spawn", "function expected, got nil", function() spawn(nil, 1) end)
end)

test("gather and settle need functions or tasks", function()
  bad("gather", "function or task expected, got number", function() gather(42) end)
  bad("settle", "function or task expected, got string", function() settle("x") end)
  local err = raises(nil, function() gather(function() end, true) end)
  h.match(err, "test_badinput%.lua:%d+: bad argument #2 to 'gather' %(function or task expected, got boolean[;)]")
end)

test("gather's list form names the bad item", function()
  local err = raises(nil, function() gather({ 1 }) end)
  h.match(err, "test_badinput%.lua:%d+: bad item 1 of the list to 'gather' %(function or task expected, got number[;)]")
  err = raises(nil, function() settle({ function() end, "two" }) end)
  h.match(err, "bad item 2 of the list to 'settle'")
end)

-- Regression test (CHANGELOG.md, fixed, "gather(fn, 42)"): gather spawns its
-- functions one by one while it checks its arguments, so the ones before
-- the bad argument are started, and left running, although gather raised.
test("a bad argument to gather starts nothing", function()
  local ran = false
  raises("bad argument #2", function() gather(function() ran = true end, 42) end)
  sleep(0.01)
  eq(ran, false, "the good function was not started")
end)

test("run needs a function", function()
  bad("run", "function expected, got number", function() run(42) end)
  bad("run", "function expected, got n", function() run() end)  -- nil or no value
end)

test("task methods check their self", function()
  local t = spawn(function() end)
  for _, m in ipairs { "wait", "cancel", "state", "done", "result", "error", "traceback", "name", "id" } do
    local call = assert(load("local t = ... return t." .. m .. "(42)", "=call"))
    local err = raises(nil, call, t)
    h.match(err, "bad argument #1 to '" .. m .. "' %(lessonrun%.Task expected, got number%)", m)
  end
  local err = raises(nil, function() t:name({}) end)
  -- a method call counts arguments after self, as in the standard library
  h.match(err, "bad argument #1 to 'name' %(string expected, got table%)")
  t:wait()
end)

-- Regression test (CHANGELOG.md, fixed, "gather(current())"): gather's misuse
-- error is caught in api.lua, which then cancels every task in the list,
-- here the caller itself, so the caller dies at its next wait point.
test("gather(current()) is an error that leaves the caller alive", function()
  raises("cannot wait for itself", function() gather(current()) end)
  local okp, err = pcall(sleep, 0)
  ok(okp, "the caller was cancelled by its own misuse of gather: " .. tostring(err))
end)

test("the warning switches take a boolean (0, a string or a table is a mistake)", function()
  bad("blocking_warnings", "boolean expected, got number", function() blocking_warnings(0) end)
  bad("blocking_warnings", "boolean expected, got string", function() blocking_warnings("no") end)
  bad("pending_warnings", "boolean expected, got number", function() pending_warnings(0) end)
  bad("pending_warnings", "boolean expected, got table", function() pending_warnings({}) end)
  for _, name in ipairs({"blocking_warnings", "pending_warnings"}) do
    local f = _G[name]
    local was = f(false)
    eq(f(), false, name .. "() reads the setting")
    eq(f(nil), false)
    eq(f(was), false)
  end
end)

test("misuse errors are ordinary errors, not cancellations", function()
  local err = raises(nil, function() sleep(-1) end)
  eq(iscancelled(err), false)
  eq(errorkind(err), nil)
end)

h.done()
