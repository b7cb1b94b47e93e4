-- Soak: more concurrent fetches than the process may open descriptors.
-- A child lessonrun (soak_fdlimit_child.lua) runs under `ulimit -n 256`,
-- soft and hard (a server raises the soft limit to the hard one, so both are
-- lowered), and starts 1,000 fetches of /delay/0.2 at once, no semaphore.
-- Transfers beyond the connection limits must wait for a connection; none
-- may fail for lack of descriptors.
--
-- The honest setting is the server in another process (`lessonrun serve`):
-- the client's limit is then the client's alone, as against a real remote
-- host.  The server in the same process (as in the lessons) is checked too:
-- there each connection costs two descriptors of the same budget.
--
-- Regression (CHANGELOG.md, "Connection limit above the descriptor
-- limit", fixed in 04ad0ab): max_connections defaulted to 256 whatever the
-- descriptor limit, so under `ulimit -n 256` socket() failed with EMFILE and
-- the transfers queued behind failed at once with kind "connect" (242 of
-- 1,000 succeeded; 117 with the server in the same process).  The default
-- is now a quarter of the soft limit (64 here).  The checks with
-- max_connections lowered by hand passed before the fix as well.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "../lua/harness.lua")
local soak = dofile(arg[0]:match("^(.-)[^/]*$") .. "soak.lua")

local DIR = arg[0]:match("^(.-)[^/]*$")
local LR = assert(arg[-1], "run by lessonrun: arg[-1] names it")
local LIMIT, COUNT = 256, 1000

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local server  -- `lessonrun serve --port 0` in a process of its own, on first use
local function external_server()
  server = server or soak.serve_elsewhere(LR)
  return server.url
end

-- Runs the child under the lowered limit: ok, its output
local function child(target, max_connections)
  local cmd = ("ulimit -n %d && exec timeout 60 %s %s %s %d %s 2>&1"):format(
    LIMIT, q(LR), q(DIR .. "soak_fdlimit_child.lua"), q(target), COUNT, max_connections or "")
  local p = assert(io.popen("bash -c " .. q(cmd)))
  local out = p:read("a")
  local ok = p:close()
  for line in out:gmatch("[^\n]+") do print("  | " .. line) end
  local n = tonumber(out:match("ok (%d+) of"))
  soak.figure("ulimit -n %d, %s, max_connections %s: %s of %d fetches succeeded%s", LIMIT,
              target == "serve" and "server in the same process" or "server in another process",
              max_connections or "default", n or "?", COUNT,
              out:match("in ([%d.]+ s)") and (" in " .. out:match("in ([%d.]+ s)")) or "")
  return ok, n, out
end

h.test("1,000 fetches at once, ulimit -n 256, server in another process, default limits", function()
  local ok, n = child(external_server() .. "/delay/0.2")
  h.eq(n, COUNT, "fetches that succeeded")
  h.ok(ok, "the child exited 0")
end, { timeout = 90 })

h.test("1,000 fetches at once, ulimit -n 256, server in another process, max_connections 200", function()
  local ok, n = child(external_server() .. "/delay/0.2", 200)
  h.eq(n, COUNT, "fetches that succeeded")
  h.ok(ok, "the child exited 0")
end, { timeout = 90 })

h.test("1,000 fetches at once, ulimit -n 256, server in the same process, default limits", function()
  local ok, n = child("serve")
  h.eq(n, COUNT, "fetches that succeeded")
  h.ok(ok, "the child exited 0")
end, { timeout = 90 })

h.test("1,000 fetches at once, ulimit -n 256, server in the same process, max_connections 100", function()
  local ok, n = child("serve", 100)
  h.eq(n, COUNT, "fetches that succeeded")
  h.ok(ok, "the child exited 0")
end, { timeout = 90 })

if server then server.stop() end
h.done()
