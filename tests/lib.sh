# Shared by the bash tests: counters and pass/fail reporting.
#   . "$(dirname "$0")/lib.sh"
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
