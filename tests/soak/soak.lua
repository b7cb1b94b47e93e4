-- What the soak tests measure about their own process: descriptors, TCP
-- connections by side, memory.  Linux only (/proc).
--
--   local soak = dofile(arg[0]:match("^(.-)[^/]*$") .. "soak.lua")
local S = {}

do
  local f = assert(io.open("/proc/self/stat"))  -- closed now: it would count
  S.pid = f:read("l"):match("^(%d+)")
  f:close()
end

-- memstat (tests/soak/memstat.c, built by ctest, path in $LR_MEMSTAT): malloc_trim
-- and the bytes malloc'd now.  nil when the test is run by hand without it.
local memstat_path = os.getenv("LR_MEMSTAT")
if memstat_path and memstat_path ~= "" then
  S.memstat = assert(package.loadlib(memstat_path, "luaopen_memstat"))()
end

-- The popen'd `ls` lists this process's table (or pid's), not its own.
local function fd_links(pid)
  local p = assert(io.popen("ls -l /proc/" .. (pid or S.pid) .. "/fd 2>/dev/null"))
  local links = {}
  for line in p:lines() do
    local fd, target = line:match(" (%d+) %-> (.*)$")
    if target then links[#links + 1] = target links[target .. " #" .. fd] = true end
  end
  p:close()
  return links
end

--- fd_table() -> a set of "target #fd" strings, for fd_diff (two listings
-- intersected, which leaves out the pipe each reads through)
function S.fd_table()
  local a, t = fd_links(), {}
  for k in pairs(fd_links()) do if type(k) == "string" and a[k] then t[k] = true end end
  return t
end

--- fd_diff(before, after) -> the descriptors open in after but not before
function S.fd_diff(before, after)
  local new = {}
  for k in pairs(after) do if not before[k] then new[#new + 1] = k end end
  table.sort(new)
  return #new > 0 and table.concat(new, ", ") or "none"
end

--- fds() -> open descriptors of this process (not counting the pipe that
-- fd_links reads through, which is one of ours while `ls` runs)
function S.fds()
  return #fd_links() - 1
end

-- TCP sockets by inode: {local_port, remote_port}
local function tcp_table()
  local t = {}
  for _, f in ipairs({ "/proc/" .. S.pid .. "/net/tcp", "/proc/" .. S.pid .. "/net/tcp6" }) do
    local fh = io.open(f)
    if fh then
      fh:read("l")  -- header
      for line in fh:lines() do
        local lp, rp, inode = line:match("^%s*%d+: %x+:(%x+) %x+:(%x+) %x+ %x+:%x+ %x+:%x+ %x+%s+%d+%s+%d+ (%d+)")
        if inode then t[inode] = { tonumber(lp, 16), tonumber(rp, 16) } end
      end
      fh:close()
    end
  end
  return t
end

--- sockets(port [, pid]) -> client, server: the TCP connections of this
-- process (or of process pid) to port (the fetch side) and from it (the
-- side of a server listening there)
function S.sockets(port, pid)
  local tcp, client, server = tcp_table(), 0, 0
  for _, link in ipairs(fd_links(pid)) do
    local inode = link:match("^socket:%[(%d+)%]$")
    local c = inode and tcp[inode]
    if c then
      if c[2] == port then client = client + 1 end
      if c[1] == port and c[2] ~= 0 then server = server + 1 end
    end
  end
  return client, server
end

--- status(field) -> a /proc/self/status figure in kB (VmRSS, VmHWM...)
function S.status(field)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. field .. ":%s*(%d+)")
    if v then return tonumber(v) end
  end
end

--- memory() -> {rss=, trimmed=, heap=, lua=}: RSS after a full collection;
-- RSS again after malloc_trim (freed C memory handed back, as the
-- collection does for Lua's); bytes malloc'd; Lua's heap.  kB throughout.
function S.memory()
  collectgarbage("collect")
  collectgarbage("collect")  -- finalizers of the first pass free more
  local m = { rss = S.status("VmRSS"), lua = collectgarbage("count") }
  if S.memstat then
    S.memstat.trim()
    m.trimmed = S.status("VmRSS")
    m.heap = S.memstat.in_use() / 1024
  end
  return m
end

function S.show_memory(m)
  return ("RSS %.1f MB (%s), malloc'd %s, Lua heap %.0f kB"):format(
    m.rss / 1024, m.trimmed and ("%.1f MB after malloc_trim"):format(m.trimmed / 1024) or "no malloc_trim",
    m.heap and ("%.1f MB"):format(m.heap / 1024) or "?", m.lua)
end

--- drop_dead_connections(lr, base) -> descriptors, requests.  libcurl closes
-- a cached connection whose peer has gone only when a request looks for a
-- connection, and looks at most once a second.  So: wait 1.1 s, make a
-- request to a refused port (it leaves nothing open), count; up to three
-- times, until the count is down to base.
function S.drop_dead_connections(lr, base)
  local n, requests = nil, 0
  repeat
    lr.sleep(1.1)
    requests = requests + 1
    local ok, err = pcall(lr.fetch, "http://127.0.0.1:1/")
    assert(not ok and lr.errorkind(err) == "connect", "a fetch of a refused port: " .. tostring(err))
    n = S.fds()
  until n <= base or requests == 3
  return n, requests
end

--- serve_elsewhere(lessonrun) -> {url=, port=, pid=, stop=}: `lessonrun
-- serve --port 0` in a process of its own, its descriptors not ours
function S.serve_elsewhere(lessonrun)
  local q = "'" .. lessonrun:gsub("'", "'\\''") .. "'"
  local pipe = assert(io.popen("sh -c 'echo $$; exec \"$0\" serve --port 0' " .. q))
  local srv = { pid = pipe:read("l") }
  local line = pipe:read("l") or ""
  srv.url = line:match("serving on (http://127%.0%.0%.1:%d+)")
  assert(srv.url, "lessonrun serve did not start: " .. line)
  srv.port = tonumber(srv.url:match(":(%d+)$"))
  function srv.stop()
    os.execute("kill " .. srv.pid)
    pipe:close()
  end
  return srv
end

--- fd_limit() -> the soft limit on descriptors (children inherit it)
function S.fd_limit()
  local p = io.popen("sh -c 'ulimit -n'")
  local v = p:read("l")
  p:close()
  return tonumber(v) or math.huge
end

--- figure(fmt, ...): a line for the README's reliability section
function S.figure(fmt, ...)
  print("  figure: " .. fmt:format(...))
  io.stdout:flush()
end

return S
