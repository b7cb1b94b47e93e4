#!/usr/bin/env bash
# HTTP/2 multiplexing where the server offers it: nginx on 127.0.0.1 with
# TLS and http2 (a self-signed certificate, so verify = false), 20 fetches at
# once.  They must all be HTTP/2, and nginx must see them on one connection
# ($connection in its log): the shared multi handle multiplexes them.
#   http2_test.sh LESSONRUN
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LR=$(realpath "$1")
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "nginx not found: skipped"; exit 77; }
command -v openssl >/dev/null || { echo "openssl not found: skipped"; exit 77; }
TMP=$(mktemp -d)
cd "$TMP"
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 \
  -subj "/CN=127.0.0.1" >/dev/null 2>&1
mkdir -p logs tmp
start_nginx() {
  local port=$1
  cat >nginx.conf <<CONF
daemon off;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log;
events { worker_connections 256; }
http {
  client_body_temp_path $TMP/tmp; proxy_temp_path $TMP/tmp; fastcgi_temp_path $TMP/tmp;
  uwsgi_temp_path $TMP/tmp; scgi_temp_path $TMP/tmp;
  log_format conn '\$connection \$server_protocol';
  access_log $TMP/logs/access.log conn;
  server {
    listen 127.0.0.1:$port ssl http2;
    ssl_certificate $TMP/cert.pem;
    ssl_certificate_key $TMP/key.pem;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
CONF
  "$NGINX" -p "$TMP" -c "$TMP/nginx.conf" &
  pid=$!
}
pid=
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$TMP"' EXIT
start_on_free_port start_nginx
"$LR" - "https://127.0.0.1:$port/" <<'LUA'
local url = ...
local fns = {}
for i = 1, 20 do fns[i] = function() return fetch(url .. i, { verify = false, timeout = 10 }) end end
local rs = gather(fns)
local v = {}
for i = 1, 20 do v[rs[i].http_version] = (v[rs[i].http_version] or 0) + 1 end
print("http versions:", json_encode(v))
os.exit(v["2"] == 20)
LUA
sleep 0.2
echo "nginx saw:"; sort logs/access.log | uniq -c
conns=$(awk '{print $1}' logs/access.log | sort -u | wc -l)
reqs=$(wc -l <logs/access.log)
if [ "$reqs" -eq 20 ] && [ "$conns" -eq 1 ] && grep -q "HTTP/2.0" logs/access.log; then
  echo "20 HTTP/2 requests on one connection: 1 passed, 0 failed"
else
  echo "$reqs requests on $conns connections: 0 passed, 1 failed"
  exit 1
fi
