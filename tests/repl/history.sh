#!/usr/bin/env bash
# REPL history: an entry typed in one session is saved to $LESSONRUN_HISTORY
# on exit and recalled (Ctrl-P) in the next.
#   history.sh PTYDRIVE LESSONRUN
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LESSONRUN_HISTORY="$tmp/history"
"$1" "$dir/history_write.txt" -- "$2"
grep -qF 'return "remembered" .. "-entry"' "$LESSONRUN_HISTORY" ||
  { echo "FAIL: the entry is not in $LESSONRUN_HISTORY"; cat "$LESSONRUN_HISTORY"; exit 1; }
"$1" "$dir/history_read.txt" -- "$2"
echo "ok   history saved and recalled"
