#!/usr/bin/env bash
# Benchmarks lessonrun against its peers and prints figures and ratios.
#
#   bench/run.sh            # everything: sleep, then startup
#   bench/run.sh sleep      # N tasks sleeping 0.1 s, gathered
#   bench/run.sh startup    # lessonrun -e '' vs lua5.4 -e ''
#
# Environment:
#   BENCH_N="10000 100000 1000000"  task counts for the sleep benchmark
#   BENCH_REPEAT=3        runs per (N, program); the median is shown.  Default:
#                         3 for N <= 100000, 1 above (keeps the run < 3 min)
#   BENCH_PEERS="lessonrun asyncio node luv"   which programs to run
#   LESSONRUN=path        the executable (default: build/lessonrun, then
#                         build-bench/lessonrun)
#   LESSONRUN_B=path      a second lessonrun build to compare (A/B), shown
#                         as "lessonrun-b" and added to the peers
#   PYTHON, NODE, LUA     peers' interpreters (default: Debian's /usr/bin ones)
#   BENCH_RAW=file        also keep every raw RESULT line there
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
mode="${1:-all}"
case "$mode" in
  all | sleep | startup) ;;
  -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [all|sleep|startup]" >&2; exit 2 ;;
esac

if [[ -z "${LESSONRUN:-}" ]]; then
  for c in "$root/build/lessonrun" "$root/build-bench/lessonrun"; do
    [[ -x "$c" ]] && { LESSONRUN="$c"; break; }
  done
fi
if [[ -z "${LESSONRUN:-}" || ! -x "$LESSONRUN" ]]; then
  echo "bench: no lessonrun executable (build it with 'make', or set LESSONRUN=path)" >&2
  exit 1
fi
PYTHON="${PYTHON:-/usr/bin/python3}"  # Debian's, not a pyenv one from PATH
NODE="${NODE:-/usr/bin/node}"
LUA="${LUA:-$(command -v lua5.4 || echo /usr/bin/lua5.4)}"
BENCH_N="${BENCH_N:-10000 100000 1000000}"
BENCH_PEERS="${BENCH_PEERS:-lessonrun ${LESSONRUN_B:+lessonrun-b }asyncio node luv}"
TIMEOUT="${BENCH_TIMEOUT:-300}"

raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
failed=0

# ---- the sleep benchmark ---------------------------------------------------

have_peer() {
  case "$1" in
    lessonrun) return 0 ;;
    lessonrun-b) [[ -n "${LESSONRUN_B:-}" && -x "$LESSONRUN_B" ]] ;;
    asyncio) [[ -x "$PYTHON" ]] ;;
    node) [[ -x "$NODE" ]] ;;
    luv) [[ -x "$LUA" ]] && "$LUA" -e 'require "luv"' 2>/dev/null ;;
    *) return 1 ;;
  esac
}

cmd_of() {  # cmd_of impl n -> the command line (one word per line)
  case "$1" in
    lessonrun) printf '%s\n' "$LESSONRUN" "$here/sleep_lessonrun.lua" "$2" ;;
    lessonrun-b) printf '%s\n' "$LESSONRUN_B" "$here/sleep_lessonrun.lua" "$2" ;;
    asyncio) printf '%s\n' "$PYTHON" "$here/sleep_asyncio.py" "$2" ;;
    node) printf '%s\n' "$NODE" "$here/sleep_node.mjs" "$2" ;;
    luv) printf '%s\n' "$LUA" "$here/sleep_luv.lua" "$2" ;;
  esac
}

# Runs one program once; appends its RESULT line to $raw, or a FAIL line.
run_one() {
  local impl="$1" n="$2" out rc
  local -a cmd
  mapfile -t cmd < <(cmd_of "$impl" "$n")
  out="$(timeout "$TIMEOUT" "${cmd[@]}" 2>&1)"
  rc=$?
  local line
  line="$(grep '^RESULT ' <<<"$out" | tail -n 1)"
  if [[ $rc -ne 0 || -z "$line" || "$line" != *" n=$n done=$n "* ]]; then
    echo "FAIL impl=$impl n=$n rc=$rc" >>"$raw"
    printf '  %-9s N=%-8s FAILED (exit %s): %s\n' "$impl" "$n" "$rc" \
      "$(tail -n 3 <<<"$out" | tr '\n' ' ')" >&2
    failed=1
    return
  fi
  # label it as run here (lessonrun-b runs the same program as lessonrun)
  sed "s/ impl=[^ ]*/ impl=$impl/" <<<"$line" >>"$raw"
}

