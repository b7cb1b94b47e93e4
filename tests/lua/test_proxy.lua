-- A proxy from the environment (http_proxy and kin) is used, as curl and
-- requests do, but never for loopback: on a machine set up with a proxy the
-- built-in server, and so the offline lessons, must still work.  Each case
-- runs a child lessonrun with the variables set.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local lr = h.lr

local exe = arg[-1]
local REFUSED = "http://127.0.0.1:9"  -- nothing listens: a proxy that is used fails

local function run(env, code)
  local p = assert(io.popen(("env %s %q -e %q 2>&1"):format(env, exe, code)))
  local out = p:read("a")
  p:close()
  return out
end

h.test("loopback bypasses http_proxy: 127.0.0.1, localhost, ::1, both fetches", function()
  local out = run("http_proxy=" .. REFUSED .. " HTTP_PROXY=" .. REFUSED .. " ALL_PROXY=" .. REFUSED, [[
    local s, s6 = serve(), serve({ host = "::1" })
    print(fetch(s.url .. "/get").status, blocking_fetch(s.url .. "/get").status,
          fetch("http://localhost:" .. s.port .. "/get").status, fetch(s6.url .. "/get").status)]])
  h.eq(out, "200\t200\t200\t200\n")
end)

h.test("the environment's no_proxy is kept alongside", function()
  local out = run("no_proxy=lessonrun.invalid http_proxy=" .. REFUSED, [[
    local s = serve()
    print(fetch(s.url .. "/get").status)
    local ok, e = pcall(fetch, "http://lessonrun.invalid/get", { timeout = 5 })
    print(errorkind(e))]])
  h.eq(out, "200\ndns\n")  -- not proxied: it tried to resolve the name itself
end)

h.test("other hosts still go through the proxy", function()
  local proxy <close> = lr.serve()
  local out = run("http_proxy=" .. proxy.url, [[
    local ok, r = pcall(fetch, "http://lessonrun.invalid/status/418", { timeout = 5 })
    print(ok and "answered by the proxy" or r)]])
  h.eq(out, "answered by the proxy\n")
end)

h.done()
