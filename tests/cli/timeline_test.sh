#!/usr/bin/env bash
# Seeing when things run, from outside: --virtual-time, --trace (a chart on
# stderr, --trace=x.json, --trace=x.svg), `lessonrun compare`, the fetch
# refusal under virtual time, the blocking-call warnings, and cpu.lua.
#   timeline_test.sh LESSONRUN SOURCE_DIR
# Needs xmllint (Debian: libxml2-utils) for the SVG check.
# Checks are written as strings that expect evals later, when the variables
# they name are set:
# shellcheck disable=SC2016,SC2034
set -euo pipefail
LR=$(realpath "$1")
SRC=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

# shellcheck source=tests/lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

# run [lessonrun args...]: runs it, sets $out, $err, $rc and $wall (seconds)
run() {
  local t0
  t0=$(date +%s%N)
  set +e
  "$LR" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  rc=$?
  set -e
  wall=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  out=$(cat "$TMP/out")
  err=$(cat "$TMP/err")
}

# expect NAME CONDITION...: passes when the command succeeds; on failure it
# shows what the program printed.
expect() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name" "check: $*" "exit: $rc ($wall s)" "stdout: $out" "stderr: $err"; fi
}
has() { [[ "$1" == *"$2"* ]]; }
# count TEXT REGEX: lines of TEXT matching the extended regex
count() { grep -cE -- "$2" <<<"$1" || true; }
lt() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x + 0 < y + 0) }'; }
ascii_only() { ! LC_ALL=C grep -q '[^[:print:][:space:]]' <<<"$1"; }

SYNC_LINES='Task A started
Task A finished after 1 seconds
Task B started
Task B finished after 2 seconds
Task C started
Task C finished after 3 seconds
Total time: 6.00 seconds'
ASYNC_LINES='Task A started
Task B started
Task C started
Task A finished after 1 seconds
Task B finished after 2 seconds
Task C finished after 3 seconds
Total time: 3.00 seconds'

