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

-- memstat (tests/memstat.c, built by ctest, path in $LR_MEMSTAT): malloc_trim
-- and the bytes malloc'd now.  nil when the test is run by hand without it.
local memstat_path = os.getenv("LR_MEMSTAT")
if memstat_path and memstat_path ~= "" then
  S.memstat = assert(package.loadlib(memstat_path, "luaopen_memstat"))()
end

-- The popen'd `ls` lists this process's table, not its own.
local function fd_links()
  local p = assert(io.popen("ls -l /proc/" .. S.pid .. "/fd 2>/dev/null"))
  local links = {}
  for line in p:lines() do
    local target = line:match(" %-> (.*)$")
    if target then links[#links + 1] = target end
  end
  p:close()
  return links
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

--- sockets(port) -> client, server: our TCP connections to port (the fetch
-- side) and from it (an in-process server's side of them)
function S.sockets(port)
  local tcp, client, server = tcp_table(), 0, 0
  for _, link in ipairs(fd_links()) do
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
