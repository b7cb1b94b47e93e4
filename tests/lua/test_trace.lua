-- Tracing: trace(true) records the tasks' transitions, trace_data() returns
-- them as columns, and lessonrun.timeline turns them into rows of segments,
-- a terminal chart, Chrome trace JSON, SVG and a summary.  The checks read
-- the trace DATA (rows and segments), not the drawn chart, except for a few
-- sanity checks of the chart itself.  Durations are small (0.1/0.2/0.3 s) and
-- the bounds generous: they tell "one after another" from "at the same time".
local h = dofile(arg[0]:match("^(.-)[^/]*$") .. "harness.lua")
local test, eq, ok, near, match = h.test, h.eq, h.ok, h.near, h.match
local core = require "lessonrun.core"
local tl = require "lessonrun.timeline"

-- Runs fn with tracing on and returns (data, rows) for what happened meanwhile
-- only: every test shares this runtime and its trace (there is no reset), so
-- the events recorded before are cut off.  Tasks spawned earlier (the test
-- itself, the harness's watchdog) have no spawn event here, so rows() leaves
-- them out.
local function traced(fn)
  local n0 = #core.trace_data().t
  local was = core.trace(true)
  local okay, err = pcall(fn)
  core.trace(was)
  if not okay then error(err, 0) end
  local d = core.trace_data()
  local s = { t = {}, task = {}, kind = {}, aux = {}, names = d.names, now = d.now, virtual = d.virtual }
  for i = n0 + 1, #d.t do
    local j = i - n0
    s.t[j], s.task[j], s.kind[j], s.aux[j] = d.t[i], d.task[i], d.kind[i], d.aux[i]
  end
  return s, tl.rows(s)
end

-- the lessons' two shapes, with short durations
local function sync_shape()
  local function task(name, duration) blocking_sleep(duration) end
  local root = spawn(function()
    spawn(task, "A", 0.1):wait()
    spawn(task, "B", 0.2):wait()
    spawn(task, "C", 0.3):wait()
  end)
  core.trace_name(root:id(), "root")
  return root
end

local function async_shape()
  local function task(name, duration) sleep(duration) end
  local root = spawn(function()
    gather(spawn(task, "A", 0.1), spawn(task, "B", 0.2), spawn(task, "C", 0.3))
  end)
  core.trace_name(root:id(), "root")  -- short: file:line would be a long path
  return root
end

-- run the sync shape without the harness's watchdog (an overdue sleeper while
-- blocking_sleep runs) setting off a blocking-call warning
local function run_sync()
  local was = blocking_warnings(false)
  local root = sync_shape()
  root:wait()
  blocking_warnings(was)
  return root
end

-- total length of a task's segments of this kind (and, if given, what)
local function time_in(task, kind, what)
  local sum = 0
  for _, s in ipairs(task.segs) do
    if s[3] == kind and (what == nil or s[4] == what) then sum = sum + (s[2] - s[1]) end
  end
  return sum
end

local function count(task, kind)
  local n = 0
  for _, s in ipairs(task.segs) do if s[3] == kind then n = n + 1 end end
  return n
end

local function by_name(rows)
  local m = {}
  for _, t in ipairs(rows.tasks) do m[t.name] = t end
  return m
end

-- Each shape runs once, traced, and the tests that look at it share the result
-- (it keeps the file fast).
local shapes = {}
local function traced_sync()
  if not shapes.sync then
    local root
    local d, rows = traced(function() root = run_sync() end)
    shapes.sync = { d, rows, root, current():id() }
  end
  return table.unpack(shapes.sync)
end
local function traced_async()
  if not shapes.async then
    local root
    local d, rows = traced(function() root = async_shape(); root:wait() end)
    shapes.async = { d, rows, root, current():id() }
  end
  return table.unpack(shapes.async)
end

local DUR = { A = 0.1, B = 0.2, C = 0.3 }
local NAMES = { A = 'task("A", 0.1)', B = 'task("B", 0.2)', C = 'task("C", 0.3)' }

-- ---- trace_data ---------------------------------------------------------------

