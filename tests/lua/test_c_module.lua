-- C modules in lessonrun: the executable carries its own copy of Lua (linked
-- in statically, for start-up) and exports Lua's C API, as lua5.4 does, so a
-- module built the Debian way (not linked against liblua) loads and runs.
-- The module is tests/soak/memstat.c; ctest passes its path in LR_MEMSTAT.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")

local path = assert(os.getenv("LR_MEMSTAT"), "LR_MEMSTAT: the path of memstat.so")

h.test("require finds a C module on package.cpath and calls into it", function()
  package.cpath = path:match("^(.-)[^/]*$") .. "?.so;" .. package.cpath
  local memstat = require "memstat"  -- luaL_newlib: luaL_checkversion passes
  h.eq(type(memstat.in_use), "function")
  h.ok(math.type(memstat.in_use()) == "integer" and memstat.in_use() > 0)
  h.match(memstat.allocator(), "^%a+$")
end)

h.test("package.loadlib binds one function; its errors are Lua errors", function()
  local open = assert(package.loadlib(path, "luaopen_memstat"))
  local m = open()
  h.eq(type(m.trim), "function")
  local f, err = package.loadlib(path, "luaopen_nothing_here")
  h.eq(f, nil)
  h.match(err, "undefined symbol")
end)

h.done()
