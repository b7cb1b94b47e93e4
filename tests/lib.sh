# shellcheck shell=bash disable=SC2154  # pid is set by the caller's START_FN
# Shared by the bash tests: counters and pass/fail reporting.
#   . "$(dirname "$0")/../lib.sh"      (from a script in a folder of tests/)
# pass NAME; fail NAME [DETAIL...]; each script prints "N passed, N failed" at
# its end from $passed and $failed.
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
  shift
  for line in "$@"; do printf '  %s\n' "$line"; done
}
# check NAME COMMAND...: passes when the command succeeds
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}
# numbers (decimals too) compared by awk: ge X LO; in_range X LO HI
ge() { awk -v x="$1" -v lo="$2" 'BEGIN { exit !(x + 0 >= lo) }'; }
in_range() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x + 0 >= lo && x + 0 <= hi) }'; }

# start_on_free_port START_FN: START_FN PORT must start a loopback server in
# the background and set pid.  Ports come from 20000-32767, below Linux's
# ephemeral range, so an outgoing connection (the fetch benchmarks, other
# tests) cannot be holding one; a port that is taken after all (the server
# exits, e.g. nginx's "Address already in use") is retried with another.
# Sets port; returns 1 after 8 tries.
start_on_free_port() {
  local try
  for try in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 12768))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue  # someone listens
    "$1" "$port"
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
      sleep 0.1
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  done
  echo "no free port for the test server after $try tries" >&2
  return 1
}
