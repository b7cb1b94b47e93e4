#!/usr/bin/env bash
# The two lessons as a learner runs them, from a folder that is not the
# source tree (so the lookup among the lessons is used):
#   lessons_test.sh LESSONRUN sync|async
# sync.lua: A, B, C one after another, total about 6 s (1 + 2 + 3).
# async.lua: A, B, C started together, finishing in order, total about 3 s.
# Checks are written as strings that expect/check eval later, when the
# variables they name are set:
# shellcheck disable=SC2016,SC2034
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LR=$(realpath "$1")
LESSON=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

. "$HERE/../lib.sh"  # check, ge, in_range; counts in passed and failed
# in_range X LO HI: LO <= X <= HI, decimals allowed

t0=$(date +%s%N)
set +e
"$LR" "$LESSON.lua" >out.txt 2>err.txt
rc=$?
set -e
wall=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
echo "--- output of $LESSON.lua (exit $rc, $wall s) ---"
cat out.txt err.txt
echo "---"

check "exit status 0" [ "$rc" -eq 0 ]
check "nothing on stderr" [ ! -s err.txt ]

total=$(sed -n 's/^Total time: \([0-9.]*\) seconds$/\1/p' out.txt)
check "the last line is 'Total time: N seconds'" \
  eval '[ -n "$total" ] && tail -n1 out.txt | grep -q "^Total time: "'
# the task lines, without the total
grep '^Task ' out.txt >tasks.txt || true

case "$LESSON" in
  sync)
    printf '%s\n' "Task A started" "Task A finished after 1 seconds" \
      "Task B started" "Task B finished after 2 seconds" \
      "Task C started" "Task C finished after 3 seconds" >want.txt
    check "each task starts after the previous one finished" diff -u want.txt tasks.txt
    check "total $total s is within [5.8, 7.5] (the waits add up)" in_range "$total" 5.8 7.5
    check "wall time $wall s is within [5.8, 8.0]" in_range "$wall" 5.8 8.0
    ;;
  async)
    check "six task lines" [ "$(wc -l <tasks.txt)" -eq 6 ]
    check "all three 'started' lines come before any 'finished' line" \
      eval '[ "$(head -n3 tasks.txt | sort)" = "$(printf "%s\n" "Task A started" "Task B started" "Task C started")" ]'
    check "the tasks finish in order of their waits: A (1 s), B (2 s), C (3 s)" \
      eval '[ "$(tail -n3 tasks.txt)" = "$(printf "%s\n" "Task A finished after 1 seconds" "Task B finished after 2 seconds" "Task C finished after 3 seconds")" ]'
    check "total $total s is within [2.8, 4.0] (the waits overlap)" in_range "$total" 2.8 4.0
    check "wall time $wall s is within [2.8, 4.5]" in_range "$wall" 2.8 4.5
    ;;
  *)
    echo "unknown lesson $LESSON"
    exit 2
    ;;
esac
[ "$failed" -eq 0 ]
