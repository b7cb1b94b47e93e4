#!/usr/bin/env bash
# One fuzz target for a bounded time:  run.sh FUZZ_EXE SOURCE_DIR NAME
# The seed corpus (SOURCE_DIR/corpus/NAME, read only) and what this build's
# runs found before (fuzz/NAME/corpus in the build folder) are the start;
# new inputs go to the latter.  A crash, leak, timeout or out-of-memory
# fails the run; its reproducer is kept in fuzz/NAME/ and printed, and
# `FUZZ_EXE REPRODUCER` replays it.
#   LR_FUZZ_SECONDS  time for the target (default 20)
#   LR_FUZZ_ARGS     more libFuzzer options (e.g. -jobs=2, -runs=N)
set -u
exe=$1 src=$2 name=$3
secs=${LR_FUZZ_SECONDS:-20}
out="fuzz/$name"
mkdir -p "$out/corpus"
dict=()
[ -f "$src/$name.dict" ] && dict=(-dict="$src/$name.dict")
seeds=()
[ -d "$src/corpus/$name" ] && seeds=("$src/corpus/$name")
# shellcheck disable=SC2086  # LR_FUZZ_ARGS is words
"$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$out/" "${dict[@]}" ${LR_FUZZ_ARGS:-} \
  "$out/corpus" "${seeds[@]}" >"$out/log" 2>&1
rc=$?
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/log" | grep -o '[0-9]*$')
cov=$(grep -o 'cov: [0-9]*' "$out/log" | tail -n 1)
if [ "$rc" -ne 0 ]; then
  tail -n 60 "$out/log"
  for f in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*; do
    [ -e "$f" ] && echo "fuzz.$name: reproducer $(realpath "$f") (replay: $exe $(realpath "$f"))"
  done
  echo "fuzz.$name: FAILED (exit $rc) after ${execs:-?} executions"
  exit 1
fi
echo "fuzz.$name: ${execs:-?} executions in ${secs} s, ${cov:-cov: ?} edges, corpus $(ls "$out/corpus" | wc -l) inputs, no crash"
