#!/usr/bin/env bash
# The built-in latency server from the outside: `lessonrun serve`, each
# endpoint checked with curl, 1,000 concurrent delays, loopback-only binding,
# and a clean exit on SIGINT.  Usage: server_test.sh path/to/lessonrun
set -euo pipefail

LR=${1:?usage: server_test.sh path/to/lessonrun}
command -v curl >/dev/null || { echo "SKIP: curl not found"; exit 77; }

tmp=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() {  # check NAME GOT WANT
  if [[ $2 == "$3" ]]; then ok; else bad "$1: got '$2', want '$3'"; fi
}
expect() {  # expect WHAT COMMAND...: the command must succeed
  local what=$1
  shift
  if "$@"; then ok; else bad "$what"; fi
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# JSON fields through lua5.4 + lua-cjson when present; grep otherwise.
if lua5.4 -e 'require "cjson"' 2>/dev/null; then have_cjson=1; else have_cjson=0; fi
json() {  # json FILE LUA-EXPR-ON-j  -> prints the value
  lua5.4 -e 'local j = require("cjson").decode(io.read("a")) print(('"$2"'))' <"$1"
}

# ---- CLI argument handling ---------------------------------------------------
rc=0; "$LR" serve --help >"$tmp/help" || rc=$?
check "serve --help exit" "$rc" 0
expect "serve --help does not mention --port" grep -q -- '--port' "$tmp/help"
for args in "--bogus" "--port" "--port 70000" "--port -1" "--port x" "--host not-an-ip"; do
  read -r -a words <<<"$args"
  rc=0; "$LR" serve "${words[@]}" >/dev/null 2>"$tmp/argerr" || rc=$?
  check "serve $args exit" "$rc" 2
  expect "serve $args printed nothing on stderr" test -s "$tmp/argerr"
done

# ---- start -------------------------------------------------------------------
"$LR" serve --port 0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 200); do [[ -s $tmp/out ]] && break; sleep 0.05; done
line=$(head -n 1 "$tmp/out")
re='^lessonrun: serving on http://127\.0\.0\.1:([0-9]+) \(Ctrl-C to stop\)$'
if [[ $line =~ $re ]]; then
  ok
else
  bad "first line: '$line'"
  exit 1
fi
port=${BASH_REMATCH[1]}
url="http://127.0.0.1:$port"

code() { curl -s -o "$tmp/body" -w '%{http_code}' "$@" || true; }

# ---- binding: loopback only ---------------------------------------------------
if command -v ss >/dev/null; then
  listening=$(ss -Hltn "sport = :$port" | awk '{print $4}')
  check "listening address" "$listening" "127.0.0.1:$port"
fi
rc=0; "$LR" serve --port "$port" >/dev/null 2>"$tmp/inuse" || rc=$?
check "second server on a taken port exits" "$rc" 1
expect "port taken: message '$(cat "$tmp/inuse")'" grep -q "cannot listen" "$tmp/inuse"

# ---- / ----------------------------------------------------------------------
check "GET /" "$(code "$url/")" 200
expect "index does not list /delay" grep -q '/delay/' "$tmp/body"

# ---- /get --------------------------------------------------------------------
check "GET /get" "$(code -H 'X-Lesson: one' "$url/get?a=1&b=two&a=3")" 200
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$url/get")
check "/get content type" "$ctype" "application/json"
if ((have_cjson)); then
  check "/get args.b" "$(json "$tmp/body" 'j.args.b')" "two"
  check "/get repeated arg" "$(json "$tmp/body" 'table.concat(j.args.a, ",")')" "1,3"
  check "/get header" "$(json "$tmp/body" 'j.headers["X-Lesson"]')" "one"
  check "/get method" "$(json "$tmp/body" 'j.method')" "GET"
  check "/get origin" "$(json "$tmp/body" 'j.origin')" "127.0.0.1"
  check "/get url" "$(json "$tmp/body" 'j.url')" "$url/get?a=1&b=two&a=3"
else
  expect "/get header echo" grep -q '"X-Lesson":[[:space:]]*"one"' "$tmp/body"
  expect "/get method" grep -q '"method":[[:space:]]*"GET"' "$tmp/body"
fi
check "POST /get" "$(code -X POST "$url/get")" 405

# ---- /anything ----------------------------------------------------------------
check "PUT /anything" "$(code -X PUT --data-binary 'hello body' "$url/anything/x?k=v")" 200
if ((have_cjson)); then
  check "/anything data" "$(json "$tmp/body" 'j.data')" "hello body"
  check "/anything method" "$(json "$tmp/body" 'j.method')" "PUT"
  check "/anything args" "$(json "$tmp/body" 'j.args.k')" "v"
else
  expect "/anything data" grep -q '"data":[[:space:]]*"hello body"' "$tmp/body"
fi

