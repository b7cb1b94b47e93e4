-- The composed API: gather, settle and run are built here, in Lua, from the
-- C core's spawn / waitall / results (the hot paths stay in C).
local core = require "lessonrun.core"

local spawn, waitall, results, istask = core.spawn, core.waitall, core.results, core.istask
local select, type, error, pcall = select, type, error, pcall

local M = {
  version = core.version,
  sleep = core.sleep,                   -- async: parks this task only
  blocking_sleep = core.blocking_sleep, -- blocks everything (the lesson's "don't")
  now = core.now,
  spawn = core.spawn,
  current = core.current,
  iscancelled = core.iscancelled,
  errorkind = core.errorkind,
  serve = core.serve,                   -- the built-in latency server (core/server/)
  fetch = core.fetch,                   -- async HTTP: parks this task only
  blocking_fetch = core.blocking_fetch, -- blocks everything (the lesson's "requests")
  fetch_config = core.fetch_config,
  json_decode = core.json_decode,
  json_encode = core.json_encode,
  semaphore = core.semaphore,
  isatty = core.isatty,
  termwidth = core.termwidth,
  blocking_warnings = core.blocking_warnings,
  pending_warnings = core.pending_warnings,  -- tasks left running at exit
  offload = core.offload,               -- run a function on a worker thread
}

M.json_null = core.json_null  -- (not decoded here: jansson loads on first use)

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- What a call could have returned, where a function was expected: f(x)
-- written for f, x (spawn(task("A", 1))), so the error says what was meant.
local looks_called = { ["nil"] = true, boolean = true, number = true, string = true, table = true }

-- "function expected, got T", and the hint `usage` when the value looks
-- like a call's result (got is "no value" when the argument is missing).
local function fn_expected(v, got, usage)
  got = got or type(v)
  if looks_called[type(v)] then
    return ("function expected, got %s; pass the function and its arguments: %s"):format(got, usage)
  end
  return "function expected, got " .. got
end

-- gather's or settle's error for argument (or list item) i, a
local function bad_item(fname, i, a, listform, itself)
  local where = listform and ("item " .. i .. " of the list") or ("argument #" .. i)
  local why = itself and "a task cannot wait for itself" or "function or task expected, got " .. type(a)
  if not itself and looks_called[type(a)] then
    why = ("%s; pass tasks or functions, not what they return: %s(%s)"):format(why, fname,
      listform and "{spawn(f, a), g}" or "spawn(f, a), g")
  end
  return ("bad %s to '%s' (%s)"):format(where, fname, why)
end

-- Turn gather's arguments (functions and/or tasks, or one list of them) into
-- a list of tasks.  Returns list, n, and whether the list form was used.
local function tasks_of(fname, ...)
  local n = select("#", ...)
  local args, listform = { ... }, false
  if n == 1 and type(args[1]) == "table" and not istask(args[1]) and not callable(args[1]) then
    args, listform = args[1], true
    n = #args
  end
  local me, all_tasks = core.current(), true
  for i = 1, n do  -- check them all before starting any (one look at each: 1M of them miss the cache)
    local a = args[i]
    local task = istask(a)
    local itself = a == me and me ~= nil
    if itself or (not task and not callable(a)) then
      error(bad_item(fname, i, a, listform, itself), 3)  -- (a message only here: 1M items make no garbage)
    end
    all_tasks = all_tasks and task
  end
  if all_tasks and listform then return args, n, listform end  -- a list of tasks as it is
  local list = {}
  for i = 1, n do
    local a = args[i]
    list[i] = istask(a) and a or spawn(a)
  end
  return list, n, listform
end

local function cancel_all(list, n, except)
  for i = 1, n do
    if i ~= except then list[i]:cancel() end
  end
end

-- Wait for the children; if the waiting task is cancelled (or the wait
-- fails), they are cancelled too: no child outlives its gather.
local function wait_children(list, n, failfast)
  local ok, failed = pcall(waitall, list, n, failfast)
  if not ok then
    cancel_all(list, n)
    error(failed, 0)
  end
  return failed
end

--- gather(f1, f2, ... | {f1, f2, ...}) -> r1, r2, ... | {r1, r2, ...}
-- Runs functions (as new tasks) and/or waits for tasks, all at once; returns
-- the first result of each, in argument order.  Fail-fast: when one fails,
-- the others are cancelled and its error is raised (its traceback kept).  If
-- the task calling gather is cancelled, all the children are cancelled too.
function M.gather(...)
  local list, n, listform = tasks_of("gather", ...)
  local failed = wait_children(list, n, true)
  if failed then
    cancel_all(list, n, failed)
    core.reraise(list[failed])
  end
  local r = results(list, n)
  if listform then return r end
  return table.unpack(r, 1, n)
end

--- settle(...) -> outcome, ... | {outcome, ...}
-- Like gather, but waits for every child whatever happens and never raises
-- for them: each outcome is {ok=true, value=v} or {ok=false, error=e,
-- cancelled=bool, traceback=string}.
function M.settle(...)
  local list, n, listform = tasks_of("settle", ...)
  wait_children(list, n, false)
  local out = {}
  for i = 1, n do
    local t = list[i]
    if t:state() == "done" then
      out[i] = { ok = true, value = (t:result()) }
    else
      local e = t:error()
      out[i] = { ok = false, error = e, cancelled = core.iscancelled(e), traceback = t:traceback() }
    end
  end
  if listform then return out end
  return table.unpack(out, 1, n)
end

--- timeout(seconds, fn, ...) -> fn's results, if it ends within seconds
-- fn runs as a child task; when the time is up it is cancelled (whatever it
-- waits on is undone), allowed to unwind, and a {kind="timeout"} error is
-- raised here.  Scopes nest: the inner deadline fires first, and catching
-- it does not lose the outer one.  If the caller is cancelled, so is fn, and
-- the cancellation (not a timeout) goes on.
function M.timeout(seconds, ...)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    local got = type(seconds) ~= "number" and type(seconds) or seconds ~= seconds and "nan" or tostring(seconds)
    error(("bad argument #1 to 'timeout' (seconds must be a number >= 0, got %s)"):format(got), 2)
  end
  local fn = ...
  if not callable(fn) then
    local msg = fn_expected(fn, select("#", ...) == 0 and "no value", "timeout(s, f, a), not timeout(s, f(a))")
    error(("bad argument #2 to 'timeout' (%s)"):format(msg), 2)
  end
  local child = spawn(...)
  local ok, finished = pcall(core.wait_for, child, seconds)
  if not ok then  -- we were cancelled (or misused): take the child with us
    child:cancel()
    error(finished, 0)
  end
  if finished then return child:wait() end
  child:cancel()
  pcall(child.wait, child)  -- let it run its cleanups
  local me = core.current()
  if me and me:cancelling() then core.sleep(0) end  -- our own cancellation wins
  error(core.error("timeout", ("timeout: gave up after %g seconds"):format(seconds)), 2)
end

--- run(fn, ...) -> fn's results
-- Runs fn as the root task and drives the loop until it ends (for a stock
-- lua5.4 or any plain Lua code).  Inside a task it simply calls fn.
function M.run(...)
  local fn = ...
  if not callable(fn) then
    local msg = fn_expected(fn, select("#", ...) == 0 and "no value", "run(f, a), not run(f(a))")
    error(("bad argument #1 to 'run' (%s)"):format(msg), 2)
  end
  if core.current() then return fn(select(2, ...)) end
  return spawn(...):wait()
end

--- sem:with(fn, ...) -> fn's results, run while holding one of sem's slots.
-- The slot is given back however fn ends: return, error or cancellation
-- (like Python's `async with sem:`).
local Semaphore = core.semaphore_methods()
function Semaphore:with(...)
  local fn = ...
  if not callable(fn) then
    local msg = fn_expected(fn, select("#", ...) == 0 and "no value", "sem:with(f, a), not sem:with(f(a))")
    error(("bad argument #1 to 'with' (%s)"):format(msg), 2)
  end
  local _ <close> = self:acquire()
  return fn(select(2, ...))
end

--- fetch_all(urls [, opts]) -> {response, ...} in the order of urls
-- Fetches them all with at most opts.limit (default 10) in flight; the other
-- opts go to each fetch, and opts.progress(done, total) is called as each
-- one completes.  Fail-fast like gather.  Every argument is checked before
-- anything is fetched, and misuse is blamed on fetch_all at the caller's line.
local function fetch_all_args(urls, opts)
  if type(urls) ~= "table" then
    return ("bad argument #1 to 'fetch_all' (table of URLs expected, got %s)"):format(type(urls))
  end
  for i = 1, #urls do
    if type(urls[i]) ~= "string" then
      return ("bad argument #1 to 'fetch_all' (item %d: string expected, got %s)"):format(i, type(urls[i]))
    end
  end
  if opts ~= nil and type(opts) ~= "table" then
    return ("bad argument #2 to 'fetch_all' (table expected, got %s)"):format(type(opts))
  end
  local limit, progress, fopts = 10, nil, {}
  for k, v in pairs(opts or {}) do
    if k == "limit" then limit = v elseif k == "progress" then progress = v else fopts[k] = v end
  end
  limit = math.type(limit) and math.tointeger(limit) or limit  -- 2.0 is 2, as lauxlib takes it
  if math.type(limit) ~= "integer" or limit < 1 then
    return "bad argument #2 to 'fetch_all' (limit must be an integer >= 1)"
  end
  if progress ~= nil and not callable(progress) then
    return ("bad argument #2 to 'fetch_all' (option 'progress' must be a function, got %s)"):format(type(progress))
  end
  local ok, err = pcall(core.fetch_all_check, fopts, urls)  -- what fetch would say, naming fetch_all
  if not ok then return err end
  return nil, limit, progress, fopts
end

function M.fetch_all(urls, opts)
  local bad, limit, progress, fopts = fetch_all_args(urls, opts)
  if bad then error(bad, 2) end
  -- `limit` workers, each taking the next URL: a task per worker rather than
  -- per URL, so memory follows the limit, not the number of URLs
  local fetch, n, nexti, done, out = core.fetch, #urls, 0, 0, {}
  local function worker()
    while nexti < n do
      nexti = nexti + 1
      local i = nexti
      out[i] = fetch(urls[i], fopts)
      done = done + 1
      if progress then progress(done, n) end
    end
  end
  local workers = {}  -- named, as their tracebacks would otherwise name this file
  for w = 1, math.min(limit, n) do workers[w] = spawn(worker):name("fetch_all's worker " .. w) end
  M.gather(workers)
  return out
end

return M
