#!/usr/bin/env bash
# Out of memory: the lessons, the examples, a fetch/offload workload
# (oom_workload.lua) and many tasks left when memory runs out
# (oom_tasks.lua), each run with too little memory at many points.  Every
# run must end with status 0 or 1 (1: with a message), within 30 s, and
# never abort, PANIC or upset a sanitizer.
#   oom_test.sh LESSONRUN SOURCE_DIR
# In a debug build (LR_FAIL_ALLOC_AFTER works: core/alloc.c) allocation N
# fails, for N spread log-scale from 1 to the run's allocation count; else
# (a Release build) `ulimit -v` is swept from where lessonrun cannot start
# to where the run succeeds.  Sanitized builds cannot use `ulimit -v` (the
# shadow memory is reserved up front), so they only do the first.
# OOM_POINTS=N, OOM_KB_POINTS=N: sweep points per workload (default 100
# allocation counts, 48 limits).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LR=$(realpath "$1")
SRC=$(realpath "$2")
N_POINTS=${OOM_POINTS:-100} KB_POINTS=${OOM_KB_POINTS:-48}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"  # the lessons are found by lessonrun's own lookup

. "$HERE/../lib.sh"  # pass, fail; counts in passed and failed

workloads=(
  "--virtual-time sync.lua"
  "--virtual-time async.lua"
  "index.lua - 2 2"
  "cpu.lua 20000"
  "$SRC/tests/oom/oom_workload.lua"
  "$SRC/tests/oom/oom_tasks.lua"
)
for ex in "$SRC"/examples/*.lua; do workloads+=("--virtual-time $ex"); done

runs=0
bad=0
slowest=0
slowest_run=
# attempt MODE VALUE WORKLOAD: one run, MODE "n" (LR_FAIL_ALLOC_AFTER),
# "worker_n" (LR_FAIL_OFFLOAD_ALLOC_AFTER: in each offload worker's state) or
# "kb" (ulimit -v); sets rc and fails the test if the run misbehaved
attempt() {
  local mode=$1 value=$2 w=$3 what t ms
  runs=$((runs + 1))
  t=$(date +%s%N)
  # shellcheck disable=SC2086  # the workload is words
  if [ "$mode" = n ]; then
    LR_FAIL_ALLOC_AFTER=$value timeout -k 5 30 "$LR" $w >out 2>err
  elif [ "$mode" = worker_n ]; then
    LR_FAIL_OFFLOAD_ALLOC_AFTER=$value timeout -k 5 30 "$LR" $w >out 2>err
  else
    (ulimit -v "$value" && exec timeout -k 5 30 "$LR" $w) >out 2>err
  fi
  rc=$?
  ms=$((($(date +%s%N) - t) / 1000000))
  [ "$ms" -gt "$slowest" ] && slowest=$ms slowest_run="$w with $mode=$value"
  what="$w with $mode=$value: exit $rc"
  if [ "$rc" -eq 127 ] && [ "$mode" = kb ]; then
    rc=1  # the dynamic loader's ("error while loading shared libraries", "cannot allocate TLS"...)
  fi
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail "$what (no end within 30 s)" "$(tail -n 5 err)"
  elif [ "$rc" -gt 1 ]; then
    fail "$what (0 or 1 expected)" "$(tail -n 5 err)"
  elif grep -q -E 'PANIC|Aborted|AddressSanitizer|LeakSanitizer|runtime error:' err; then
    fail "$what (a crash or sanitizer report on stderr)" "$(grep -m 3 -E 'PANIC|Aborted|Sanitizer|runtime error:' err)"
  elif [ "$rc" -eq 1 ] && [ ! -s err ]; then
    fail "$what (status 1 without a message)"
  else
    return 0
  fi
  bad=$((bad + 1))
  return 1
}

# threshold MODE LO HI WORKLOAD: sets top to the smallest value (within 2%)
# at which the run succeeds, LO failing and HI succeeding; every try is a
# checked run
threshold() {
  local mode=$1 lo=$2 hi=$3 w=$4 mid
  while [ $((hi - lo)) -gt $((hi / 50 + 1)) ]; do
    mid=$(((lo + hi) / 2))
    attempt "$mode" "$mid" "$w"
    if [ "$rc" -eq 0 ]; then hi=$mid; else lo=$mid; fi
  done
  top=$hi
}

# sweep MODE FROM TO WORKLOAD: POINTS runs from FROM to TO, log-spaced for
# allocation counts (the early ones are start-up, each a different path),
# evenly for limits; sets ok to the count of runs that succeeded
sweep() {
  local mode=$1 from=$2 to=$3 w=$4 v n=$N_POINTS
  ok=0
  [ "$mode" = kb ] && n=$KB_POINTS
  for v in $(awk -v a="$from" -v b="$to" -v n="$n" -v lin="$([ "$mode" = kb ] && echo 1)" 'BEGIN {
      for (i = 0; i < n; i++) {
        v = int((lin ? a + (b - a) * i / (n - 1) : a * exp(log(b / a) * i / (n - 1))) + 0.5)
        if (v != last) print v; last = v } }'); do
    attempt "$mode" "$v" "$w"
    [ "$rc" -eq 0 ] && ok=$((ok + 1))
  done
}

# lookup WORKLOAD: the script's file (a lesson by name, else the path)
lookup() {
  local a
  for a in $1; do
    case "$a" in
      -*) ;;
      */*) echo "$a"; return ;;
      *) echo "$SRC/scripts/$a"; return ;;
    esac
  done
}