sleep_bench() {
  local peers=() p
  for p in $BENCH_PEERS; do
    if have_peer "$p"; then peers+=("$p"); else echo "bench: skipping $p (not installed)" >&2; fi
  done
  echo "== sleep: N tasks each sleep 0.1 s, then gathered; overhead = wall - 0.1 s"
  echo "   lessonrun: $LESSONRUN${LESSONRUN_B:+   lessonrun-b: $LESSONRUN_B}"
  echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local n reps r i k np=${#peers[@]}
  for n in $BENCH_N; do
    reps="${BENCH_REPEAT:-}"
    [[ -z "$reps" ]] && { if ((n <= 100000)); then reps=3; else reps=1; fi; }
    printf '   N=%s x%s:' "$n" "$reps" >&2
    # peers take turns: each round runs every program once, starting one
    # further along each time, so none always runs first (or last)
    for ((r = 0; r < reps; r++)); do
      for ((i = 0; i < np; i++)); do
        k=$(((i + r) % np))
        printf ' %s' "${peers[$k]}" >&2
        run_one "${peers[$k]}" "$n"
      done
    done
    echo >&2
  done
  report_sleep "${peers[@]}"
}

# Medians (overhead, RSS) of each (program, N), then the table, the ratios and
# the targets.
report_sleep() {
  awk -v peers="$*" -v nlist="$BENCH_N" '
    function field(s, k,   m) { return match(s, " " k "=[^ ]+") ? substr(s, RSTART + length(k) + 2, RLENGTH - length(k) - 2) : "" }
    function sortn(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
    /^RESULT / {
      im = field($0, "impl"); n = field($0, "n"); k = im SUBSEP n
      c = ++cnt[k]; ov[k, c] = field($0, "overhead") + 0; rss[k, c] = field($0, "rss_kb") / 1024
    }
    /^FAIL / { im = field($0, "impl"); n = field($0, "n"); bad[im, n]++ }
    END {
      np = split(peers, P, " "); nn = split(nlist, N, " ")
      printf "\n%-10s %-11s %12s %16s %10s %13s %10s\n", "N", "program", "overhead s", "(min..max)", "vs lr", "peak RSS MB", "vs lr"
      for (a = 1; a <= nn; a++) {
        n = N[a]
        for (b = 1; b <= np; b++) {
          im = P[b]; k = im SUBSEP n; c = cnt[k]
          if (!c) { printf "%-10s %-11s %12s\n", n, im, "FAILED"; continue }
          delete o; delete m
          for (i = 1; i <= c; i++) { o[i] = ov[k, i]; m[i] = rss[k, i] }
          sortn(o, c); sortn(m, c)
          mo = o[int((c + 1) / 2)]; mm = m[int((c + 1) / 2)]
          MO[im, n] = mo; MM[im, n] = mm
          range = c > 1 ? sprintf("(%.3f..%.3f)", o[1], o[c]) : ""
          ro = (im == "lessonrun" || !(("lessonrun", n) in MO)) ? "" : sprintf("%.2fx", mo / MO["lessonrun", n])
          rm = (im == "lessonrun" || !(("lessonrun", n) in MM)) ? "" : sprintf("%.2fx", mm / MM["lessonrun", n])
          printf "%-10s %-11s %12.3f %16s %10s %13.1f %10s%s\n", n, im, mo, range, ro, mm, rm, bad[im, n] ? "  (" bad[im, n] " failed)" : ""
        }
      }
      print ""
      for (a = 1; a <= nn; a++) {
        n = N[a]
        if (!(("lessonrun", n) in MO)) continue
        for (b = 1; b <= np; b++) {
          im = P[b]
          if (im == "lessonrun" || !((im, n) in MO)) continue
          printf "N=%s: %s overhead is %.2fx lessonrun'"'"'s (%.3f s vs %.3f s); peak RSS %.2fx (%.0f MB vs %.0f MB)\n",
            n, im, MO[im, n] / MO["lessonrun", n], MO[im, n], MO["lessonrun", n],
            MM[im, n] / MM["lessonrun", n], MM[im, n], MM["lessonrun", n]
        }
      }
      # the targets (MB = MiB, from VmHWM), for each build of lessonrun
      for (b = 1; b <= np; b++) {
        im = P[b]
        if (im !~ /^lessonrun/) continue
        print ""
        if ((im, 100000) in MO) {
          printf "%s: target N=100k overhead <= 0.15 s: %.3f s  %s\n", im, MO[im, 100000], MO[im, 100000] <= 0.15 ? "MET" : "MISSED"
          printf "%s: target N=100k peak RSS <= 130 MB: %.1f MB  %s\n", im, MM[im, 100000], MM[im, 100000] <= 130 ? "MET" : "MISSED"
        }
        if ((im, 1000000) in MO) {
          printf "%s: target N=1M overhead < 2 s:       %.3f s  %s\n", im, MO[im, 1000000], MO[im, 1000000] < 2 ? "MET" : "MISSED"
          printf "%s: target N=1M peak RSS < 1.2 GB:    %.1f MB  %s\n", im, MM[im, 1000000], MM[im, 1000000] < 1.2 * 1024 ? "MET" : "MISSED"
        }
      }
    }' "$raw"
}

# ---- startup ----------------------------------------------------------------

startup_bench() {
  echo "== startup: lessonrun -e '' vs lua5.4 -e ''"
  local -a names=("lessonrun -e ''") cmds=("$LESSONRUN -e ''")
  if [[ -n "${LESSONRUN_B:-}" ]]; then names+=("lessonrun-b -e ''"); cmds+=("$LESSONRUN_B -e ''"); fi
  names+=("lua5.4 -e ''"); cmds+=("$LUA -e ''")
  # the floor: starting any dynamically linked program at all on this machine
  names+=("true (the floor)"); cmds+=("$(type -P true || echo /bin/true)")
  local -a mean=()
  local i
  if command -v hyperfine >/dev/null 2>&1; then
    local json runs="${BENCH_STARTUP_RUNS:-300}"
    json="$(mktemp)"
    hyperfine -N --warmup 20 --runs "$runs" --export-json "$json" "${cmds[@]}" >/dev/null 2>&1 ||
      { echo "hyperfine failed" >&2; rm -f "$json"; failed=1; return; }
    # mean, stddev and median in ms: one line per command, in order
    local -a ms
    mapfile -t ms < <(awk -F'[:,]' '/"mean"|"stddev"|"median"/ { gsub(/ /, "", $2); printf "%s ", $2 * 1000 } /"exit_codes"/ { print "" }' "$json")
    rm -f "$json"
    printf '   (hyperfine -N, %s runs each after 20 warm-ups)\n' "$runs"
    for i in "${!names[@]}"; do
      local m sd med
      read -r m sd med <<<"${ms[$i]}"
      mean+=("$m")
      printf '%-22s %8.2f ms mean  +- %.2f   median %.2f ms\n' "${names[$i]}" "$m" "$sd" "$med"
    done
  else
    local runs=200 t0 t1 k
    printf '   (loop of %s runs each, date +%%s%%N)\n' "$runs"
    for i in "${!names[@]}"; do
      t0=$(date +%s%N)
      for ((k = 0; k < runs; k++)); do eval "${cmds[$i]}"; done
      t1=$(date +%s%N)
      mean+=("$(awk -v d=$((t1 - t0)) -v n=$runs 'BEGIN { printf "%.3f", d / n / 1e6 }')")
      printf '%-22s %8.2f ms\n' "${names[$i]}" "${mean[$i]}"
    done
  fi
  local lua_ms="${mean[-2]}"
  for i in "${!names[@]}"; do
    [[ "${names[$i]}" == lua5.4* || "${names[$i]}" == true* ]] && continue
    awk -v n="${names[$i]%% *}" -v a="${mean[$i]}" -v b="$lua_ms" 'BEGIN {
      printf "%s startup is %.2fx lua5.4'"'"'s (%.2f ms vs %.2f ms)\n", n, a / b, a, b }'
  done
  awk -v a="${mean[0]}" -v f="${mean[-1]}" 'BEGIN {
    printf "target startup <= 3 ms: %.2f ms  %s (starting /bin/true takes %.2f ms here)\n", a, a <= 3 ? "MET" : "MISSED", f }'
}

if [[ "$mode" == all || "$mode" == sleep ]]; then sleep_bench; fi
if [[ "$mode" == all ]]; then echo; fi
if [[ "$mode" == all || "$mode" == startup ]]; then startup_bench; fi
[[ -n "${BENCH_RAW:-}" ]] && cp "$raw" "$BENCH_RAW"
exit "$failed"
