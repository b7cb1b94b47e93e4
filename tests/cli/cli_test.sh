#!/usr/bin/env bash
# The lessonrun executable, from outside: options, the arg table, stdin,
# error reports and exit codes, script lookup, and Ctrl-C (SIGINT).
#   cli_test.sh LESSONRUN SOURCE_DIR
# Checks are written as strings that expect/check eval later, when the
# variables they name are set:
# shellcheck disable=SC2016,SC2034
set -euo pipefail
LR=$(realpath "$1")
SRC=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

# shellcheck source=tests/lib.sh
. "$(dirname "$(realpath "$0")")/../lib.sh"

# run NAME [lessonrun args...]: runs it, sets $out, $err, $rc
run() {
  set +e
  "$LR" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  rc=$?
  set -e
  out=$(cat "$TMP/out")
  err=$(cat "$TMP/err")
}

# expect NAME CONDITION...: the test passes when the command (a [[ ]] or
# grep) succeeds; on failure it shows what the program printed.
expect() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name" "check: $*" "exit: $rc" "stdout: $out" "stderr: $err"; fi
}
has() { [[ "$1" == *"$2"* ]]; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# interrupt NAME SCRIPT-TEXT: start it, Ctrl-C after 0.3 s, check exit 130
# with "lessonrun: interrupted" within 1 s of the signal.
interrupt() {
  local name=$1
  printf '%s\n' "$2" >int.lua
  # a background job of a script ignores SIGINT: give it the default back
  env --default-signal=INT "$LR" int.lua >"$TMP/out" 2>"$TMP/err" &
  local pid=$!
  sleep 0.3
  local t0
  t0=$(ms)
  kill -INT "$pid"
  for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
  dt=$(( $(ms) - t0 ))
  kill -KILL "$pid" 2>/dev/null || true
  set +e; wait "$pid" 2>/dev/null; rc=$?; set -e
  out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
  expect "Ctrl-C during $name: exit 130, 'interrupted', within 1 s (took $dt ms)" \
    eval '[ "$rc" -eq 130 ] && [ "$dt" -lt 1000 ] && has "$err" "lessonrun: interrupted" && ! has "$out" "not reached"'
}
# second NAME SCRIPT-TEXT: the script catches the first Ctrl-C (it prints
# "caught") and keeps computing; the second Ctrl-C must end it at once.
second() {
  local name=$1
  printf '%s\n' "$2" >int2.lua
  env --default-signal=INT "$LR" int2.lua >"$TMP/out" 2>"$TMP/err" &
  local pid=$!
  sleep 0.3
  kill -INT "$pid"
  for _ in $(seq 50); do grep -q caught "$TMP/out" && break; sleep 0.02; done
  sleep 0.2
  local alive=no
  kill -0 "$pid" 2>/dev/null && alive=yes
  local t0
  t0=$(ms)
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
  dt=$(( $(ms) - t0 ))
  kill -KILL "$pid" 2>/dev/null || true
  set +e; wait "$pid" 2>/dev/null; rc=$?; set -e
  out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
  expect "$name: the first Ctrl-C is caught, the second exits 130 at once (took $dt ms)" \
    eval '[ "$alive" = yes ] && has "$out" "caught true" && [ "$rc" -eq 130 ] && [ "$dt" -lt 1000 ]'
}
# ---- the checks ---------------------------------------------------------------

normal_checks() {
  # ---- errors and exit codes -----------------------------------------------

  printf 'local x = 1\nerror("boom at line two")\n' >err2.lua
  run err2.lua
  expect "error in the main task: exit 1" [ "$rc" -eq 1 ]
  expect "error in the main task: 'lessonrun: script:line: message' first" \
    has "$(head -n1 <<<"$err")" "lessonrun: err2.lua:2: boom at line two"
  expect "error in the main task: stack traceback of task #1" has "$err" "stack traceback of task #1 (err2.lua)"

  printf '%s\n' 'local function work()' '  sleep(0)' '  error("child broke")' 'end' \
    'local t = spawn(work)' 't:wait()' >child.lua
  run child.lua
  expect "error in a child task: exit 1" [ "$rc" -eq 1 ]
  expect "error in a child task: message names the child's line" has "$err" "lessonrun: child.lua:3: child broke"
  expect "error in a child task: child's traceback, then the waiter's" \
    grep -Pzq 'stack traceback of task #2 \(child\.lua:1\):(.|\n)*child\.lua:3: in (.|\n)*stack traceback of task #1 \(child\.lua\), which re-raised it:(.|\n)*child\.lua:6:' "$TMP/err"

  printf 'print("fine")\nlocal x = = 2\n' >syntax.lua
  run syntax.lua
  expect "syntax error: exit 1, file:line, nothing ran" \
    eval '[ "$rc" -eq 1 ] && has "$err" "lessonrun: syntax.lua:2:" && has "$err" "near" && [ -z "$out" ]'

  run nope.lua
  expect "missing script: exit 1 and where it looked" \
    eval '[ "$rc" -eq 1 ] && has "$err" "cannot open nope.lua: No such file or directory (looked here and in $SRC/scripts)"'
  run ./nope.lua
  expect "missing script with a path: exit 1, not looked up among the lessons" \
    eval '[ "$rc" -eq 1 ] && has "$err" "cannot open ./nope.lua: No such file or directory" && ! has "$err" "scripts"'
  run --virtual-time sync
  expect "a bare name finds NAME.lua among the lessons" eval '[ "$rc" -eq 0 ] && has "$out" "Total time: 6"'
  run syn
  expect "a near name is suggested" \
    eval '[ "$rc" -eq 1 ] && has "$err" "(looked for syn and syn.lua here and in $SRC/scripts); did you mean " && has "$err" "'"'"'sync.lua'"'"'"'
  run SYNC
  expect "suggestions ignore case" eval '[ "$rc" -eq 1 ] && has "$err" "'"'"'sync.lua'"'"'"'
  run sync.lu
  expect "a name one letter short of NAME.lua" eval '[ "$rc" -eq 1 ] && has "$err" "'"'"'sync.lua'"'"'"'
  ln -s no_such_target dangling.lua
  mkdir -p asyncx.lua
  printf 'print(1)\n' >"$(printf 'esc\033[31mred.lua')"
  run dangling
  expect "a dangling link is not suggested as itself" eval '[ "$rc" -eq 1 ] && ! has "$err" "dangling.lua'"'"'?"'
  run asyncx
  expect "a folder named NAME.lua: not found, not suggested" \
    eval '[ "$rc" -eq 1 ] && has "$err" "cannot open asyncx: No such file" && ! has "$err" "'"'"'asyncx.lua'"'"'"'
  run escred
  expect "names with control characters are never printed" eval '[ "$rc" -eq 1 ] && ! grep -q $'"'"'\033'"'"' "$TMP/err"'
  rm -rf dangling.lua asyncx.lua "$(printf 'esc\033[31mred.lua')"
  run ""
  expect "an empty name: lua5.4's error, no lookup" eval '[ "$rc" -eq 1 ] && has "$err" "lessonrun: cannot open : No such file or directory" && ! has "$err" "scripts"'
  printf 'print("here")\n' >local.lua
  run local
  expect "a bare name finds NAME.lua here" eval '[ "$rc" -eq 0 ] && [ "$out" = here ]'
  rm -f local.lua
  run --virtual-time compare sync async
  expect "options before compare, bare names" eval '[ "$rc" -eq 0 ] && has "$out" "=== sync ===" && has "$out" "async is 2.0x faster than sync"'
  run --virtual-time serve
  expect "serve takes no run options" eval '[ "$rc" -eq 1 ] && has "$err" "does not apply to serve"'
  set +e
  bash -c 'ulimit -n 6; exec "$0" -e "print(1)"' "$LR" >"$TMP/out" 2>"$TMP/err" </dev/null
  rc=$?
  set -e
  err=$(cat "$TMP/err")
  expect "too few descriptors: a clear error, exit 1, no abort" \
    eval '[ "$rc" -eq 1 ] && has "$err" "lessonrun: cannot start: cannot create the event loop: " && has "$err" "open files"'
  if ! ldd "$LR" 2>/dev/null | grep libasan >/dev/null; then  # (ASan cannot run under ulimit -v; no -q: under pipefail an early exit can kill ldd)
    set +e
    bash -c 'ulimit -v 400000; exec "$0" -e "local t = {} for i = 1, 1e7 do t[i] = i .. \"x\" end"' "$LR" \
      >"$TMP/out" 2>"$TMP/err" </dev/null
    rc=$?
    set -e
    expect "out of memory in the script: exit 1, 'not enough memory' said once" \
      eval '[ "$rc" -eq 1 ] && [ "$(cat "$TMP/err")" = "lessonrun: not enough memory" ]'
  fi

  run -e 'os.exit(3)'
  expect "os.exit(3) exits 3" [ "$rc" -eq 3 ]

  run -e 'error({code = 1})'
  expect "a non-string error object is reported, exit 1" eval '[ "$rc" -eq 1 ] && has "$err" "lessonrun: "'

  # ---- options -------------------------------------------------------------

  run -e 'print(1 + 1)' -e 'sleep(0.01) print("after sleep")'
  expect "-e runs chunks in order, as tasks" eval '[ "$rc" -eq 0 ] && [ "$out" = $'"'"'2\nafter sleep'"'"' ]'
  run -e 'error("in e")'
  expect "-e error: exit 1, (command line):1:" eval '[ "$rc" -eq 1 ] && has "$err" "lessonrun: (command line):1: in e"'
  run '-eprint("joined")'
  expect "-eCHUNK without a space" eval '[ "$rc" -eq 0 ] && [ "$out" = joined ]'
  run -e 'x = = 1'
  expect "-e syntax error: exit 1" eval '[ "$rc" -eq 1 ] && has "$err" "(command line):1:"'
  run -e 'error("first")' -e 'print("second ran")'
  expect "-e stops at the first failing chunk" eval '[ "$rc" -eq 1 ] && ! has "$out" "second ran"'

  run -v
  expect "-v prints the version, exit 0" \
    eval '[ "$rc" -eq 0 ] && [[ "$out" =~ ^lessonrun\ [0-9]+\.[0-9]+\.[0-9]+\ \(Lua\ 5\.4 ]]'
  version=$out
  run --version
  expect "--version is -v" eval '[ "$rc" -eq 0 ] && [ "$out" = "$version" ]'
  run -e 'print(version)'
  expect "the version global matches -v" has "$version" "lessonrun $out "

  run -h
  expect "-h prints usage to stdout, exit 0" eval '[ "$rc" -eq 0 ] && has "$out" "usage: lessonrun" && has "$out" "-e stat" && [ -z "$err" ]'
  run --help
  expect "--help is -h" eval '[ "$rc" -eq 0 ] && has "$out" "usage: lessonrun"'
  run -z
  expect "unknown option: exit 1, names it, usage on stderr" \
    eval '[ "$rc" -eq 1 ] && has "$err" "unrecognized option '"'"'-z'"'"'" && has "$err" "usage:"'
  run -e
  expect "-e without its argument: exit 1" eval '[ "$rc" -eq 1 ] && has "$err" "needs argument"'

  run -l string -e 'print(string.upper("lib"))'
  expect "-l mod requires a library" eval '[ "$rc" -eq 0 ] && [ "$out" = LIB ]'
  printf 'return { hello = function() return "from mymod" end }\n' >mymod.lua
  run -l mymod -e 'print(mymod.hello())'
  expect "-l mod sets the global mod" eval '[ "$rc" -eq 0 ] && [ "$out" = "from mymod" ]'

  # ---- arg and ... -----------------------------------------------------------

  printf '%s\n' 'print(#arg, arg[0], arg[1], arg[2], arg[3])' 'print(select("#", ...), ...)' \
    'print(arg[-1] ~= nil)' >args.lua
  run args.lua one "two words" ""
  expect "script args: the arg table" has "$(sed -n 1p "$TMP/out")" $'3\targs.lua\tone\ttwo words\t'
  expect "script args: ... holds them too" has "$(sed -n 2p "$TMP/out")" $'3\tone\ttwo words\t'
  run -e 'x=1' args.lua a
  expect "arg[-1], arg[-2] hold the options before the script" \
    eval '[ "$rc" -eq 0 ] && has "$out" "true"'
  run -e 'print(arg[-2], arg[-1], arg[0], arg[1])' args.lua a
  expect "arg is set before -e runs" has "$out" $'-e\tprint(arg[-2], arg[-1], arg[0], arg[1])\targs.lua\ta'
  run -- args.lua -v
  expect "-- ends the options: -v after the script is an argument" \
    eval '[ "$rc" -eq 0 ] && has "$out" $'"'"'1\targs.lua\t-v'"'"' && ! has "$out" "lessonrun 0"'
  run args.lua -e
  expect "options after the script belong to the script" has "$out" $'1\targs.lua\t-e'

  # ---- stdin ----------------------------------------------------------------

  set +e
  out=$(printf 'sleep(0.01)\nprint("from stdin", current() ~= nil)\n' | "$LR" 2>"$TMP/err"); rc=$?
  set -e
  err=$(cat "$TMP/err")
  expect "piped stdin with no arguments runs as a task" eval '[ "$rc" -eq 0 ] && [ "$out" = $'"'"'from stdin\ttrue'"'"' ]'

  set +e
  out=$(printf 'print(arg[0], #arg, arg[1], arg[2])\n' | "$LR" - a b 2>"$TMP/err"); rc=$?
  set -e
  err=$(cat "$TMP/err")
  expect "'-' runs stdin; arg[0] is '-', the rest are args" eval '[ "$rc" -eq 0 ] && [ "$out" = $'"'"'-\t2\ta\tb'"'"' ]'


  set +e
  out=$(printf 'error("stdin broke")\n' | "$LR" - 2>"$TMP/err"); rc=$?
  set -e
  err=$(cat "$TMP/err")
  expect "an error in stdin: exit 1, named stdin" eval '[ "$rc" -eq 1 ] && has "$err" "stdin:1: stdin broke"'

  set +e
  out=$(printf 'x = 20\nx + 1\nsleep(0.01) return "slept"\nerror("e")\nprint("still")\n' | "$LR" -i 2>"$TMP/err"); rc=$?
  set -e
  err=$(cat "$TMP/err")
  expect "-i without a terminal reads entries line by line" \
    eval '[ "$rc" -eq 0 ] && has "$out" "21" && has "$out" "slept" && has "$out" "still" && has "$err" "stdin:1: e"'

  # ---- script lookup ----------------------------------------------------------

  mkdir -p "$TMP/elsewhere"
  cd "$TMP/elsewhere"
  "$LR" sync.lua >"$TMP/out" 2>"$TMP/err" &
  pid=$!
  for _ in $(seq 50); do grep -q "Task A started" "$TMP/out" 2>/dev/null && break; sleep 0.05; done
  kill -INT "$pid" 2>/dev/null || true
  set +e; wait "$pid"; rc=$?; set -e
  out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
  expect "sync.lua is found among the lessons from another folder" has "$out" "Task A started"

  printf 'print("the local sync.lua")\n' >sync.lua
  run sync.lua
  expect "a script in the current folder wins over the lesson" eval '[ "$rc" -eq 0 ] && [ "$out" = "the local sync.lua" ]'
  cd "$TMP"

  # ---- leftover tasks at exit ------------------------------------------------

  t0=$(ms)
  run -e 'spawn(function() print("never") end)'
  expect "a task left pending at exit is cancelled, exit 0" eval '[ "$rc" -eq 0 ] && [ -z "$out" ]'


  # ---- Ctrl-C ----------------------------------------------------------------------

  interrupt "sleep(30)" 'sleep(30) print("not reached")'
  interrupt "blocking_sleep(30)" 'blocking_sleep(30) print("not reached")'
  interrupt "a CPU loop" 'while true do end'
  interrupt "a CPU loop in a child task" 'spawn(function() while true do end end):wait()'
  interrupt "a gather of sleepers" 'gather(function() sleep(30) end, function() sleep(30) end) print("not reached")'
  interrupt "the exit cleanup of a task that swallows its cancellation" \
    'spawn(function() while true do pcall(sleep, 10) end end) sleep(0)'

  # the script failed; Ctrl-C stops the __tostring that would word its error
  printf '%s\n' 'error(setmetatable({}, {__tostring = function() while true do end end}))' >int.lua
  env --default-signal=INT "$LR" int.lua >"$TMP/out" 2>"$TMP/err" &
  pid=$!
  sleep 0.3
  kill -INT "$pid"
  for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
  kill -KILL "$pid" 2>/dev/null || true
  set +e; wait "$pid" 2>/dev/null; rc=$?; set -e
  err=$(cat "$TMP/err")
  expect "Ctrl-C stops an error value's looping __tostring: exit 1, the error named" \
    eval '[ "$rc" -eq 1 ] && has "$err" "lessonrun: (error object is a table value; its __tostring failed: interrupted)"'

  second "cancellation caught in sleep" \
    'local ok, e = pcall(sleep, 30) print("caught " .. tostring(iscancelled(e))) io.stdout:flush() while true do end'
  second "cancellation caught in a CPU loop" \
    'local ok, e = pcall(function() while true do end end) print("caught " .. tostring(iscancelled(e))) io.stdout:flush() local x = 0 while true do x = x + 1 end'
}

# ---- regressions -------------------------------------------------------------
# Each check below reproduces a bug that was found and fixed (CHANGELOG.md, "Fixed").
regression_checks() {
  # Regression test (CHANGELOG.md, fixed, "-l failure"): the failure is reported, then
  # lessonrun goes on to run stdin (or the REPL) and exits 0.
  run -l no_such_module_xyz
  expect "-l of a missing module: exit 1" eval '[ "$rc" -eq 1 ] && has "$err" "no_such_module_xyz"'

  # Regression test (CHANGELOG.md, fixed, "stdin script args"): lua5.4 passes the args
  # after '-' as ... too; lessonrun passes none.
  set +e
  out=$(printf 'print(select("#", ...), ...)\n' | "$LR" - a b 2>"$TMP/err"); rc=$?
  set -e
  err=$(cat "$TMP/err")
  expect "'-': ... holds the script args, as in lua5.4" eval '[ "$rc" -eq 0 ] && [ "$out" = $'"'"'2\ta\tb'"'"' ]'

  # Regression test (CHANGELOG.md, fixed, "driver does not return"): the main task's end
  # is noticed only when the leftover task's timer fires, 2 s later.
  t0=$(ms)
  run -e 'spawn(function() sleep(2) print("never") end) sleep(0.01) print("main done")'
  dt=$(( $(ms) - t0 ))
  expect "a task left sleeping is cancelled at exit without waiting for its timer" \
    eval '[ "$rc" -eq 0 ] && [ "$out" = "main done" ] && [ "$dt" -lt 1000 ]'
  echo "     (took $dt ms)"

  # Regression test (CHANGELOG.md, fixed, "driver does not return"): the interrupted
  # main task ends at once, but lessonrun notices only when the other task's
  # 60 s timer fires.
  interrupt "sleep(math.huge) while another task sleeps" \
    'spawn(function() sleep(60) end) sleep(math.huge)'

  # Regression test (CHANGELOG.md, fixed, "Ctrl-C in blocking_sleep"): blocking_sleep
  # raises the cancellation itself but leaves the signal handler's hook set,
  # so a second, uncatchable cancellation fires right after the pcall.
  second "cancellation caught in blocking_sleep" \
    'local ok, e = pcall(blocking_sleep, 30) print("caught " .. tostring(iscancelled(e))) io.stdout:flush() while true do end'
}

normal_checks
regression_checks
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
