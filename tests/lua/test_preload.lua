-- libcurl is loaded on a thread from the start for a script whose code names
-- fetch (cli/preload.c, base/dl.c; built with LR_PRELOAD), and only then:
-- the first fetch finds it loaded, other programs start as before, and
-- exiting while it loads is clean.
-- Whether libcurl is loaded is read from /proc/self/maps.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
h.skip_unless_built("preload", "these check the early loading of libcurl (LR_PRELOAD=OFF)")
local lr = h.lr

local exe = arg[-1]

local function curl_mapped()
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("a")
  f:close()
  return maps:find("libcurl", 1, true) ~= nil
end

-- Runs lessonrun with the given script text (and arguments); returns its
-- output and exit code.
local function run(text, args)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  local p = assert(io.popen(("%q %q %s 2>&1"):format(exe, path, args or "")))
  local out = p:read("a")
  local _, _, code = p:close()
  os.remove(path)
  return out, code
end

-- what a child prints: whether libcurl is in its memory after a while
local probe = [[
local f = assert(io.open("/proc/self/maps"))
local loaded = f:read("a"):find("libcurl", 1, true) ~= nil
f:close()
print(loaded and "loaded" or "not loaded")
]]
local F = "fet" .. "ch"  -- the word, without writing it into the probes by accident

h.test("this script says fetch: libcurl loads before the first one", function()
  local t0 = lr.now()
  while not curl_mapped() and lr.now() - t0 < 5 do lr.sleep(0.01) end
  h.ok(curl_mapped(), "libcurl loaded without a fetch")
  local srv = lr.serve()
  h.eq(lr.fetch(srv.url .. "/get").status, 200)
  h.eq(lr.blocking_fetch(srv.url .. "/get").status, 200)
  srv:stop()
end)

h.test("a script that never says it: not loaded", function()
  local out, code = run("sleep(0.3)\n" .. probe)
  h.eq(out, "not loaded\n")
  h.eq(code, 0)
end)

h.test("-e is not looked into", function()
  local p = assert(io.popen(("%q -e %q 2>&1"):format(exe, "local _ = " .. F .. "; sleep(0.3); " .. probe:gsub("\n", " "))))
  h.eq(p:read("a"), "not loaded\n")
  p:close()
end)

h.test("a script whose code names fetch loads libcurl, and may still never use it", function()
  local out, code = run("if false then " .. F .. "() end\nsleep(0.3)\n" .. probe)
  h.eq(out, "loaded\n")
  h.eq(code, 0)
end)

h.test("fetch in a comment is not the code naming it; a field named fetch is", function()
  h.eq(run("-- " .. F .. " later\nsleep(0.3)\n" .. probe), "not loaded\n")
  h.eq(run("local " .. F .. "_count = 1\nsleep(0.3)\n" .. probe), "not loaded\n")  -- a local's name is debug info
  h.eq(run("local t = {}\nt." .. F .. " = 1\nsleep(0.3)\n" .. probe), "loaded\n")
end)

h.test("exiting at once while libcurl loads", function()
  for _, how in ipairs({ "os.exit(3)", "error('stop')", "return" }) do
    local out, code = run("if false then " .. F .. "() end\n" .. how .. "\n")
    h.eq(code, how == "os.exit(3)" and 3 or how == "return" and 0 or 1, how .. ": " .. out)
  end
end)

h.test("the first fetch of a script waits for the loading, then works", function()
  local out, code = run(("local srv = serve() print(%s(srv.url .. '/get').status) srv:stop()"):format(F))
  h.eq(out, "200\n")
  h.eq(code, 0)
  out, code = run(("local srv = serve() print(blocking_%s(srv.url .. '/get').status) srv:stop()"):format(F))
  h.eq(out, "200\n")
  h.eq(code, 0)
end)

h.done()