test("trace(on) returns the old setting; trace_data() has the documented columns", function()
  local was = core.trace(true)
  eq(core.trace(was), true, "trace(true) took effect")
  eq(was, false, "tracing is off by default")
  local d = core.trace_data()
  for _, k in ipairs { "t", "task", "kind", "aux", "names" } do eq(type(d[k]), "table", k) end
  eq(#d.t, #d.task); eq(#d.t, #d.kind); eq(#d.t, #d.aux)
  eq(type(d.now), "number")
  eq(d.virtual, false)
end)

test("tracing off records nothing", function()
  core.trace(false)
  local n0 = #core.trace_data().t
  gather(function() sleep(0.01) end, function() sleep(0) end)
  eq(#core.trace_data().t, n0)
end)

test("events: kinds, time order, and what a park or block waits on", function()
  local kinds = { spawn = true, run = true, stop = true, park = true, wake = true, ["end"] = true,
                  block = true, unblock = true }
  local seen = {}
  for _, d in ipairs { (traced_sync()), (traced_async()) } do
    ok(#d.t > 0, "events recorded")
    for i = 1, #d.t do
      ok(kinds[d.kind[i]], "unknown kind " .. tostring(d.kind[i]))
      seen[d.kind[i]] = true
      if i > 1 then ok(d.t[i] >= d.t[i - 1], ("event %d goes back in time"):format(i)) end
      ok(math.type(d.task[i]) == "integer" and d.task[i] > 0, "task ids are integers")
      if d.kind[i] == "park" then
        ok(({ sleep = true, gather = true, wait = true })[d.aux[i]], "park on " .. tostring(d.aux[i]))
      elseif d.kind[i] == "block" or d.kind[i] == "unblock" then
        eq(d.aux[i], "blocking_sleep")
      elseif d.kind[i] == "end" then
        eq(d.aux[i], "done")
      elseif d.kind[i] == "spawn" then
        ok(math.type(d.aux[i]) == "integer", "a spawn's aux is the parent's id")
      end
    end
    ok(d.t[#d.t] <= d.now, "now is after the last event")
  end
  for k in pairs(kinds) do ok(seen[k], "no " .. k .. " event") end
end)

-- ---- rows: the sync shape ------------------------------------------------------

test("sync shape: a staircase of blocking calls, the root waits on each task", function()
  local _, rows, root, spawner = traced_sync()
  eq(#rows.tasks, 4, "the root and three tasks")
  local r, t = rows.tasks[1], by_name(rows)
  eq(r.id, root:id())
  eq(r.name, "root", "trace_name(id, name) renames a row")
  eq(r.parent, spawner, "the root's parent is the task that spawned it")
  for _, k in ipairs { "A", "B", "C" } do
    local task = t[NAMES[k]]
    ok(task, "a row named " .. NAMES[k] .. " in " .. h.show(by_name(rows)))
    eq(task.parent, r.id, k .. "'s parent")
    eq(task.state, "done", k .. "'s state")
    local block = time_in(task, "block", "blocking_sleep")
    near(block, DUR[k] - 1e-3, DUR[k] + 0.15, k .. " blocked for its duration")
    eq(count(task, "block"), 1, k .. " has one block segment")
    -- (the trace's own timestamps, not a share of wall time a busy machine can change)
    for _, seg in ipairs(task.segs) do
      ok(seg[1] >= task.spawn and seg[2] <= task.finish, k .. ": its segments lie within its life")
      ok(seg[3] == "block" or seg[3] == "run" or seg[3] == "ready",
         k .. ": besides the block it only runs or is ready, not " .. tostring(seg[3]))
    end
    eq(count(task, "wait"), 0, k .. " never parks")
  end
  local A, B, C = t[NAMES.A], t[NAMES.B], t[NAMES.C]
  ok(A.finish <= B.spawn, "B starts after A finished")
  ok(B.finish <= C.spawn, "C starts after B finished")
  ok(A.spawn >= r.spawn and C.finish <= r.finish, "inside the root's life")
  -- the root spends the blocking calls waiting for its tasks
  eq(count(r, "block"), 0)
  ok(time_in(r, "wait", "wait") >= 0.5, "the root waits (on wait) about 0.6 s: " .. time_in(r, "wait", "wait"))
  for _, s in ipairs(r.segs) do
    if s[3] == "wait" then eq(s[4], "wait", "the root parks only on wait") end
  end
  local blocks = time_in(A, "block") + time_in(B, "block") + time_in(C, "block")
  ok(r.finish - r.spawn >= blocks, ("the root's life (%.3f s) holds the three blocks one after another (%.3f s)"):format(
    r.finish - r.spawn, blocks))
end)

-- ---- rows: the async shape -----------------------------------------------------

test("async shape: three overlapping sleeps, the root waits on gather", function()
  local _, rows, root = traced_async()
  eq(#rows.tasks, 4, "the root and three tasks")
  local r, t = rows.tasks[1], by_name(rows)
  eq(r.id, root:id())
  for _, k in ipairs { "A", "B", "C" } do
    local task = t[NAMES[k]]
    ok(task, "a row named " .. NAMES[k] .. " in " .. h.show(by_name(rows)))
    eq(task.parent, r.id)
    eq(task.state, "done")
    near(time_in(task, "wait", "sleep"), DUR[k] - 1e-3, DUR[k] + 0.15, k .. " sleeps for its duration")
    eq(count(task, "wait"), 1, k .. " parks once")
    eq(count(task, "block"), 0, k .. " never blocks")
  end
  local A, B, C = t[NAMES.A], t[NAMES.B], t[NAMES.C]
  local last_spawn = math.max(A.spawn, B.spawn, C.spawn)
  ok(last_spawn < math.min(A.finish, B.finish, C.finish), "all three started before any finished")
  ok(A.finish < B.finish and B.finish < C.finish, "they finish in the order of their sleeps")
  -- overlap, from the trace's own timestamps: one instant when all three slept
  local function sleep_seg(task)
    for _, seg in ipairs(task.segs) do if seg[3] == "wait" and seg[4] == "sleep" then return seg end end
  end
  local sa, sb, sc = sleep_seg(A), sleep_seg(B), sleep_seg(C)
  ok(math.max(sa[1], sb[1], sc[1]) < math.min(sa[2], sb[2], sc[2]), "the three sleeps overlap: " ..
     h.show({ sa[1], sa[2], sb[1], sb[2], sc[1], sc[2] }))
  local g
  for _, seg in ipairs(r.segs) do if seg[3] == "wait" and seg[4] == "gather" then g = g or seg end end
  ok(g and g[1] <= sa[2] and g[2] >= sc[2], "the root waits on gather from before the first sleep ends until the last does")
  ok(time_in(r, "wait", "gather") >= DUR.C - 1e-3, "the root waits on gather at least as long as C sleeps")
  eq(count(r, "block"), 0)
end)

test("a task waiting for offload parks on offload; sleep(0) parks on yield", function()
  local function crunch(n) local s = 0 for i = 1, n do s = s + i end return s end
  local function yielder() sleep(0) end
  local _, rows = traced(function()
    gather(spawn(offload, crunch, 100000), spawn(yielder))
  end)
  local t = by_name(rows)
  local off = t["function(function, 100000)"] or t["offload(function, 100000)"]
  ok(off, "the offloading task's row, in " .. h.show(t))
  ok(time_in(off, "wait", "offload") > 0, "a wait on offload")
  eq(count(off, "wait"), 1)
  ok(t["yielder()"], "the yielding task's row")
  eq(count(t["yielder()"], "wait"), 1, "sleep(0) parks once")
  for _, s in ipairs(t["yielder()"].segs) do
    if s[3] == "wait" then eq(s[4], "yield") end
  end
end)

-- ---- names ------------------------------------------------------------------------

test("names: a local function and its arguments, else where it was defined", function()
  local function f() end
  local anon = function() end
  local line = debug.getinfo(anon, "S").linedefined
  local d, rows = traced(function()
    spawn(f, "a long string argument", 1, 2.5, true):wait()
    spawn(f, "short", false, nil):wait()
    spawn(anon):wait()
    spawn(function() end):wait()
  end)
  eq(#rows.tasks, 4)
  eq(rows.tasks[1].name, 'f("a long str..", 1, 2.5, ...)')
  eq(rows.tasks[2].name, 'f("short", false, nil)')
  eq(rows.tasks[3].name, "anon()", "a local of the caller")
  match(rows.tasks[4].name, "test_trace%.lua:%d+%(%)$", "an anonymous function: file:line()")
  ok(line > 0)
  eq(d.names[rows.tasks[1].id], rows.tasks[1].name, "names = {[id] = name}")
end)

test("names of gather's function arguments are not gather's own locals", function()
  local function work() sleep(0.01) end
  local line = debug.getinfo(work, "S").linedefined
  local _, rows = traced(function()
    gather(work, work)
    gather({ work })
  end)
  eq(#rows.tasks, 3)
  for _, task in ipairs(rows.tasks) do
    ok(task.name == "work()" or task.name:find("test_trace%.lua:" .. line .. "%(%)$"),
       "expected work() or test_trace.lua:" .. line .. "(), got " .. task.name)
  end
end)

-- ---- text -------------------------------------------------------------------------

local function ascii_only(s)
  for i = 1, #s do
    if s:byte(i) > 127 then return false, ("byte %d is 0x%02x in %q"):format(i, s:byte(i), s:sub(math.max(1, i - 20), i + 5)) end
  end
  return true
end

test("text: the names, an axis, a legend and the summary line", function()
  local _, rows = traced_async()
  for _, ascii in ipairs { true, false } do
    local s = tl.text(rows, { width = 80, ascii = ascii })
    for _, k in ipairs { "A", "B", "C" } do
      ok(s:find(NAMES[k], 1, true), NAMES[k] .. " in the chart:\n" .. s)
    end
    ok(s:find(ascii and "\n%s+%+%+?[-+]+\n" or "\n%s+└[─┬]+\n"), "an axis line:\n" .. s)
    ok(s:find("\n%s+0 +[%d.]+m?s"), "tick labels from 0:\n" .. s)
    match(s, "wall time [%d.]+ s, task time [%d.]+ s: concurrency [%d.]+x")
    local lines = 0
    for _ in s:gmatch("[^\n]+") do lines = lines + 1 end
    eq(lines, 4 + 2 + 1 + 1, "4 rows, axis and labels, legend, summary:\n" .. s)
  end
  local s = tl.text(rows, { width = 80, ascii = true })
  ok(ascii_only(s))
  ok(s:find(" |", 1, true) and s:find("%-"), "ascii glyphs")
  ok(not ascii_only(tl.text(rows, { width = 80 })), "the default is UTF-8 box drawing")
end)

test("text: ascii mode stays ASCII with long names and many tasks", function()
  local function a_task_with_a_long_name(i) sleep(0.001 * (i % 3)) end
  local _, rows = traced(function()
    local list = {}
    for i = 1, 40 do list[i] = spawn(a_task_with_a_long_name, i) end
    gather(list)
  end)
  eq(#rows.tasks, 40)
  ok(ascii_only(tl.text(rows, { width = 40, ascii = true })))
end)

-- A trace written by hand (rows() is a pure function of the columns): the
-- exact times make the segments exact.
local function fake(events, now)
  local d = { t = {}, task = {}, kind = {}, aux = {}, names = {}, now = now, virtual = true }
  for i, e in ipairs(events) do
    d.t[i], d.task[i], d.kind[i], d.aux[i] = e[1], e[2], e[3], e[4]
    if e[3] == "spawn" then d.names[e[2]] = e[5] end
  end
  return d
end

test("rows: exact segments from a hand-written trace", function()
  local r = tl.rows(fake({
    { 0.0, 1, "spawn", 0, "/some/dir/main.lua" }, { 0.0, 1, "run", 0 },
    { 0.0, 2, "spawn", 1, "child()" },
    { 0.1, 1, "park", "gather" }, { 0.1, 1, "stop", 0 },
    { 0.1, 2, "run", 0 }, { 0.2, 2, "park", "sleep" }, { 0.2, 2, "stop", 0 },
    { 1.2, 2, "wake", 0 }, { 1.3, 2, "run", 0 }, { 1.5, 2, "block", "blocking_sleep" },
    { 2.5, 2, "unblock", "blocking_sleep" }, { 2.6, 2, "stop", 0 }, { 2.6, 2, "end", "failed" },
    { 2.6, 1, "wake", 0 }, { 2.7, 1, "run", 0 }, { 3.0, 1, "stop", 0 }, { 3.0, 1, "end", "done" },
  }, 3.0))
  eq(r.wall, 3.0)
  eq(#r.tasks, 2)
  local main, child = r.tasks[1], r.tasks[2]
  eq(main.name, "main.lua", "a root is named by its file name")
  eq({ main.id, main.parent, main.spawn, main.finish, main.state }, { 1, 0, 0.0, 3.0, "done" })
  eq(main.segs, { { 0.0, 0.1, "run" }, { 0.1, 2.6, "wait", "gather" }, { 2.6, 2.7, "ready" }, { 2.7, 3.0, "run" } })
  eq({ child.name, child.parent, child.spawn, child.finish, child.state }, { "child()", 1, 0.0, 2.6, "failed" })
  eq(child.segs, {
    { 0.0, 0.1, "ready" }, { 0.1, 0.2, "run" }, { 0.2, 1.2, "wait", "sleep" }, { 1.2, 1.3, "ready" },
    { 1.3, 1.5, "run" }, { 1.5, 2.5, "block", "blocking_sleep" }, { 2.5, 2.6, "run" },
  })
  local wall, busy, conc = tl.summary(r)
  eq({ wall, busy, conc }, { 3.0, 2.6, 2.6 / 3.0 }, "the spawned task's time over the wall time")
end)

test("text: no chart line is wider than the width asked for", function()
  -- a 3 s run: the last tick label ("3s") lands one column past the axis
  local r = tl.rows(fake({
    { 0, 1, "spawn", 0, "x.lua" }, { 0, 1, "run", 0 }, { 3, 1, "stop", 0 }, { 3, 1, "end", "done" },
  }, 3))
  for _, width in ipairs { 60, 80, 120 } do
    for _, ascii in ipairs { true, false } do
      local s = tl.text(r, { width = width, ascii = ascii })
      local n = 0
      for l in s:gmatch("[^\n]+") do
        n = n + 1
        if not l:find("^wall time") then
          local len = utf8.len(l) or #l
          ok(len <= width, ("width %d, line %d is %d wide: %q"):format(width, n, len, l))
        end
      end
    end
  end
end)

-- ---- summary ------------------------------------------------------------------------

-- Runs code in a fresh lessonrun on the virtual clock (--virtual-time: sleeps
-- and blocking_sleep move it exactly, so the figures are exact whatever else
-- the machine does) and returns the summary of what was traced: wall, busy,
-- concurrency.  Tracing starts first, or after a while with mid_run.
local function summary_fresh(code, mid_run)
  local exe = arg[-1]
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write('local core = require "lessonrun.core"\n', mid_run and "sleep(0.5)\n" or "", 'core.trace(true)\n', code, '\n',
          'print(require("lessonrun.timeline").summary(require("lessonrun.timeline").rows(core.trace_data())))\n')
  f:close()
  local p = assert(io.popen(("'%s' --virtual-time --no-blocking-warnings '%s' 2>&1"):format(exe, tmp)))
  local out = p:read("a")
  p:close()
  os.remove(tmp)
  local w, b, c = out:match("^([%d.e+-]+)\t([%d.e+-]+)\t([%d.e+-]+)\n$")
  ok(w, "summary printed: " .. out)
  return tonumber(w), tonumber(b), tonumber(c)
end

local SYNC_SHAPE = [[
local function task(name, duration) blocking_sleep(duration) end
spawn(function()
  spawn(task, "A", 0.1):wait() spawn(task, "B", 0.2):wait() spawn(task, "C", 0.3):wait()
end):wait()]]
local ASYNC_SHAPE = [[
local function task(name, duration) sleep(duration) end
spawn(function()
  gather(spawn(task, "A", 0.1), spawn(task, "B", 0.2), spawn(task, "C", 0.3))
end):wait()]]

-- the virtual clock is exact; the slack is for the float sums only
local function exactly(v, want, msg) near(v, want - 1e-6, want + 1e-6, msg) end

test("summary: concurrency 1 for the sync shape, 2 for the async shape (fresh program)", function()
  local w, b, c = summary_fresh([[
local function task(name, duration) blocking_sleep(duration) end
spawn(task, "A", 0.1):wait() spawn(task, "B", 0.2):wait() spawn(task, "C", 0.3):wait()]])
  exactly(w, 0.6, "sync wall")
  exactly(b, 0.6, "sync task time")
  exactly(c, 1.0, "sync concurrency")
  w, b, c = summary_fresh([[
local function task(name, duration) sleep(duration) end
gather(spawn(task, "A", 0.1), spawn(task, "B", 0.2), spawn(task, "C", 0.3))]])
  exactly(w, 0.3, "async wall")
  exactly(b, 0.6, "async task time")
  exactly(c, 2.0, "async concurrency")
end)

-- Tracing turned on in the middle of a run, around a root task that spawns
-- the three: the figures are of the traced span, not of the runtime's age.
test("summary: sync 1x, async 2x when traced mid-run", function()
  local w, _, c = summary_fresh(SYNC_SHAPE, true)
  exactly(w, 0.6, "sync wall (the traced span, not the runtime's age)")
  exactly(c, 1.0, "sync concurrency")
  local b
  w, b, c = summary_fresh(ASYNC_SHAPE, true)
  exactly(w, 0.3, "async wall (the traced span, not the runtime's age)")
  exactly(b, 0.6, "async task time (the three tasks, not their root)")
  exactly(c, 2.0, "async concurrency")
end)

-- ---- Chrome trace JSON ------------------------------------------------------------------

-- Decodes chrome(rows) and checks the format; returns the decoded document.
local function check_chrome(rows)
  local text = tl.chrome(rows)
  local doc = json_decode(text)
  eq(type(doc), "table")
  local evs = doc.traceEvents
  eq(type(evs), "table", "traceEvents")
  ok(#evs > 0)
  local stacks, last, threads, nb = {}, {}, {}, 0
  for i, e in ipairs(evs) do
    local where = ("event %d %s"):format(i, json_encode(e))
    ok(({ B = true, E = true, M = true })[e.ph], where .. ": ph")
    eq(e.pid, 1, where .. ": pid")
    ok(math.type(e.tid) == "integer" or (type(e.tid) == "number" and e.tid % 1 == 0), where .. ": tid")
    if e.ph == "M" then
      eq(type(e.name), "string", where .. ": name")
      if e.name == "thread_name" then threads[e.tid] = e.args.name end
    else
      eq(type(e.ts), "number", where .. ": ts")
      eq(e.ts % 1, 0, where .. ": whole microseconds")
      ok(e.ts >= 0, where .. ": ts >= 0")
      ok(e.ts >= (last[e.tid] or 0), where .. ": ts goes back on its thread")
      last[e.tid] = e.ts
      local st = stacks[e.tid] or {}
      stacks[e.tid] = st
      if e.ph == "B" then
        eq(type(e.name), "string", where .. ": name")
        ok(threads[e.tid], where .. ": its thread was named first")
        st[#st + 1] = e
        nb = nb + 1
      else
        local b = table.remove(st)
        ok(b, where .. ": E without a B")
        ok(e.ts >= b.ts, where .. ": E before its B")
      end
    end
  end
  for tid, st in pairs(stacks) do eq(#st, 0, "unclosed B on thread " .. tid) end
  local segs = 0
  for _, task in ipairs(rows.tasks) do
    eq(threads[task.id], task.name, "thread name of task " .. task.id)
    segs = segs + #task.segs
  end
  eq(nb, segs, "one B/E pair per segment")
  -- integers in the text itself, not just after decoding
  ok(not text:find('"ts":%d+%.'), "ts written as integers")
  return doc
end

-- the B events' names on the thread of the task with this name
local function b_names(doc, rows, name)
  local id
  for _, t in ipairs(rows.tasks) do if t.name == name then id = t.id end end
  local names = {}
  for _, e in ipairs(doc.traceEvents) do
    if e.ph == "B" and e.tid == id then names[e.name] = true end
  end
  return names
end

test("chrome: the sync shape as valid, matched B/E pairs", function()
  local _, rows = traced_sync()
  local doc = check_chrome(rows)
  ok(b_names(doc, rows, NAMES.B).blocking_sleep, "B's blocking call is named")
  ok(b_names(doc, rows, rows.tasks[1].name)["wait: wait"], "the root's wait")
end)

test("chrome: the async shape as valid, matched B/E pairs", function()
  local _, rows = traced_async()
  local doc = check_chrome(rows)
  ok(b_names(doc, rows, NAMES.C)["wait: sleep"], "C's sleep is named")
  ok(b_names(doc, rows, rows.tasks[1].name)["wait: gather"], "the root's gather")
end)

test("svg: one self-contained document with the names", function()
  local _, rows = traced_async()
  local s = tl.svg(rows, { title = "a <title> & more" })
  match(s, "^<svg xmlns=\"http://www.w3.org/2000/svg\"")
  match(s, "</svg>$")
  ok(s:find("task(&quot;A&quot;, 0.1)", 1, true), "names are escaped")
  ok(s:find("a &lt;title&gt; &amp; more", 1, true), "the title is escaped")
end)

-- ---- many tasks ---------------------------------------------------------------------------

test("100,000 traced tasks: one spawn and one end event each", function()
  local N = 100000
  local n0 = #core.trace_data().t
  local t0 = now()
  local was = core.trace(true)
  local function work() sleep(0) return true end
  local fns = {}
  for i = 1, N do fns[i] = work end
  local r = gather(fns)
  core.trace(was)
  eq(#r, N)
  local d = core.trace_data()
  local spawns, ends, ids = 0, 0, {}
  for i = n0 + 1, #d.t do
    local k = d.kind[i]
    if k == "spawn" then
      spawns = spawns + 1
      ok(not ids[d.task[i]], "one spawn per task")
      ids[d.task[i]] = true
    elseif k == "end" then
      ends = ends + 1
    end
  end
  eq(spawns, N, "spawn events")
  eq(ends, N, "end events")
  ok(now() - t0 < 10, "took " .. (now() - t0) .. " s")
end, { timeout = 30 })

h.done()