# ---- /headers -------------------------------------------------------------------
check "GET /headers" "$(code -H 'X-Thing: 7' "$url/headers")" 200
if ((have_cjson)); then
  check "/headers X-Thing" "$(json "$tmp/body" 'j.headers["X-Thing"]')" "7"
  check "/headers only headers" "$(json "$tmp/body" 'j.args == nil and j.url == nil')" "true"
else
  expect "/headers echo" grep -q '"X-Thing":[[:space:]]*"7"' "$tmp/body"
fi

# ---- /status ----------------------------------------------------------------------
for c in 200 201 204 301 404 418 500 503 599; do
  check "/status/$c" "$(code "$url/status/$c")" "$c"
done
for c in 99 600 1000 abc -1 ""; do
  check "/status/$c is refused" "$(code "$url/status/$c")" 400
done

# ---- /bytes ----------------------------------------------------------------------
check "/bytes/1234 size" "$(curl -s -o /dev/null -w '%{size_download}' "$url/bytes/1234")" 1234
check "/bytes/0 size" "$(curl -s -o /dev/null -w '%{size_download}' "$url/bytes/0")" 0
check "/bytes content type" "$(curl -s -o /dev/null -w '%{content_type}' "$url/bytes/10")" \
  "application/octet-stream"
check "/bytes/5000000 size" "$(curl -s -o /dev/null -w '%{size_download}' "$url/bytes/5000000")" 5000000
a=$(curl -s "$url/bytes/4096?seed=42" | cksum)
b=$(curl -s "$url/bytes/4096?seed=42" | cksum)
c=$(curl -s "$url/bytes/4096?seed=43" | cksum)
check "/bytes same seed, same bytes" "$a" "$b"
expect "/bytes: different seeds gave the same bytes" test "$a" != "$c"
check "/bytes/-5" "$(code "$url/bytes/-5")" 400
check "/bytes/abc" "$(code "$url/bytes/abc")" 400
check "/bytes bad seed" "$(code "$url/bytes/5?seed=x")" 400

# ---- /redirect ----------------------------------------------------------------------
check "/redirect/3 first hop" "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$url/redirect/3")" \
  "302 $url/redirect/2"
check "/redirect/3 followed" \
  "$(curl -s -L -o /dev/null -w '%{http_code} %{num_redirects} %{url_effective}' "$url/redirect/3")" \
  "200 3 $url/get"
check "/redirect/0" "$(code "$url/redirect/0")" 400

# ---- unknown paths --------------------------------------------------------------------
check "unknown path" "$(code "$url/no/such/thing")" 404
if ((have_cjson)); then
  check "404 body has error" "$(json "$tmp/body" 'type(j.error)')" "string"
else
  expect "404 body has no error" grep -q '"error"' "$tmp/body"
fi

# ---- /delay ---------------------------------------------------------------------------
t0=$(now_ms)
check "/delay/0.5" "$(code "$url/delay/0.5")" 200
dt=$(( $(now_ms) - t0 ))
expect "/delay/0.5 answered early, after ${dt} ms" test "$dt" -ge 450
expect "/delay/0.5 took ${dt} ms" test "$dt" -lt 3000
if ((have_cjson)); then
  check "/delay answers like /get" "$(json "$tmp/body" 'j.method .. " " .. j.url')" "GET $url/delay/0.5"
fi
for d in abc -1 1e2 inf 0x10 ""; do
  check "/delay/$d is refused" "$(code "$url/delay/$d")" 400
done

# 1,000 delays at once must take about one delay: the server waits on timers,
# never sleeps.  Old curl runs at most 300 transfers in parallel, so four
# curl processes share the thousand.
for k in 1 2 3 4; do
  for i in $(seq 250); do printf 'url = "%s/delay/1?n=%s-%s"\noutput = /dev/null\n' "$url" "$k" "$i"; done \
    >"$tmp/urls$k"
done
t0=$(now_ms)
cpids=()
for k in 1 2 3 4; do
  curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max 250 -w '%{http_code}\n' \
    -K "$tmp/urls$k" >"$tmp/codes$k" 2>/dev/null &
  cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || true; done
dt=$(( $(now_ms) - t0 ))
check "1000 concurrent /delay/1 all 200" "$(grep -c '^200$' "$tmp"/codes? | awk -F: '{s += $2} END {print s}')" 1000
expect "1000 concurrent /delay/1 took ${dt} ms" test "$dt" -lt 4000
echo "1000 concurrent /delay/1: ${dt} ms"

# ---- stopping with requests still waiting, then SIGINT ---------------------------------
curl -s -o /dev/null --max-time 10 "$url/delay/30" &
waiter=$!
sleep 0.3
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
pid=
check "exit status after SIGINT" "$rc" 0
wait "$waiter" || true
rc=0; curl -s -o /dev/null "$url/get" || rc=$?
expect "server still answers after SIGINT" test "$rc" -ne 0

echo "$passed passed, $failed failed"
((failed == 0))