normal_checks() {
  # ---- --virtual-time ------------------------------------------------------------
  run --virtual-time sync.lua
  expect "--virtual-time sync.lua: the lesson's lines, 'Total time: 6.00 seconds', in < 1 s" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = "$SYNC_LINES" ] && [ -z "$err" ] && lt "$wall" 1'
  run --virtual-time async.lua
  expect "--virtual-time async.lua: the lesson's lines, 'Total time: 3.00 seconds', in < 1 s" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = "$ASYNC_LINES" ] && [ -z "$err" ] && lt "$wall" 1'
  run --virtual-time -e 'local t0 = now() sleep(100) print(now() - t0) blocking_sleep(2.5) print(now() - t0)'
  expect "--virtual-time: now() counts simulated seconds (sleep 100, blocking_sleep 2.5), at once" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = $'"'"'100.0\n102.5'"'"' ] && lt "$wall" 1'
  run --virtual-time -e 'local o = {}
    local function after(s) sleep(s) o[#o + 1] = s end
    gather(function() after(3) end, function() after(1) end, function() after(2) end, function() after(1) end)
    print(table.concat(o, " "), now())'
  expect "--virtual-time: sleeps end in order of their deadlines" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = $'"'"'1 1 2 3\t3.0'"'"' ]'
  # equal deadlines wake in the order the sleeps began, whichever of the
  # sleepers' two lanes (FIFO ring, heap) they are in: C is in the heap behind
  # A in the ring; F comes after H even though cancelling X emptied the ring
  run --virtual-time -e 'local o = {}
    local function after(name, s) sleep(s) o[#o + 1] = name end
    local a, b, c = spawn(after, "A", 2), spawn(after, "B", 3), spawn(after, "C", 2)
    sleep(0)
    gather(a, b, c)
    local x, h = spawn(after, "X", 5), spawn(after, "H", 2)
    sleep(0)
    x:cancel()
    local f = spawn(after, "F", 2)
    sleep(0)
    gather(h, f)
    print(table.concat(o, " "))'
  expect "--virtual-time: equal deadlines wake in the order their sleeps began" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = "A C B H F" ]'

  # ---- fetch refused under virtual time ---------------------------------------------
  run --virtual-time -e 'fetch("http://10.255.255.1/")'
  expect "--virtual-time: fetch is a clear error, at once" \
    eval '[ "$rc" -eq 1 ] && has "$err" "fetch: not available under --virtual-time" && lt "$wall" 1'
  run --virtual-time -e 'blocking_fetch("http://10.255.255.1/")'
  expect "--virtual-time: blocking_fetch is a clear error, at once" \
    eval '[ "$rc" -eq 1 ] && has "$err" "blocking_fetch: not available under --virtual-time" && lt "$wall" 1'
  run --virtual-time -e 'print(pcall(fetch, "http://10.255.255.1/"))'
  expect "--virtual-time: the fetch error can be caught" \
    eval '[ "$rc" -eq 0 ] && has "$out" "false" && has "$out" "not available under --virtual-time"'

  # ---- --trace: the chart on stderr ------------------------------------------------------
  run --virtual-time --trace sync.lua
  expect "--trace sync.lua: stdout unchanged" eval '[ "$rc" -eq 0 ] && [ "$out" = "$SYNC_LINES" ]'
  expect "--trace sync.lua: four rows (the script and task A, B, C) on stderr" \
    eval '[ "$(count "$err" "^(sync\.lua|task\(\"[ABC]\", [123]\)) +[|│]")" -eq 4 ] &&
          [ "$(count "$err" "^task\(\"A\", 1\) ")" -eq 1 ] && [ "$(count "$err" "^task\(\"C\", 3\) ")" -eq 1 ]'
  expect "--trace sync.lua: an axis from 0 to 6s, blocking calls in the legend" \
    eval '[ "$(count "$err" "^ +[+└][-─+┬]+$")" -eq 1 ] && [ "$(count "$err" "^ +0 .* 6s$")" -eq 1 ] &&
          has "$err" "blocking call"'
  expect "--trace sync.lua: 'wall time 6.00 s, task time 6.00 s: concurrency 1.0x (virtual time)'" \
    has "$err" "wall time 6.00 s, task time 6.00 s: concurrency 1.0x (virtual time)"
  expect "--trace to a pipe: ASCII only" ascii_only "$err"
  run --virtual-time --trace async.lua
  expect "--trace async.lua: four rows, 'concurrency 2.0x'" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = "$ASYNC_LINES" ] &&
          [ "$(count "$err" "^(async\.lua|task\(\"[ABC]\", [123]\)) +[|│]")" -eq 4 ] &&
          has "$err" "wall time 3.00 s, task time 6.00 s: concurrency 2.0x (virtual time)"'
  # in real time, with short durations
  cat >short.lua <<'EOF'
local function task(name, duration) sleep(duration) end
gather(spawn(task, "A", 0.1), spawn(task, "B", 0.2), spawn(task, "C", 0.3))
EOF
  run --trace short.lua
  # over 1.0x is what shows overlap (one after another gives at most 1.0x);
  # a busy machine lowers the figure, so it is not pinned to 2x
  expect "--trace in real time: four rows, concurrency over 1x, no '(virtual time)'" \
    eval '[ "$rc" -eq 0 ] && [ "$(count "$err" "^(short\.lua|task\(\"[ABC]\", 0\.[123]\)) +[|│]")" -eq 4 ] &&
          [ "$(count "$err" "concurrency (1\.[1-9]|2\.[0-9])x$")" -eq 1 ]'
  LC_ALL=C.UTF-8 run --virtual-time --trace short.lua
  expect "--trace to a pipe under a UTF-8 locale: still ASCII" eval '[ "$rc" -eq 0 ] && ascii_only "$err"'

  # ---- --trace=FILE.json -----------------------------------------------------------------
  run --virtual-time --trace=run.json async.lua
  expect "--trace=run.json: the file, a message, no chart" \
    eval '[ "$rc" -eq 0 ] && [ -s run.json ] && has "$err" "trace written to run.json" && ! has "$err" "wall time"'
  run -e '
    local d = json_decode(io.open("run.json"):read("a"))
    local names, b, e, bad = {}, 0, 0, 0
    for _, ev in ipairs(d.traceEvents) do
      if ev.ph == "M" and ev.name == "thread_name" then names[#names + 1] = ev.args.name end
      if ev.ph == "B" then b = b + 1 end
      if ev.ph == "E" then e = e + 1 end
      if (ev.ph == "B" or ev.ph == "E") and (type(ev.ts) ~= "number" or ev.ts % 1 ~= 0 or not ev.tid) then bad = bad + 1 end
    end
    table.sort(names)
    print(table.concat(names, ";"), b == e and b > 0, bad, d.traceEvents[#d.traceEvents].ts)'
  expect "--trace=run.json parses: a thread per task, B/E pairs, µs integers up to 3 s" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = "async.lua;task(\"A\", 1);task(\"B\", 2);task(\"C\", 3)	true	0	3000000" ]'

  # ---- --trace=FILE.svg ------------------------------------------------------------------
  run --virtual-time --trace=run.svg sync.lua
  expect "--trace=run.svg: the file and a message" \
    eval '[ "$rc" -eq 0 ] && [ -s run.svg ] && has "$err" "timeline written to run.svg"'
  if command -v xmllint >/dev/null; then
    local lint
    lint=$(xmllint --noout run.svg 2>&1) && rc=0 || rc=$?
    expect "--trace=run.svg is well-formed XML (xmllint --noout)" eval '[ "$rc" -eq 0 ] && [ -z "$lint" ]'
    local root
    root=$(xmllint --xpath 'name(/*)' run.svg 2>&1 || true)
    expect "--trace=run.svg: an <svg> document" eval '[ "$root" = svg ]'
  else
    fail "xmllint not found: install libxml2-utils to check the SVG"
  fi
  expect "--trace=run.svg: the rows' names, escaped" \
    eval 'grep -qF "task(&quot;C&quot;, 3)" run.svg && grep -qF ">sync.lua<" run.svg'

  # ---- compare --------------------------------------------------------------------------
  run compare sync.lua async.lua --virtual-time
  expect "compare --virtual-time: exit 0, in < 1 s, each script's output under its heading" \
    eval '[ "$rc" -eq 0 ] && lt "$wall" 1 && has "$out" "=== sync.lua ===" && has "$out" "=== async.lua ===" &&
          has "$out" "Total time: 6.00 seconds" && has "$out" "Total time: 3.00 seconds"'
  expect "compare: both totals side by side" \
    eval '[ "$(count "$out" "^sync\.lua +6\.00 s$")" -eq 1 ] && [ "$(count "$out" "^async\.lua +3\.00 s$")" -eq 1 ]'
  expect "compare: 'speed-up: async.lua is 2.0x faster than sync.lua'" \
    has "$out" "speed-up: async.lua is 2.0x faster than sync.lua"
  expect "compare: two charts, each with its four rows" \
    eval '[ "$(count "$out" "^wall time ")" -eq 2 ] && [ "$(count "$out" "^task\(\"C\", 3\) +[|│]")" -eq 2 ] &&
          [ "$(count "$out" "^(sync|async)\.lua +[|│]")" -eq 2 ]'
  expect "compare: one time axis for both (the same tick labels up to 6s)" \
    eval '[ "$(count "$out" "^ +0 .* 6s$")" -eq 2 ] && [ "$(grep -E "^ +0 " <<<"$out" | sort -u | wc -l)" -eq 1 ]'
  printf 'shared = "from a"\nsleep(0.05)\n' >a.lua
  printf 'print("b sees", shared)\nsleep(0.1)\n' >b.lua
  run compare a.lua b.lua
  # (which is faster in real time is the machine's to say: virtual time above checks that)
  expect "compare in real time: fresh runtimes (b does not see a's global), a speed-up line, two charts" \
    eval '[ "$rc" -eq 0 ] && has "$out" "b sees	nil" && [ "$(count "$out" "^speed-up: (a|b)\.lua is [0-9]+\.[0-9]x faster than (a|b)\.lua$")" -eq 1 ] &&
          [ "$(count "$out" "^wall time ")" -eq 2 ]'
  run compare sync.lua
  expect "compare with one script: usage, exit 2" eval '[ "$rc" -eq 2 ] && has "$err" "usage"'
  run compare sync.lua no_such_script.lua --virtual-time
  expect "compare with a missing script: says so, exit 1" \
    eval '[ "$rc" -eq 1 ] && has "$err" "cannot open no_such_script.lua: No such file or directory"'

  # ---- blocking-call warnings ------------------------------------------------------------------
  local W='^lessonrun: warning: blocking_sleep at '
  cat >warn.lua <<'EOF'
local t = spawn(function() sleep(0.01) end)  -- ready: it has not run yet
for _ = 1, 2 do
  blocking_sleep(0.15)
end
t:wait()
print("done")
EOF
  run warn.lua
  expect "warning: a ready task held up: one warning naming warn.lua:3, though the call ran twice" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = done ] && [ "$(count "$err" "warning")" -eq 1 ] &&
          [ "$(count "$err" "${W}warn\.lua:3 stopped the loop for 0\.(1[5-9]|[2-9][0-9]) s while 1 other task waited to run; use sleep")" -eq 1 ]'
  run --no-blocking-warnings warn.lua
  expect "--no-blocking-warnings: no warning" eval '[ "$rc" -eq 0 ] && [ "$out" = done ] && [ -z "$err" ]'
  { echo 'print(blocking_warnings(false), blocking_warnings())'; cat warn.lua; } >warn_off.lua
  run warn_off.lua
  expect "blocking_warnings(false): no warning; it returns the old setting" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = $'"'"'true\tfalse\ndone'"'"' ] && [ -z "$err" ]'
  cat >warn2.lua <<'EOF'
spawn(function() sleep(0.01) end)
sleep(0)                -- it now sleeps, due long before the blocking call ends
blocking_sleep(0.15)
spawn(function() sleep(0.01) end)
spawn(function() sleep(0.01) end)
sleep(0)                -- two more sleepers (and the first, woken meanwhile: ready)
blocking_sleep(0.15)
pending_warnings(false) -- the tasks left running are intended
EOF
  run warn2.lua
  expect "warning: overdue sleepers held up; once per call site (two sites, two warnings)" \
    eval '[ "$rc" -eq 0 ] && [ "$(count "$err" "warning")" -eq 2 ] &&
          [ "$(count "$err" "${W}warn2\.lua:3 .* while 1 other task waited")" -eq 1 ] &&
          [ "$(count "$err" "${W}warn2\.lua:7 .* while [23] other tasks waited")" -eq 1 ]'
  cat >nowarn.lua <<'EOF'
spawn(function() sleep(5) end)
sleep(0)
blocking_sleep(0.2)     -- the sleeper is not due yet: nobody was held up
spawn(function() end)
blocking_sleep(0.05)    -- under 0.1 s: not worth a warning
pending_warnings(false) -- the tasks left running are intended
EOF
  run nowarn.lua
  expect "no warning when nobody waited to run, or under 0.1 s" eval '[ "$rc" -eq 0 ] && [ -z "$err" ]'
  sed 's/"A", 1)/"A", 0.1)/; s/"B", 2)/"B", 0.2)/; s/"C", 3)/"C", 0.3)/' "$SRC/scripts/sync.lua" >sync_short.lua
  run sync_short.lua
  expect "sync.lua with 0.1/0.2/0.3 s, in real time: no warning" \
    eval '[ "$rc" -eq 0 ] && [ -z "$err" ] && has "$out" "Total time: 0.6" && grep -q "\"C\", 0.3" sync_short.lua'
  run --virtual-time sync.lua
  expect "sync.lua under --virtual-time: no warning" eval '[ "$rc" -eq 0 ] && [ -z "$err" ]'
  sed 's/^  sleep(duration)/  blocking_sleep(duration)/' "$SRC/scripts/async.lua" >async.lua
  run --virtual-time async.lua
  expect "async.lua with blocking_sleep (README's example): one warning naming async.lua:6, 1.00 s, 2 others" \
    eval '[ "$rc" -eq 0 ] && [ "$(count "$err" "warning")" -eq 1 ] &&
          [ "$(count "$err" "${W}async\.lua:6 stopped the loop for 1\.00 s while 2 other tasks waited to run; use sleep")" -eq 1 ] &&
          has "$out" "Total time: 6.00 seconds"'
  rm async.lua
  cat >warn_fetch.lua <<'EOF'
local srv = serve()
spawn(fetch, srv.url .. "/delay/0.5")
sleep(0.05)             -- the transfer is in flight
blocking_sleep(0.2)
local t = spawn(function() end)
blocking_fetch(srv.url .. "/delay/0.2")
pending_warnings(false) -- the tasks left running are intended
EOF
  run warn_fetch.lua
  expect "warning: a fetch in flight held up; blocking_fetch is named with its twin fetch" \
    eval '[ "$rc" -eq 0 ] && [ "$(count "$err" "warning")" -eq 2 ] &&
          [ "$(count "$err" "${W}warn_fetch\.lua:4 .* while 1 other task waited")" -eq 1 ] &&
          [ "$(count "$err" "^lessonrun: warning: blocking_fetch at warn_fetch\.lua:6 .*; use fetch")" -eq 1 ]'

  # ---- cpu.lua ------------------------------------------------------------------------------------
  # the speed-up itself is measured in bench/ (a busy core changes it): here,
  # that the line says it honestly, never "0.7x faster"
  run cpu.lua 3000000
  expect "cpu.lua 3000000: the three lines, in order" \
    eval '[ "$rc" -eq 0 ] && [ -z "$err" ] && [ "$(wc -l <<<"$out")" -eq 3 ] &&
          [ "$(count "$out" "^one after another: +[0-9]+\.[0-9]{2} s$")" -eq 1 ] &&
          [ "$(count "$out" "^gathered on the loop: +[0-9]+\.[0-9]{2} s  \(no faster: nothing to wait for\)$")" -eq 1 ] &&
          [ "$(count "$out" "^offloaded to two threads: +[0-9]+\.[0-9]{2} s  \(([1-9][0-9]*\.[0-9]x faster|(no faster|slower): the machine is busy or has one core)\)$")" -eq 1 ] &&
          [ "$(sed -n 1p <<<"$out" | cut -c1-3)$(sed -n 2p <<<"$out" | cut -c1-3)$(sed -n 3p <<<"$out" | cut -c1-3)" = onegatoff ]'

  # ---- a trace file that cannot be written: say why, exit 1 -----------------------------------
  # (/dev/full fails only when the buffer is flushed, at the close; $TMP/out is a file)
  local dest
  for dest in /dev/full "$TMP/no_such_dir/run.svg" "$TMP/no_such_dir/run.json" "$TMP/out/run.txt"; do
    run --virtual-time --trace="$dest" -e 'sleep(1)'
    expect "--trace=${dest#"$TMP"/}: 'cannot write ... to it: reason', exit 1, never 'written'" \
      eval '[ "$rc" -eq 1 ] && [ "$(count "$err" "^lessonrun: cannot write the (timeline|trace) to ")" -eq 1 ] &&
            has "$err" " to $dest: " && ! has "$err" "written"'
  done
  run --virtual-time --trace=/dev/full -e 'sleep(1)'
  expect "--trace=/dev/full: No space left on device" \
    has "$err" "lessonrun: cannot write the timeline to /dev/full: No space left on device"
  run --virtual-time --trace="$TMP/no_such_dir/run.svg" -e 'sleep(1)'
  expect "--trace into a missing directory: No such file or directory" \
    has "$err" "run.svg: No such file or directory"
  if [ "$(id -u)" -ne 0 ]; then  # (root writes anywhere)
    mkdir ro && chmod 555 ro
    run --virtual-time --trace=ro/run.svg -e 'sleep(1)'
    expect "--trace into a read-only directory: Permission denied, exit 1" \
      eval '[ "$rc" -eq 1 ] && has "$err" "cannot write the timeline to ro/run.svg: Permission denied"'
    chmod 755 ro
  fi
  set +e
  "$LR" --virtual-time --trace -e 'sleep(1)' 2>/dev/full
  rc=$?
  set -e
  expect "--trace (the chart on stderr) with stderr on /dev/full: exit 1" eval '[ "$rc" -eq 1 ]'
}

# ---- regressions: bugs found here and fixed ------------------------------------------------
regression_checks() {
  # Regression test (CHANGELOG.md, fixed, "trace names cut inside a character"): a
  # task's string argument is cut at 10 bytes for its name, which can split a
  # UTF-8 character: the SVG is then not well-formed and the JSON not UTF-8.
  printf 'local function f(s) sleep(0.01) end\nspawn(f, "aéééééééé"):wait()\n' >utf8.lua
  run --trace=utf8.svg utf8.lua
  local lint
  lint=$(xmllint --noout utf8.svg 2>&1) && rc=0 || rc=$?
  expect "--trace=x.svg is well-formed when a name is cut inside a UTF-8 character" \
    eval '[ "$rc" -eq 0 ] && [ -z "$lint" ]'
  run --trace=utf8.json utf8.lua
  expect "--trace=x.json is valid UTF-8 when a name is cut inside a UTF-8 character" \
    eval '[ "$rc" -eq 0 ] && iconv -f UTF-8 -t UTF-8 utf8.json >/dev/null 2>&1'

  # Regression test (CHANGELOG.md, fixed, "Ctrl-C during offload"): "interrupted" is
  # printed at once, but the process exits only when the worker's job ends.
  printf '%s\n' 'print(offload(function() local s = 0 for i = 1, 1e9 do s = s + math.sqrt(i) end return s end))' \
    'print("not reached")' >int_offload.lua
  env --default-signal=INT "$LR" int_offload.lua >"$TMP/out" 2>"$TMP/err" &
  local pid=$! t0 dt
  sleep 0.3
  t0=$(date +%s%N)
  kill -INT "$pid"
  for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
  dt=$(( ($(date +%s%N) - t0) / 1000000 ))
  kill -KILL "$pid" 2>/dev/null || true
  set +e; wait "$pid" 2>/dev/null; rc=$?; set -e
  out=$(cat "$TMP/out"); err=$(cat "$TMP/err"); wall=$(awk -v d="$dt" 'BEGIN { printf "%.2f", d / 1000 }')
  expect "Ctrl-C while a task waits for offload: exit 130 within 1 s (took $dt ms)" \
    eval '[ "$rc" -eq 130 ] && [ "$dt" -lt 1000 ] && has "$err" "interrupted"'

  # Regression test (CHANGELOG.md, fixed, "huge blocking_sleep under virtual time"):
  # seconds * 1e9 overflows the 64-bit clock and the clock does not move.
  run --virtual-time -e 'blocking_sleep(1e300) print(now() > 1e9)'
  expect "--virtual-time: blocking_sleep(1e300) moves the clock as far as sleep(1e300) does" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = true ]'
}

normal_checks
regression_checks
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