t0=$(date +%s)
debug=0  # a debug build honours LR_FAIL_ALLOC_AFTER: with 0 it cannot even start
LR_FAIL_ALLOC_AFTER=0 "$LR" -e '' 2>/dev/null || debug=1
sanitized=${LR_SANITIZED:-0}
ldd "$LR" 2>/dev/null | grep -E 'libasan|libubsan' >/dev/null && sanitized=1  # (no -q: see cli_test.sh)
echo "debug allocator: $debug, sanitized: $sanitized"

if [ "$sanitized" = 0 ]; then
  threshold kb 512 65536 "-e x=1"  # where lessonrun starts at all
  floor=$((top * 9 / 10))
fi
for w in "${workloads[@]}"; do
  # shellcheck disable=SC2086  # the workload is words
  if ! "$LR" $w >out 2>err; then
    fail "$w runs without a limit" "$(tail -n 5 err)"
    continue
  fi
  if [ "$debug" = 1 ]; then
    bad=0
    hi=1000
    while attempt n "$hi" "$w" && [ "$rc" -ne 0 ] && [ "$hi" -lt 100000000 ]; do
      hi=$((hi * 4))
    done
    threshold n 0 "$hi" "$w"
    sweep n 1 "$top" "$w"
    [ "$bad" -eq 0 ] && pass "$w: allocation N fails, N = 1..$top ($ok of the runs succeeded)"
    if grep -q offload "$(lookup "$w")"; then  # and in the worker threads' states
      bad=0
      threshold worker_n 0 100000 "$w"
      N_POINTS=30 sweep worker_n 1 "$top" "$w"
      [ "$bad" -eq 0 ] && pass "$w: a worker's allocation N fails, N = 1..$top ($ok of the runs succeeded)"
    fi
  fi
  if [ "$sanitized" = 0 ]; then
    bad=0
    threshold kb "$floor" 1048576 "$w"
    sweep kb "$floor" $((top + top / 20)) "$w"
    [ "$bad" -eq 0 ] && pass "$w: ulimit -v from $floor to $((top + top / 20)) KB ($ok of the runs succeeded)"
  fi
done
echo "$runs runs in $(($(date +%s) - t0)) s; the slowest: $slowest ms ($slowest_run)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
