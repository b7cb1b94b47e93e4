#!/usr/bin/env bash
# Runs one program of examples/ and checks what it prints and how long it
# takes (each example shows something that can go wrong).
#   examples_test.sh NAME LESSONRUN EXAMPLES_DIR EMBED_BINARY
# Checks are written as strings that expect/check eval later, when the
# variables they name are set:
# shellcheck disable=SC2016,SC2034
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NAME=$1 LR=$2 EX=$3 EMBED=$4
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

t0=$(date +%s%N)
set +e
if [ "$NAME" = embed ]; then "$EMBED" >out 2>err; else "$LR" "$EX/$NAME.lua" >out 2>err; fi
rc=$?
set -e
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "--- $NAME (exit $rc, $ms ms) ---"
cat out err
echo "---"
# the timings the code controls: the same program on the virtual clock,
# where sleeps end exactly on time (a busy machine cannot move them)
if [ "$NAME" != embed ]; then
  "$LR" --virtual-time "$EX/$NAME.lua" >vout 2>verr || true
  echo "--- $NAME --virtual-time ---"
  cat vout verr
  echo "---"
fi

. "$HERE/../lib.sh"  # check, ge, in_range; counts in passed and failed
line() { sed -n "$1p" out; }
# in_range X LO HI: LO <= X <= HI, decimals allowed

check "exit status 0" [ "$rc" -eq 0 ]
case "$NAME" in
  embed)
    check "gather and sleep work in an embedded chunk" grep -q "^tea and toast from C in " out
    secs=$(sed -n 's/^tea and toast from C in \([0-9.]*\) s$/\1/p' out)
    # one after the other can never take less than 0.6 s: under it, they overlapped
    check "the two 0.3 s sleeps overlapped (${secs:-?} s, under 0.6)" eval 'in_range "${secs:-0}" 0.3 0.6 && [ "$secs" != 0.6 ]'
    check "an error comes back with its message" grep -q "^error, as expected: kitchen:1: burnt toast$" out
    check "... and the task's traceback" grep -q "stack traceback of task" out
    check "nothing on stderr" [ ! -s err ]
    ;;
  timeout_race)
    check "a job within its deadline returns its result" [ "$(line 1)" = "small file downloaded" ]
    check "a job past its deadline is cancelled" [ "$(line 2)" = $'nil\ttimed out' ]
    check "a job's own error is passed on" [ "$(line 3)" = $'false\tdisk full' ]
    secs=$(sed -n 's/^took \([0-9.]*\) s, not 30$/\1/p' out)
    check "the slow job was stopped at its deadline (${secs:-?} s)" in_range "${secs:-0}" 0.5 3
    check "on the virtual clock: 0.1 s for the small file, then exactly the 0.5 s deadline" grep -q "^took 0.6 s, not 30$" vout
    ;;
  worker_pool)
    check "results in order" [ "$(line 1)" = "results: 1 4 9 16 25 36 49 64" ]
    check "at most 3 at once" grep -q "^at most 3 at once," out
    # 8 jobs of 0.1 s, 3 at a time: 3 rounds (all at once: 0.1 s, one by one: 0.8 s)
    secs=$(sed -n 's/^at most [0-9]* at once, \([0-9.]*\) s in all.*/\1/p' out)
    check "under one by one's 0.8 s (${secs:-?} s)" eval 'in_range "${secs:-0}" 0.3 0.8 && [ "$secs" != 0.8 ]'
    check "on the virtual clock: exactly 3 rounds of 0.1 s" grep -q "^at most 3 at once, 0.3 s in all" vout
    ;;
  pipeline)
    check "results used in order" \
      eval '[ "$(head -n5 out)" = "$(printf "page %d rendered\n" 1 2 3 4 5)" ]'
    # the slowest page takes 0.25 s; one after another would be 0.75 s
    secs=$(sed -n 's/^\([0-9.]*\) s in all.*/\1/p' out)
    check "under the sum's 0.75 s (${secs:-?} s)" eval 'in_range "${secs:-0}" 0.25 0.75 && [ "$secs" != 0.75 ]'
    check "on the virtual clock: exactly the slowest page's 0.25 s" grep -q "^0.25 s in all" vout
    ;;
  *)
    echo "no checks for example $NAME"
    exit 2
    ;;
esac
[ "$failed" -eq 0 ]
