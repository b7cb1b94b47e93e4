-- Tracebacks shown to the user start at the user's code: the frames of
-- lessonrun's own Lua files (gather, fetch_all, timeout... in
-- lessonrun/api.lua) and the C functions they call are left out, and a
-- child task that ran only lessonrun's code adds no section of its own.
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local test, ok, match = h.test, h.ok, h.match
local exe = arg[-1]
if exe:sub(1, 1) ~= "/" then exe = os.getenv("PWD") .. "/" .. exe end

-- Runs `text` as a script file named tb_<name>.lua (or at the relative path
-- `file`); returns its output (both streams).
local function script(name, text, file)
  local dir = os.tmpname()
  os.remove(dir)
  file = file or ("tb_" .. name .. ".lua")
  local path = dir .. "/" .. file
  assert(os.execute(("mkdir -p %q"):format(path:match("^(.*)/"))))
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  -- (run from its folder, so that the traceback names it as the user typed it)
  local p = assert(io.popen(("cd %q && %q --no-blocking-warnings %q 2>&1"):format(dir, exe, file)))
  local out = p:read("a")
  p:close()
  assert(os.execute(("rm -r %q"):format(dir)))
  return out
end

-- none of lessonrun's own frames, nor the C frames they called
local function clean(tb, what)
  ok(not tb:find("lessonrun/api.lua", 1, true), what .. ": no frame of lessonrun/api.lua in\n" .. tb)
  ok(not tb:find("[C]: in ?", 1, true), what .. ": no '[C]: in ?' in\n" .. tb)
  ok(not tb:find("reraise", 1, true), what .. ": no reraise frame in\n" .. tb)
end

-- The first frame under each "stack traceback of ..." heading.
local function first_frames(tb)
  local out = {}
  for frame in tb:gmatch("stack traceback of [^\n]*:\n\t([^\n]*)") do out[#out + 1] = frame end
  return out
end

test("gather with a failing child: the child's and the script's lines only", function()
  local out = script("gather", [[
local function child()
  sleep(0.01)
  error("boom")
end
local function main()
  gather(child, function() sleep(1) end)
end
main()
]])
  match(out, "tb_gather%.lua:3: boom")
  clean(out, "gather")
  match(out, "stack traceback of task #%d+ %(tb_gather%.lua:1%):\n\t%[C%]: in function 'error'\n\ttb_gather%.lua:3:",
        "the child's traceback")
  match(out, "which re%-raised it:\n\ttb_gather%.lua:6: in local 'main'\n\ttb_gather%.lua:8: in main chunk",
        "the gathering task's starts at the line calling gather")
end)

test("fetch_all with a bad item: the script's line first", function()
  local out = script("fa_item", [[
local function main()
  fetch_all({"http://127.0.0.1:1/", 42})
end
main()
]])
  match(out, "tb_fa_item%.lua:2: bad argument #1 to 'fetch_all' %(item 2: string expected, got number%)")
  clean(out, "fetch_all bad item")
  match(out, "stack traceback of task #1 %(tb_fa_item%.lua%):\n\ttb_fa_item%.lua:2: in local 'main'")
end)

test("fetch_all whose fetch fails: no section for its worker", function()
  local out = script("fa_fail", [[
local function main()
  fetch_all({"http://127.0.0.1:1/"})
end
main()
]])
  match(out, "fetch: connect:")
  clean(out, "fetch_all failing fetch")
  ok(not out:find("worker", 1, true), "the worker, only lessonrun's code, adds nothing:\n" .. out)
  match(out, "stack traceback of task #1 %(tb_fa_fail%.lua%):\n\ttb_fa_fail%.lua:2: in local 'main'\n\ttb_fa_fail%.lua:4:")
end)

test("the user's function called from lessonrun's code keeps its frame", function()
  local out = script("progress", [[
local srv = serve({port = 0})
fetch_all({srv.url .. "/get"}, {progress = function(done, n)
  error("progress " .. done)
end})
]])
  match(out, "tb_progress%.lua:3: progress 1")
  clean(out, "progress")
  match(out, "stack traceback of fetch_all's worker 1:\n\t%[C%]: in function 'error'\n\ttb_progress%.lua:3: in ",
        "the worker is named, and its traceback shows the callback")
  match(out, "which re%-raised it:\n\ttb_progress%.lua:2: in main chunk")
end)

test("timeout: the traceback starts at the line calling it", function()
  local out = script("timeout", [[
local function main()
  timeout(0.01, sleep, 1)
end
main()
]])
  match(out, "timeout: gave up after 0.01 seconds")
  clean(out, "timeout")
  h.eq(first_frames(out), { "tb_timeout.lua:2: in local 'main'" })
end)

test("a task's traceback (settle, t:traceback()) is cleaned the same way", function()
  local line = debug.getinfo(1, "l").currentline
  local outcome = settle(function() local r = gather(function() error("inner") end) return r end)
  clean(outcome.traceback, "settle's traceback")
  local frames = first_frames(outcome.traceback)
  h.eq(#frames, 2, "the child's and the gatherer's sections")
  match(frames[1], "^%[C%]: in function 'error'")
  match(frames[2], "test_tracebacks%.lua:" .. line + 1 .. ":", "the gatherer's starts at its call of gather")
  -- a tail call to gather leaves the gatherer no frame of the user's: only the child's section
  local tail = settle(function() return gather(function() error("inner") end) end)
  clean(tail.traceback, "a tail call's traceback")
  ok(not tail.traceback:find("tail calls", 1, true), "no '(...tail calls...)' line:\n" .. tail.traceback)
  h.eq(#first_frames(tail.traceback), 1, "the child's section only")
  local with = settle(function() semaphore(1):with(function() error("held") end) end)
  clean(with.traceback, "sem:with's traceback")
  match(with.traceback, "\n\t%[C%]: in function 'error'\n\t[^\n]*test_tracebacks%.lua:%d+: in local 'fn'\n\t[^\n]*"
        .. "test_tracebacks%.lua:%d+: in function <", "the function given to with, then with's caller")
end)

test("a user's file whose path only ends like lessonrun's keeps its frames", function()
  local out = script(nil, [[
local function main() gather(function() error("mine") end) end
main()
]], "mylessonrun/api.lua")
  match(out, "mylessonrun/api%.lua:1: mine")
  match(out, "which re%-raised it:\n\t[^\n]*mylessonrun/api%.lua:1: in local 'main'")
end)

test("offload: the worker's traceback ends at the user's function", function()
  local err = select(2, pcall(offload, function(n) error("bad " .. n) end, 3))
  match(err, "bad 3")
  match(err, "stack traceback:\n\t%[C%]: in function 'error'\n\t[^\n]*test_tracebacks%.lua:%d+: in function <[^\n]*>$",
        "no '[C]: in ?' for the worker's own C below it")
end)

h.done()
