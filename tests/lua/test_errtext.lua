-- Error values turned into text for the user (core/errors.c, lr__errtext):
-- a __tostring that fails, waits or returns no string gives a message, never
-- "PANIC: unprotected error in call to Lua API" nor a hang; the REPL on a
-- pipe (lua5.4's non-interactive -i) prints results through a task.  Where
-- lua5.4 has a message for the same value, it is the same message.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")

local exe = assert(arg[-1], "run by lessonrun: arg[-1] names it")

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function have(cmd)
  local ok = os.execute("command -v " .. cmd .. " >/dev/null 2>&1")
  return ok == true or ok == 0
end
local lua54 = have("lua5.4") and "lua5.4" or nil

-- Runs cmd under a 10 s limit; returns its stdout and stderr together, and its status.
local function run(cmd, input)
  local path
  if input then
    path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(input)
    f:close()
  end
  local p = assert(io.popen("timeout -k 2 10 " .. cmd .. (path and (" <" .. q(path)) or " </dev/null") .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  if path then os.remove(path) end
  return out, code
end

local function has(out, text, msg)
  h.ok(out:find(text, 1, true), ("%s: %q not in:\n%s"):format(msg, text, out))
end

local function no_panic(out, code, msg)
  h.ok(not out:find("PANIC", 1, true), msg .. ": PANIC in:\n" .. out)
  h.ok(code ~= 124 and code ~= 137, msg .. ": hung (killed by timeout)")
end

-- the first line after "progname: ", for comparing with lua5.4
local function message(out)
  return (out:match("^[^:\n]+: ([^\n]*)") or out)
end

h.test("error values lua5.4 has a message for: the same message", function()
  local cases = {
    "error({})",
    "error(nil)",
    "error(true)",
    "error(42)",
    "error(setmetatable({}, {__tostring = function() return 42 end}))",
    "error(setmetatable({}, {__tostring = function() return 'custom' end}))",
    "error(setmetatable({}, {__name = 42}))",
    "error(setmetatable({}, {__name = 'MyType'}))",
    "error(setmetatable({}, {__tostring = function() return nil end}))",
  }
  local want = {
    "(error object is a table value)", "(error object is a nil value)",
    "(error object is a boolean value)", "42", "(error object is a table value)", "custom",
    "(error object is a table value)", "(error object is a table value)",
    "(error object is a table value)",
  }
  for i, code in ipairs(cases) do
    local out, rc = run(q(exe) .. " -e " .. q(code))
    no_panic(out, rc, code)
    h.eq(rc, 1, code)
    h.eq(message(out), want[i], code)
    if lua54 then
      local lout = run(lua54 .. " -e " .. q(code))
      h.eq(message(out), message(lout), code .. " (against lua5.4)")
    end
  end
end)

h.test("-l of a module that raises a table: lua5.4's message", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. q(dir)))
  local f = assert(io.open(dir .. "/errmod.lua", "w"))
  f:write("error({ code = 7 })\n")
  f:close()
  local env = "env LUA_PATH=" .. q(dir .. "/?.lua") .. " "
  local out, rc = run(env .. q(exe) .. " -l errmod -e 'print(1)'")
  no_panic(out, rc, "-l errmod")
  h.eq(rc, 1, "-l errmod")
  h.eq(message(out), "(error object is a table value)", "-l errmod")
  if lua54 then h.eq(message(out), message(run(env .. lua54 .. " -l errmod -e 'print(1)'")), "-l against lua5.4") end
  os.remove(dir .. "/errmod.lua")
  os.remove(dir)
end)

h.test("a __tostring that fails or waits while an error is reported", function()
  local cases = {
    {"error(setmetatable({}, {__tostring = function() error('inner') end}))",
     "(error object is a table value; its __tostring failed: (command line):1: inner)"},
    -- waiting is refused at once rather than driving the loop from the report
    {"error(setmetatable({}, {__tostring = function() sleep(math.huge) return 's' end}))",
     "(error object is a table value; its __tostring failed: (command line):1: sleep: must be called from a task"},
    {"error(setmetatable({}, {__tostring = function() coroutine.yield() end}))",
     "(error object is a table value; its __tostring failed: attempt to yield from outside a coroutine)"},
    -- its own error is a value whose __tostring fails too
    {"error(setmetatable({}, {__tostring = function() error(setmetatable({}, {__tostring = function() error('x') end})) end}))",
     "(error object is a table value)"},
  }
  for _, c in ipairs(cases) do
    local t0 = now()
    local out, rc = run(q(exe) .. " -e " .. q(c[1]))
    no_panic(out, rc, c[1])
    h.eq(rc, 1, c[1])
    has(message(out), c[2], c[1])
    h.ok(now() - t0 < 5, c[1] .. ": the report waited")
  end
end)

h.test("a failed task nobody waited for, its __tostring failing or waiting", function()
  for _, body in ipairs({"error('inner')", "sleep(math.huge) return 's'"}) do
    local code = "spawn(function() error(setmetatable({}, {__tostring = function() " .. body ..
                 " end})) end) sleep(0.05)"
    local out, rc = run(q(exe) .. " -e " .. q(code))
    no_panic(out, rc, code)
    has(out, "failed and nobody waited for it: (error object is a table value", code)
  end
end)

h.test("the REPL on a pipe: results and errors whose __tostring fails or waits", function()
  local input = table.concat({
    "setmetatable({}, {__tostring = function() error('bad tostring') end})",
    "error(setmetatable({}, {__tostring = function() error('bad message') end}))",
    "setmetatable({}, {__tostring = function() sleep(0.1) return 'woke' end})",
    "error(setmetatable({}, {__tostring = function() sleep(math.huge) return 's' end}))",
    "setmetatable({}, {__name = 42})",
    "setmetatable({}, {__tostring = function() return 6 * 7 end})",
    "error({})",
    "'still ' .. 'alive'",
    "",
  }, "\n")
  local out, rc = run(q(exe) .. " -i", input)
  no_panic(out, rc, "-i")
  h.eq(rc, 0, "-i exits 0 at the end of its input")
  has(out, "\nerror calling 'print' (stdin:1: bad tostring)", "-i")
  has(out, "\n(error object is a table value; its __tostring failed: stdin:1: bad message)", "-i")
  has(out, "\nerror calling 'print' (stdin:1: sleep: cannot wait here", "-i")
  has(out, "its __tostring failed: stdin:1: sleep: must be called from a task", "-i")
  h.ok(out:find("\ntable: 0x", 1, true) or out:find("> table: 0x", 1, true), "__name = 42: " .. out)
  has(out, "42\n", "-i")
  has(out, "\n(error object is a table value)\n", "-i")
  has(out, "still alive", "-i")
  if lua54 then  -- lua5.4 says the same for the values it can print
    local lout = run(lua54 .. " -i", "setmetatable({}, {__tostring = function() error('bad tostring') end})\n")
    has(lout, "error calling 'print' (stdin:1: bad tostring)", "lua5.4 -i")
  end
end)

h.done()
