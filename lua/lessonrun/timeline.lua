-- Timelines: turn the trace (trace_data(): events as columns) into rows of
-- segments per task, then into a terminal chart, Chrome trace JSON or SVG.
local core = require "lessonrun.core"

local M = {}

-- Segment kinds, in the order a chart cell prefers them when several share it.
local PRIORITY = { block = 5, run = 4, ready = 3, wait = 2 }

--- rows(data) -> {tasks = {task...}, wall = seconds}
-- task = {id, name, parent, spawn, finish, state, segs = {{t0, t1, kind, what}}}
-- kind: "run" (its code runs), "block" (inside a blocking call: everything
-- stops), "ready" (could run, waits for its turn), "wait" (parked on `what`).
function M.rows(data)
  local tasks, byid = {}, {}
  local T, ID, K, AUX = data.t, data.task, data.kind, data.aux
  local function open(task, t, kind, what)
    task.cur = { t, nil, kind, what }
  end
  local function close(task, t)
    local c = task.cur
    if c then
      c[2] = t
      if t > c[1] then task.segs[#task.segs + 1] = c end
      task.cur = nil
    end
  end
  for i = 1, #T do
    local t, id, k, aux = T[i], ID[i], K[i], AUX[i]
    local task = byid[id]
    if k == "spawn" then
      local name = data.names[id] or data.names[tostring(id)] or ("task #" .. id)
      if aux == 0 then name = name:gsub("^.*/", "") end  -- a root: its script's file name
      task = { id = id, name = name, parent = aux, spawn = t, segs = {} }
      byid[id] = task
      tasks[#tasks + 1] = task
      open(task, t, "ready")
    elseif task then
      if k == "run" then
        close(task, t); open(task, t, "run")
      elseif k == "park" then
        task.parked = aux
      elseif k == "stop" then
        close(task, t)
        if task.parked then open(task, t, "wait", task.parked) elseif not task.finish then open(task, t, "ready") end
        task.parked = nil
      elseif k == "wake" then
        close(task, t); open(task, t, "ready")
      elseif k == "block" then
        close(task, t); open(task, t, "block", aux)
      elseif k == "unblock" then
        close(task, t); open(task, t, "run")
      elseif k == "end" then
        close(task, t)
        task.finish, task.state = t, aux
      end
    end
  end
  local wall = data.now
  for _, task in ipairs(tasks) do
    close(task, task.finish or wall)
    task.finish = task.finish or wall
    task.root = byid[task.parent] == nil  -- its parent was not traced: a root here
  end
  -- the axis starts with the first event (tracing may start mid-run)
  local t0 = T[1] or wall
  if t0 > 0 then
    for _, task in ipairs(tasks) do
      task.spawn, task.finish = task.spawn - t0, task.finish - t0
      for _, s in ipairs(task.segs) do s[1], s[2] = s[1] - t0, s[2] - t0 end
    end
    wall = wall - t0
  end
  return { tasks = tasks, wall = wall, virtual = data.virtual }
end

--- summary(rows) -> wall, busy, concurrency: wall time, the sum of the
-- spawned tasks' lifetimes (the root's when it spawned none), their ratio.
function M.summary(r)
  local busy, n = 0, 0
  for _, task in ipairs(r.tasks) do
    if not task.root then busy, n = busy + (task.finish - task.spawn), n + 1 end
  end
  if n == 0 then
    for _, task in ipairs(r.tasks) do busy = busy + (task.finish - task.spawn) end
  end
  return r.wall, busy, r.wall > 0 and busy / r.wall or 1
end

local GLYPHS = {
  utf8 = { run = "█", block = "▓", ready = "░", sleep = "─", fetch = "≈", gather = "┄",
           wait = "┄", semaphore = "┈", offload = "═", yield = "░", none = " " },
  ascii = { run = "#", block = "!", ready = "+", sleep = "-", fetch = "~", gather = ".",
            wait = ".", semaphore = ":", offload = "=", yield = "+", none = " " },
}

local function glyph(g, seg)
  if not seg then return g.none end
  if seg[3] == "wait" then return g[seg[4]] or g.sleep end
  return g[seg[3]]
end

local function nice_step(total, cols)
  local raw = total / math.max(1, cols // 8)
  local p = 10 ^ math.floor(math.log(raw, 10))
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if raw <= m * p then return m * p end
  end
  return 10 * p
end

local function fmt_time(s)
  if s == 0 then return "0" end
  if s >= 1 then return ("%gs"):format(tonumber(("%.3g"):format(s))) end
  return ("%gms"):format(tonumber(("%.3g"):format(s * 1000)))
end

local function utf8_pad(s, width, ascii)
  local len = utf8.len(s) or #s
  if ascii and (len ~= #s or len > width) then  -- ASCII only: replace the rest
    s = s:gsub("[\128-\255]+", "?")
    len = #s
    if len > width then return s:sub(1, width - 3) .. "..." end
  end
  if len > width then
    local cut = utf8.offset(s, width) or width
    return s:sub(1, cut - 1) .. "…"
  end
  return s .. (" "):rep(width - len)
end

--- text(rows, opts) -> string: the chart.  opts: width (default: terminal
-- or 80), ascii (default: unless LANG/LC_* say UTF-8 and out is a terminal),
-- max_rows (30), span (the time axis length, to share one axis), title.
function M.text(r, opts)
  opts = opts or {}
  local g = opts.ascii and GLYPHS.ascii or GLYPHS.utf8
  local width = opts.width or 80
  local tasks = r.tasks
  local max_rows = opts.max_rows or 30
  local label_w = 8
  for i = 1, math.min(#tasks, max_rows) do
    label_w = math.max(label_w, utf8.len(tasks[i].name) or #tasks[i].name)
  end
  label_w = math.min(label_w, math.max(12, width // 3))
  local cols = math.max(10, width - label_w - 3)
  local span = opts.span or r.wall
  if span <= 0 then span = 1e-3 end
  local out = {}
  if opts.title then out[#out + 1] = opts.title end
  local function row(task)
    local cells, si, segs = {}, 1, task.segs
    for c = 0, cols - 1 do
      local a, b = span * c / cols, span * (c + 1) / cols
      while segs[si] and segs[si][2] <= a do si = si + 1 end
      local best, best_len, j = nil, 0, si
      while segs[j] and segs[j][1] < b do
        local s = segs[j]
        local len = math.min(b, s[2]) - math.max(a, s[1])
        local pri = PRIORITY[s[3]] * 1e9
        if len > 0 and (not best or pri + len > PRIORITY[best[3]] * 1e9 + best_len) then
          best, best_len = s, len
        end
        j = j + 1
      end
      cells[#cells + 1] = glyph(g, best)
    end
    return utf8_pad(task.name, label_w, opts.ascii) .. (opts.ascii and " |" or " │") .. table.concat(cells)
  end
  for i = 1, math.min(#tasks, max_rows) do out[#out + 1] = row(tasks[i]) end
  if #tasks > max_rows then
    out[#out + 1] = ("%s and %d more tasks"):format(opts.ascii and "..." or "…", #tasks - max_rows)
  end
  -- the axis: ticks at a round step
  local step = nice_step(span, cols)
  local axis, labels = {}, {}
  for c = 1, cols do axis[c] = opts.ascii and "-" or "─" end
  local lab = (" "):rep(cols + 10)
  local t = 0
  while t <= span + 1e-9 do
    local c = math.floor(t / span * cols + 0.5) + 1
    if c <= cols then axis[c] = opts.ascii and "+" or "┬" end
    local s = fmt_time(t)
    local at = math.min(c, cols + 2 - #s)  -- the last label ends under the axis' end
    if at >= 1 then lab = lab:sub(1, at - 1) .. s .. lab:sub(at + #s) end
    t = t + step
  end
  local pad = (" "):rep(label_w)
  out[#out + 1] = pad .. (opts.ascii and " +" or " └") .. table.concat(axis)
  out[#out + 1] = pad .. "  " .. lab:gsub("%s+$", "")
  local legend, used = {}, {}
  for _, task in ipairs(tasks) do
    for _, s in ipairs(task.segs) do used[s[3] == "wait" and s[4] or s[3]] = true end
  end
  used.gather = used.gather or used.wait
  for _, k in ipairs({ "run", "block", "ready", "sleep", "fetch", "gather", "semaphore", "offload" }) do
    if used[k] then
      legend[#legend + 1] = g[k] .. " " .. (k == "run" and "running" or k == "block" and "blocking call"
        or k == "ready" and "ready to run" or k == "gather" and "gather/wait" or k)
    end
  end
  out[#out + 1] = pad .. "  " .. table.concat(legend, "  ")
  local wall, busy, conc = M.summary(r)
  out[#out + 1] = ("wall time %.2f s, task time %.2f s: concurrency %.1fx%s"):format(
    wall, busy, conc, r.virtual and " (virtual time)" or "")
  return table.concat(out, "\n")
end

--- chrome(rows) -> string: the Chrome Trace Event Format (Perfetto,
-- chrome://tracing): a thread per task, B/E pairs per segment, in µs.
function M.chrome(r)
  local out = { '{"displayTimeUnit":"ms","traceEvents":[' }
  local first = true
  local function add(s)
    out[#out + 1] = (first and "" or ",") .. s
    first = false
  end
  add(('{"ph":"M","pid":1,"tid":0,"name":"process_name","args":{"name":"lessonrun"}}'))
  for _, task in ipairs(r.tasks) do
    add(('{"ph":"M","pid":1,"tid":%d,"name":"thread_name","args":{"name":%s}}'):format(
      task.id, core.json_encode(task.name)))
    for _, s in ipairs(task.segs) do
      local name = s[3] == "wait" and ("wait: " .. s[4]) or s[3] == "block" and s[4] or s[3]
      local ts0, ts1 = math.floor(s[1] * 1e6 + 0.5), math.floor(s[2] * 1e6 + 0.5)
      add(('{"ph":"B","pid":1,"tid":%d,"ts":%d,"name":%s,"cat":"%s"}'):format(task.id, ts0, core.json_encode(name), s[3]))
      add(('{"ph":"E","pid":1,"tid":%d,"ts":%d}'):format(task.id, math.max(ts0, ts1)))
    end
  end
  out[#out + 1] = "]}"
  return table.concat(out, "\n")
end

local COLORS = { run = "#2b7bba", block = "#d7301f", ready = "#fdae6b", sleep = "#a6bddb",
                 fetch = "#74c476", gather = "#d9d9d9", wait = "#d9d9d9", semaphore = "#bcbddc",
                 offload = "#9e9ac8", yield = "#fdae6b" }

local function xml(s)
  return (tostring(s):gsub("[<>&\"]", { ["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;" }))
end

--- svg(rows [, opts]) -> string: a self-contained SVG of the timeline
function M.svg(r, opts)
  opts = opts or {}
  local tasks, max_rows = r.tasks, opts.max_rows or 60
  local n = math.min(#tasks, max_rows)
  local label_w, bar_w, row_h = 190, 620, 22
  local top = opts.title and 34 or 12
  local h = top + n * row_h + 70
  local span = opts.span or r.wall
  if span <= 0 then span = 1e-3 end
  local W = label_w + bar_w + 20
  local o = {}
  o[#o + 1] = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="monospace" font-size="12">'):format(W, h, W, h)
  o[#o + 1] = ('<rect width="%d" height="%d" fill="white"/>'):format(W, h)
  if opts.title then o[#o + 1] = ('<text x="10" y="20" font-size="14" font-weight="bold">%s</text>'):format(xml(opts.title)) end
  for i = 1, n do
    local task, y = tasks[i], top + (i - 1) * row_h
    o[#o + 1] = ('<text x="%d" y="%d" text-anchor="end">%s</text>'):format(label_w - 8, y + 15, xml(task.name))
    for _, s in ipairs(task.segs) do
      local x0 = label_w + s[1] / span * bar_w
      local w = math.max(0.5, (s[2] - s[1]) / span * bar_w)
      local key = s[3] == "wait" and s[4] or s[3]
      local hh = s[3] == "wait" and 6 or 16
      o[#o + 1] = ('<rect x="%.2f" y="%.2f" width="%.2f" height="%d" fill="%s"><title>%s %s–%s s</title></rect>'):format(
        x0, y + 3 + (16 - hh) / 2, w, hh, COLORS[key] or "#999", xml(key), ("%.3f"):format(s[1]), ("%.3f"):format(s[2]))
    end
  end
  local ay = top + n * row_h + 6
  o[#o + 1] = ('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'):format(label_w, ay, label_w + bar_w, ay)
  local step, t = nice_step(span, 80), 0
  while t <= span + 1e-9 do
    local x = label_w + t / span * bar_w
    o[#o + 1] = ('<line x1="%.2f" y1="%d" x2="%.2f" y2="%d" stroke="black"/><text x="%.2f" y="%d" text-anchor="middle">%s</text>'):format(
      x, ay, x, ay + 5, x, ay + 18, xml(fmt_time(t)))
    t = t + step
  end
  local lx, used = label_w, {}
  for i = 1, n do
    for _, s in ipairs(tasks[i].segs) do used[s[3] == "wait" and s[4] or s[3]] = true end
  end
  used.gather = used.gather or used.wait
  for _, k in ipairs({ "run", "block", "ready", "sleep", "fetch", "gather", "semaphore", "offload" }) do
    if used[k] then
      local label = k == "block" and "blocking call" or k == "gather" and "gather/wait" or k == "run" and "running" or k
      o[#o + 1] = ('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>'):format(
        lx, ay + 30, COLORS[k], lx + 14, ay + 39, label)
      lx = lx + 24 + 8 * #label
    end
  end
  local wall, busy, conc = M.summary(r)
  o[#o + 1] = ('<text x="10" y="%d">wall %.2f s, task time %.2f s, concurrency %.1fx</text>'):format(ay + 60, wall, busy, conc)
  o[#o + 1] = "</svg>"
  return table.concat(o, "\n")
end

local function utf8_ok(file)
  local lang = os.getenv("LC_ALL") or os.getenv("LC_CTYPE") or os.getenv("LANG") or ""
  return core.isatty(file) and lang:upper():find("UTF%-?8") ~= nil
end

-- Writes the strings to the file named dest, or raises "cannot write what
-- to dest: reason" (no position: it is the user's path, not our bug).  Every
-- write and the close are checked: a full disk shows only at the flush.
local function write_file(dest, what, ...)
  local function fail(err)
    err = tostring(err)
    if err:sub(1, #dest + 2) == dest .. ": " then err = err:sub(#dest + 3) end
    error(("cannot write %s to %s: %s"):format(what, dest, err), 0)
  end
  local f, err = io.open(dest, "w")
  if not f then fail(err) end
  local ok, werr = f:write(...)
  local closed, cerr = f:close()
  if not ok then fail(werr) end
  if not closed then fail(cerr) end
end

--- report(data, dest): after a run with --trace.  dest "" -> chart on
-- stderr; "x.json" -> Chrome trace; "x.svg" -> SVG; anything else -> chart.
-- Raises if the file cannot be written (lessonrun then exits 1).
function M.report(data, dest, title)
  local r = M.rows(data)
  if dest and dest:match("%.json$") then
    write_file(dest, "the trace", M.chrome(r))
    io.stderr:write(("lessonrun: trace written to %s (open it in Perfetto or chrome://tracing)\n"):format(dest))
  elseif dest and dest:match("%.svg$") then
    write_file(dest, "the timeline", M.svg(r, { title = title }))
    io.stderr:write(("lessonrun: timeline written to %s\n"):format(dest))
  elseif dest and dest ~= "" then  -- any other file name: the chart, as text
    write_file(dest, "the timeline", M.text(r, { width = 100, title = title }), "\n")
    io.stderr:write(("lessonrun: timeline written to %s\n"):format(dest))
  else
    local out = io.stderr
    local ok, err = out:write("\n", M.text(r, { width = core.termwidth(out) or 80, ascii = not utf8_ok(out),
                                                title = title }), "\n")
    if not ok then error("cannot write the timeline to stderr: " .. tostring(err), 0) end
  end
  return r
end

--- compare(a, b): two runs' data, side by side on one time axis
function M.compare(a, b, name_a, name_b)
  local ra, rb = M.rows(a), M.rows(b)
  local span = math.max(ra.wall, rb.wall)
  local out = io.stdout
  local opts = { width = core.termwidth(out) or 80, ascii = not utf8_ok(out), span = span }
  local wa, wb = ra.wall, rb.wall
  out:write(("\n%-20s %8.2f s\n%-20s %8.2f s\n"):format(name_a, wa, name_b, wb))
  if wb > 0 and wa > 0 then
    out:write(("speed-up: %s is %.1fx faster than %s\n"):format(
      wa < wb and name_a or name_b, math.max(wa, wb) / math.min(wa, wb), wa < wb and name_b or name_a))
  end
  opts.title = "\n" .. name_a
  out:write(M.text(ra, opts), "\n")
  opts.title = "\n" .. name_b
  out:write(M.text(rb, opts), "\n")
  return ra, rb
end

return M
