#!/usr/bin/env bash
# index.lua as a learner runs it (no arguments: the built-in server, 20
# requests of 0.2 s, 5 at a time), from a folder that is not the source tree:
# the blocking half takes about 4 s, the concurrent half about 0.8 s.  That
# the fetches ran at the same time is read from a trace (intervals that
# overlap, at most the limit at once), never from a ratio of wall times a
# busy machine can change.  Then with arguments: a URL, a count and a limit.
#   index_test.sh LESSONRUN
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LR=$(realpath "$1")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
. "$HERE/../lib.sh"  # check, ge, in_range; counts in passed and failed

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
check "the speed-up line ($speedup x)" grep -q '^speed-up: [0-9]*\.[0-9]x$' out.txt
check "20 x 200 in both halves" [ "$(grep -c '(20 x 200)' out.txt)" -eq 2 ]

# overlap, from the trace's own timestamps: the most requests in flight at
# one instant, for each half (10 requests, 5 at a time)
"$LR" --trace=trace.json index.lua - 10 5 >out3.txt 2>err3.txt || true
peaks=$("$LR" -e '
local d = json_decode(assert(io.open("trace.json")):read("a"))
local open, spans = {}, {}
for _, e in ipairs(d.traceEvents) do  -- B/E pairs, in order on each task (tid)
  if e.ph == "B" then open[e.tid] = e
  elseif e.ph == "E" and open[e.tid] then
    spans[#spans + 1] = { open[e.tid].name, open[e.tid].ts, e.ts }
    open[e.tid] = nil
  end
end
local function peak(name)  -- ends sort before starts at the same instant: touching is not overlap
  local ev, n, most = {}, 0, 0
  for _, s in ipairs(spans) do
    if s[1] == name then ev[#ev + 1] = { s[2], 1 }; ev[#ev + 1] = { s[3], -1 } end
  end
  table.sort(ev, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  for _, x in ipairs(ev) do n = n + x[2]; most = math.max(most, n) end
  return most
end
print(peak("blocking_fetch") .. " " .. peak("wait: fetch"))' 2>&1) || true
check "traced: blocking_fetch one at a time, fetch 5 in flight at once (the limit) ($peaks)" \
  [ "$peaks" = "1 5" ]

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
