#!/usr/bin/env bash
# TLS against a loopback peer (openssl s_server with a self-signed
# certificate): verification is on by default, so fetch refuses it with
# kind "tls"; verify=false, asked for explicitly, accepts it.
#   tls_test.sh LESSONRUN
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LR=$(realpath "$1")
command -v openssl >/dev/null || { echo "openssl not found: skipped"; exit 77; }
TMP=$(mktemp -d)
cd "$TMP"
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 \
  -subj "/CN=127.0.0.1" >/dev/null 2>&1
start_server() {
  openssl s_server -accept "127.0.0.1:$1" -cert cert.pem -key key.pem -www -quiet </dev/null >server.log 2>&1 &
  pid=$!
}
pid=
trap 'kill $pid 2>/dev/null; rm -rf "$TMP"' EXIT
start_on_free_port start_server
"$LR" - "https://127.0.0.1:$port/" <<'LUA'
local url = ...
local passed, failed = 0, 0
local function check(name, cond, detail)
  if cond then passed = passed + 1 print("ok   " .. name)
  else failed = failed + 1 print("FAIL " .. name .. (detail and (": " .. tostring(detail)) or "")) end
end
for _, get in ipairs({ fetch, blocking_fetch }) do
  local ok, e = pcall(get, url, { timeout = 5 })
  check("a self-signed certificate is refused by default", not ok and errorkind(e) == "tls", e)
  local ok2, r = pcall(get, url, { timeout = 5, verify = false })
  check("verify = false accepts it", ok2 and r.status == 200, ok2 and r.status or r)
  -- (fetch reuses curl handles: none of verify=false may stay behind)
  for i = 1, 2 do
    local ok3, e3 = pcall(get, url)
    check("then a plain fetch verifies again (" .. i .. ")", not ok3 and errorkind(e3) == "tls", e3)
  end
end
print(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0)
LUA
