-- The core's layering, checked from the objects' symbols (core/README.md):
-- every call from one .c file into another goes to its own folder or to a
-- lower layer, and no files call each other in a circle.
--   lua5.4 tests/tools/layers.lua BUILD_DIR [--report]
-- --report prints every cross-file call (who calls whom, through which names).
local build, report = arg[1], arg[2] == "--report"
assert(build, "usage: lua5.4 layers.lua BUILD_DIR [--report]")

-- lowest first; a layer may call itself and the layers before it
local order = { "base", "sched", "runtime", "prims", "http", "embed", "cli" }
local rank = {}
for i, l in ipairs(order) do rank[l] = i end
-- server/ uses base only, and only cli/ and embed/ may call it
local may_call = { server = { base = true, server = true } }

local function layer_may_call(from, to)
  if from == to then return true end
  if may_call[from] then return may_call[from][to] or false end
  if to == "server" then return from == "embed" or from == "cli" end
  return rank[to] ~= nil and rank[from] ~= nil and rank[to] < rank[from]
end

local objs = {}
local p = io.popen("find '" .. build .. "/CMakeFiles/lessonrun_objs.dir/core' '"
  .. build .. "/CMakeFiles/lessonrun_exe.dir/core' -name '*.c.o' | sort")
-- objects whose source is gone (a file moved or removed) stay in a build
-- folder: only those of sources that exist now count
local src = (arg[0]:match("^(.*)/tests/tools/[^/]*$") or ".") .. "/core/"
for line in p:lines() do
  local rel = line:match("/core/([^/]+/[^/]+%.c)%.o$")
  local f = rel and io.open(src .. rel)
  if f then f:close(); objs[#objs + 1] = line end
end
p:close()
assert(#objs > 0, "no objects under " .. build .. " (build it first)")

local function unit_of(path)  -- ".../core/sched/task.c.o" -> "sched/task.c", "sched"
  local folder, file = path:match("/core/([^/]+)/([^/]+)%.o$")
  return folder .. "/" .. file, folder
end

local defined, undef, folder_of = {}, {}, {}
for _, o in ipairs(objs) do
  local unit, folder = unit_of(o)
  folder_of[unit], undef[unit] = folder, {}
  local nm = io.popen("nm '" .. o .. "'")
  for line in nm:lines() do
    local kind, sym = line:match("^%x*%s+(%a)%s+(%S+)$")
    if kind == "U" then undef[unit][#undef[unit] + 1] = sym
    elseif kind and kind:match("[TDRBC]") then defined[sym] = unit end
  end
  nm:close()
end

local edges, bad = {}, {}
for unit, syms in pairs(undef) do
  edges[unit] = {}
  for _, sym in ipairs(syms) do
    local to = defined[sym]
    if to and to ~= unit then
      edges[unit][to] = edges[unit][to] or {}
      table.insert(edges[unit][to], sym)
      if not layer_may_call(folder_of[unit], folder_of[to]) then
        bad[#bad + 1] = string.format("%s calls up into %s: %s", unit, to, sym)
      end
    end
  end
end

-- circles of files (depth-first search; each circle reported once per entry)
local state, stack, circles = {}, {}, {}
local function visit(u)
  state[u] = "open"; stack[#stack + 1] = u
  for v in pairs(edges[u] or {}) do
    if state[v] == "open" then
      local i = #stack
      while stack[i] ~= v do i = i - 1 end
      circles[#circles + 1] = table.concat(stack, " -> ", i) .. " -> " .. v
    elseif not state[v] then visit(v) end
  end
  stack[#stack] = nil; state[u] = "done"
end
local units = {}
for u in pairs(undef) do units[#units + 1] = u end
table.sort(units)
for _, u in ipairs(units) do if not state[u] then visit(u) end end

if report then
  for _, u in ipairs(units) do
    local tos = {}
    for to, syms in pairs(edges[u]) do tos[#tos + 1] = to .. " (" .. table.concat(syms, ", ") .. ")" end
    table.sort(tos)
    print(u .. " -> " .. table.concat(tos, "; "))
  end
end
table.sort(bad)
for _, b in ipairs(bad) do print("layers: " .. b) end
for _, c in ipairs(circles) do print("layers: circle: " .. c) end
if #bad > 0 or #circles > 0 then
  print(string.format("layers: %d upward calls, %d circles", #bad, #circles))
  os.exit(1)
end
print(string.format("layers: %d files, no upward call, no circle", #units))
