-- Small files and short functions (core/README.md): no core/*/*.c file over
-- 600 lines, no function over 80 (flat tables, `x[] = {...}`, are not counted).
--   lua5.4 tests/tools/sizes.lua [MAX_FILE MAX_FUNCTION]
local max_file, max_fn = tonumber(arg[1]) or 600, tonumber(arg[2]) or 80
local root = arg[0]:match("^(.*)/tests/tools/[^/]*$") or "."
local bad, files = {}, 0

local p = io.popen("find '" .. root .. "/core' -name '*.c' | sort")
for path in p:lines() do
  files = files + 1
  local depth, start, head, n, table_init = 0, nil, nil, 0, false
  for line in io.lines(path) do
    n = n + 1
    -- strings, characters and // comments cannot open or close a block
    local code = line:gsub('\\.', ''):gsub('"[^"]*"', '""'):gsub("'[^']*'", "''"):gsub("//.*", "")
    if depth == 0 and not head and code:match("^[%a_]") then head = line end
    for c in code:gmatch("[{}]") do
      if c == "{" then
        if depth == 0 then start, table_init = n, code:match("=%s*{") ~= nil end
        depth = depth + 1
      else
        depth = depth - 1
        if depth == 0 and start then
          if n - start > max_fn and not table_init then
            bad[#bad + 1] = ("%s:%d: a function of %d lines: %s"):format(path, start, n - start, head or "?")
          end
          start, head = nil, nil
        end
      end
    end
    if depth == 0 and code:match(";%s*$") then head = nil end
  end
  if n > max_file then bad[#bad + 1] = ("%s: %d lines"):format(path, n) end
end
p:close()
assert(files > 0, "no core/*.c under " .. root)
for _, b in ipairs(bad) do print("sizes: " .. b) end
if #bad > 0 then os.exit(1) end
print(("sizes: %d files, none over %d lines, no function over %d"):format(files, max_file, max_fn))
