#!/usr/bin/env bash
# index.lua as a learner runs it (no arguments: the built-in server, 20
# requests of 0.2 s, 5 at a time), from a folder that is not the source tree:
# the blocking half takes about 4 s, the concurrent half about 0.8 s, and
# the concurrent half must be at least 3x faster (a generous bound: 5x is
# the ideal).  Then with arguments: a URL, a count and a limit.
#   index_test.sh LESSONRUN
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LR=$(realpath "$1")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
. "$HERE/lib.sh"  # check, ge, in_range; counts in passed and failed

set +e
"$LR" index.lua >out.txt 2>err.txt
rc=$?
set -e
echo "--- index.lua (exit $rc) ---"; cat out.txt err.txt; echo "---"
check "exit status 0" [ "$rc" -eq 0 ]
check "no warnings or errors on stderr" [ ! -s err.txt ]
check "says what it does" grep -q '^20 requests to http://127.0.0.1:[0-9]*/delay/0.2, at most 5 at once$' out.txt
sync=$(sed -n 's/^blocking_fetch, one by one: *\([0-9.]*\) s .*/\1/p' out.txt)
async=$(sed -n 's/^fetch, 5 at a time: *\([0-9.]*\) s .*/\1/p' out.txt)
speedup=$(sed -n 's/^speed-up: \([0-9.]*\)x$/\1/p' out.txt)
check "blocking half about 4 s ($sync)" in_range "${sync:-0}" 3.9 8
check "concurrent half about 0.8 s ($async)" in_range "${async:-0}" 0.75 2.0
check "concurrent half at least 3x faster ($speedup x)" ge "${speedup:-0}" 3
check "20 x 200 in both halves" [ "$(grep -c '(20 x 200)' out.txt)" -eq 2 ]

# a URL, a count and a limit (here the built-in server run on its own)
"$LR" serve --port 0 >serve.txt &
pid=$!
for _ in $(seq 50); do grep -q serving serve.txt 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*serving on \(http:[^ ]*\).*/\1/p' serve.txt)
"$LR" index.lua "$url/status/404" 6 3 >out2.txt 2>&1 || true
cat out2.txt
check "arguments: URL, count, limit" grep -q "^6 requests to $url/status/404, at most 3 at once$" out2.txt
check "status counts" [ "$(grep -c '(6 x 404)' out2.txt)" -eq 2 ]
check "no progress lines when stderr is not a terminal" [ "$(grep -c '/6' out2.txt)" -eq 0 ]

# on a terminal, progress on stderr: "  k/N" redrawn after each request
if script -qec true /dev/null >/dev/null 2>&1; then
  script -qec "$LR index.lua $url/get 4 2 >/dev/null" /dev/null >tty.txt 2>&1 || true
  check "progress on a terminal: 1/4 .. 3/4 in both halves" \
    [ "$(grep -ao '  [123]/4' tty.txt | wc -l)" -eq 6 ]
  check "the progress line is cleared at the end" grep -aq $'\e\[K' tty.txt
else
  echo "skipped: the progress check needs a pseudo-terminal (script(1) could not open one)"
fi
kill -INT "$pid"; wait "$pid" || true
[ "$failed" -eq 0 ] && echo "all index.lua checks passed"
[ "$failed" -eq 0 ]
