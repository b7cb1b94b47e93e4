#!/usr/bin/env bash
# Benchmarks lessonrun against its peers and prints figures and ratios.
#
#   bench/run.sh            # everything: sleep, then startup
#   bench/run.sh sleep      # N tasks sleeping 0.1 s, gathered
#   bench/run.sh startup    # lessonrun -e '' vs lua5.4 -e ''
#   bench/run.sh cpu        # scripts/cpu.lua's shape: two CPU loops one after
#                           # another vs offloaded to two threads (target >= 1.7x
#                           # on 2 idle cores; BENCH_CPU_N, BENCH_CPU_ROUNDS)
#   bench/run.sh alloc      # peak RSS when freed tables' memory must serve
#                           # strings, vs lua5.4 (target <= 1.0x lua5.4's peak)
#   bench/run.sh fetch      # 10k GETs from a loopback nginx, 100 in flight,
#                           # vs the C ceiling, curl, aiohttp, Node (not in
#                           # "all": it starts nginx and takes ~1 min)
#   bench/run.sh lesson     # the lesson's shape alone (fetch_lesson.lua, cold
#                           # and warm; BENCH_LESSON_REPEAT runs), no nginx
#   bench/run.sh ab OPTION  # A/B one speed trick (LR_ALLOC_ARENAS, LR_PREFAULT,
#                           # LR_PRELOAD): builds build-ab/ON and build-ab/OFF
#                           # (BENCH_AB_FLAGS: more -D flags for both; for
#                           # LR_PREFAULT the arenas are on in both), then
#                           # runs them in turns: sleep (the allocator and the
#                           # prefault helper) or lesson (the preload), 5 runs
#
# Environment:
#   BENCH_N="10000 100000 1000000"  task counts for the sleep benchmark
#   BENCH_REPEAT=3        runs per (N, program), 5 for ab; the median is shown (with
#                         min..max).  3 at every N: at 1M a run's time is mostly
#                         page faults, which vary 2-3x between runs on this VM;
#                         the whole run then takes ~5 min (BENCH_REPEAT=1: ~2)
#   BENCH_PEERS="lessonrun asyncio node luv coroutines memfloor"   which programs
#                         (coroutines: N bare coroutines parked and resumed
#                         in a plain lua5.4, no runtime; memfloor:
#                         bench/memfloor.c, no tasks, only the fresh memory
#                         N tasks need: this machine's floor)
#   LESSONRUN=path        the executable (default: build/lessonrun, then
#                         build-bench/lessonrun)
#   LESSONRUN_B=path      a second lessonrun build to compare (A/B), shown
#                         as "lessonrun-b" and added to the peers
#   PYTHON, NODE, LUA     peers' interpreters (default: Debian's /usr/bin ones)
#   BENCH_RAW=file        also keep every raw RESULT line there
#   fetch: BENCH_FETCH_N=10000, BENCH_FETCH_LIMIT=100, BENCH_FETCH_REPEAT=3
#          rounds, BENCH_FETCH_PEERS="ceiling lessonrun-sem lessonrun-all
#          curl aiohttp node", BENCH_LESSON_REPEAT=5, NGINX, CURL (paths)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
mode="${1:-all}"
usage="usage: $0 [all|sleep|startup|fetch|lesson|cpu|alloc|ab LR_ALLOC_ARENAS|LR_PREFAULT|LR_PRELOAD]"
case "$mode" in
  all | sleep | startup | fetch | lesson | cpu | alloc) ;;
  ab)
    case "${2:-}" in
      LR_ALLOC_ARENAS | LR_PREFAULT | LR_PRELOAD) ;;
      *) echo "$usage" >&2; exit 2 ;;
    esac ;;
  -h | --help) sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

# ab: the option ON (shown as lessonrun) and OFF (lessonrun-b), built here,
# everything else as configured by default (or by BENCH_AB_FLAGS)
if [[ "$mode" == ab ]]; then
  ab_opt="$2"
  ab_flags="${BENCH_AB_FLAGS:-}"
  [[ "$ab_opt" == LR_PREFAULT ]] && ab_flags="-DLR_ALLOC_ARENAS=ON $ab_flags"  # (it prefaults the arenas)
  mkdir -p "$root/build-ab"
  for v in ON OFF; do
    rm -f "$root/build-ab/$v/CMakeCache.txt"  # (no option left over from the last A/B)
    # shellcheck disable=SC2086  # ab_flags is words
    if ! { cmake -S "$root" -B "$root/build-ab/$v" -DCMAKE_BUILD_TYPE=Release $ab_flags "-D$ab_opt=$v" &&
      cmake --build "$root/build-ab/$v" -j2 --target lessonrun_exe; } >"$root/build-ab/$v.log" 2>&1; then
      echo "bench: building with -D$ab_opt=$v failed (see build-ab/$v.log)" >&2
      exit 1
    fi
  done
  LESSONRUN="$root/build-ab/ON/lessonrun"
  LESSONRUN_B="$root/build-ab/OFF/lessonrun"
  BENCH_PEERS="${BENCH_PEERS:-lessonrun lessonrun-b coroutines}"
  BENCH_REPEAT="${BENCH_REPEAT:-5}"
  BENCH_LESSON_REPEAT="${BENCH_LESSON_REPEAT:-5}"
fi

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
BENCH_PEERS="${BENCH_PEERS:-lessonrun ${LESSONRUN_B:+lessonrun-b }asyncio node luv coroutines memfloor}"
TIMEOUT="${BENCH_TIMEOUT:-300}"

raw="$(mktemp)"
tmpdir="$(mktemp -d)"
trap 'rm -rf "$raw" "$tmpdir"' EXIT
failed=0

# ---- the sleep benchmark ---------------------------------------------------

have_peer() {
  case "$1" in
    lessonrun) return 0 ;;
    lessonrun-b) [[ -n "${LESSONRUN_B:-}" && -x "$LESSONRUN_B" ]] ;;
    asyncio) [[ -x "$PYTHON" ]] ;;
    node) [[ -x "$NODE" ]] ;;
    luv) [[ -x "$LUA" ]] && "$LUA" -e 'require "luv"' 2>/dev/null ;;
    coroutines) [[ -x "$LUA" ]] ;;
    memfloor) [[ -x "$tmpdir/memfloor" ]] ;;
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
    coroutines) printf '%s\n' "$LUA" "$here/sleep_coroutines.lua" "$2" ;;
    memfloor) printf '%s\n' "$tmpdir/memfloor" "$2" ;;
  esac
}

# Runs one program once; appends its RESULT line to $raw, with proc= its
# whole process's wall time, or a FAIL line.
run_one() {
  local impl="$1" n="$2" out rc t0 t1
  local -a cmd
  mapfile -t cmd < <(cmd_of "$impl" "$n")
  t0=$(date +%s%N)
  out="$(timeout "$TIMEOUT" "${cmd[@]}" 2>&1)"
  rc=$?
  t1=$(date +%s%N)
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
  sed "s/ impl=[^ ]*/ impl=$impl/; s/\$/ proc=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.6f", d / 1e9 }')/" <<<"$line" >>"$raw"
}

sleep_bench() {
  local peers=() p
  # the memory floor (bench/memfloor.c), compiled here (no binary in the tree)
  [[ " $BENCH_PEERS " == *" memfloor "* ]] &&
    cc -O2 -pthread -o "$tmpdir/memfloor" "$here/memfloor.c" 2>/dev/null
  for p in $BENCH_PEERS; do
    if have_peer "$p"; then peers+=("$p"); else echo "bench: skipping $p (not installed)" >&2; fi
  done
  echo "== sleep: N tasks each sleep 0.1 s, then gathered; overhead = wall - 0.1 s"
  echo "   lessonrun: $LESSONRUN${LESSONRUN_B:+   lessonrun-b: $LESSONRUN_B}"
  echo "   $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local n reps r i k np=${#peers[@]}
  for n in $BENCH_N; do
    reps="${BENCH_REPEAT:-}"
    [[ -z "$reps" ]] && reps=3
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
    function floor_note(n) { return ("memfloor", n) in MO ? sprintf(" (the memory floor alone: %.3f s)", MO["memfloor", n]) : "" }
    function sortn(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
    /^RESULT / {
      im = field($0, "impl"); n = field($0, "n"); k = im SUBSEP n
      c = ++cnt[k]; ov[k, c] = field($0, "overhead") + 0; rss[k, c] = field($0, "rss_kb") / 1024; pr[k, c] = field($0, "proc") + 0
    }
    /^FAIL / { im = field($0, "impl"); n = field($0, "n"); bad[im, n]++ }
    END {
      np = split(peers, P, " "); nn = split(nlist, N, " ")
      printf "\n%-8s %-11s %11s %15s %7s %11s %15s %7s %10s\n", "N", "program", "overhead s", "(min..max)", "vs lr", "peak RSS MB", "(min..max)", "vs lr", "process s"
      for (a = 1; a <= nn; a++) {
        n = N[a]
        for (b = 1; b <= np; b++) {
          im = P[b]; k = im SUBSEP n; c = cnt[k]
          if (!c) { printf "%-8s %-11s %11s\n", n, im, "FAILED"; continue }
          delete o; delete m; delete q
          for (i = 1; i <= c; i++) { o[i] = ov[k, i]; m[i] = rss[k, i]; q[i] = pr[k, i] }
          sortn(o, c); sortn(m, c); sortn(q, c)
          mo = o[int((c + 1) / 2)]; mm = m[int((c + 1) / 2)]
          MO[im, n] = mo; MM[im, n] = mm; MP[im, n] = q[int((c + 1) / 2)]
          range = c > 1 ? sprintf("(%.3f..%.3f)", o[1], o[c]) : ""
          mrange = c > 1 ? sprintf("(%.0f..%.0f)", m[1], m[c]) : ""
          ro = (im == "lessonrun" || !(("lessonrun", n) in MO)) ? "" : sprintf("%.2fx", mo / MO["lessonrun", n])
          rm = (im == "lessonrun" || !(("lessonrun", n) in MM)) ? "" : sprintf("%.2fx", mm / MM["lessonrun", n])
          printf "%-8s %-11s %11.3f %15s %7s %11.1f %15s %7s %10.3f%s\n", n, im, mo, range, ro, mm, mrange, rm, q[int((c + 1) / 2)], bad[im, n] ? "  (" bad[im, n] " failed)" : ""
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
      # each build of lessonrun against the floor of bare coroutines, by the
      # whole process (the floor measures only CPU time itself), lessonrun
      # less its 0.1 s of sleep
      for (a = 1; a <= nn; a++) {
        n = N[a]
        if (!(("coroutines", n) in MP) || MP["coroutines", n] <= 0) continue
        for (b = 1; b <= np; b++) {
          im = P[b]
          if (im !~ /^lessonrun/ || !((im, n) in MP)) continue
          printf "N=%s: %s takes %.2fx the bare coroutines'"'"' floor (process %.3f s less 0.1 s vs %.3f s); peak RSS %.2fx (%.0f MB vs %.0f MB)\n",
            n, im, (MP[im, n] - 0.1) / MP["coroutines", n], MP[im, n], MP["coroutines", n],
            MM[im, n] / MM["coroutines", n], MM[im, n], MM["coroutines", n]
        }
      }
      # the targets (MB = MiB, from VmHWM), for each build of lessonrun
      for (b = 1; b <= np; b++) {
        im = P[b]
        if (im !~ /^lessonrun/) continue
        print ""
        if ((im, 100000) in MO) {
          printf "%s: target N=100k overhead <= 0.15 s: %.3f s  %s%s\n", im, MO[im, 100000], MO[im, 100000] <= 0.15 ? "MET" : "MISSED", floor_note(100000)
          printf "%s: target N=100k peak RSS <= 130 MB: %.1f MB  %s\n", im, MM[im, 100000], MM[im, 100000] <= 130 ? "MET" : "MISSED"
        }
        if ((im, 1000000) in MO) {
          printf "%s: target N=1M overhead < 2 s:       %.3f s  %s%s\n", im, MO[im, 1000000], MO[im, 1000000] < 2 ? "MET" : "MISSED", floor_note(1000000)
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
  # the target was set where lua5.4 starts in 1 ms: what lessonrun adds to
  # Lua's own start-up may be 2 ms, on a machine of any speed
  awk -v a="${mean[0]}" -v l="$lua_ms" 'BEGIN {
    printf "target as stated against lua5.4 (3 ms where lua5.4 takes 1): added <= 2 ms: +%.2f ms  %s\n", a - l, a - l <= 2 ? "MET" : "MISSED" }'
}

# ---- fetch ------------------------------------------------------------------
# N GETs of a 100-byte body from a loopback nginx (bench/nginx.conf, started
# here and stopped on exit), at most LIMIT in flight, in one process: lessonrun
# (fetch under a semaphore, and fetch_all) against the C ceiling
# (bench/ceiling.c: libcurl multi on libuv, handles reused), curl's CLI,
# aiohttp and Node's fetch, taking turns.  Then the lesson's shape: 20
# requests to the built-in server's /delay/0.1, 10 in flight (ideal 0.2 s).

FETCH_N="${BENCH_FETCH_N:-10000}"
FETCH_LIMIT="${BENCH_FETCH_LIMIT:-100}"
FETCH_REPEAT="${BENCH_FETCH_REPEAT:-3}"
FETCH_PEERS="${BENCH_FETCH_PEERS:-ceiling lessonrun-sem lessonrun-all ${LESSONRUN_B:+lessonrun-b-sem lessonrun-b-all }curl aiohttp node}"
LESSON_REPEAT="${BENCH_LESSON_REPEAT:-5}"  # (the lesson mode too)
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
CURL="${CURL:-/usr/bin/curl}"
GNU_TIME=/usr/bin/time

fetch_have() {
  case "$1" in
    ceiling) [[ -x "$fdir/ceiling" ]] ;;
    lessonrun-sem | lessonrun-all) return 0 ;;
    lessonrun-b-*) [[ -n "${LESSONRUN_B:-}" && -x "$LESSONRUN_B" ]] ;;
    curl) [[ -x "$CURL" && -x "$GNU_TIME" ]] ;;
    aiohttp) [[ -x "$PYTHON" ]] && "$PYTHON" -c 'import aiohttp' 2>/dev/null ;;
    node) [[ -x "$NODE" ]] ;;
    *) return 1 ;;
  esac
}

# Starts nginx on the first free port from 18089 on; sets nginx_pid and
# fetch_url.  nginx runs in the foreground of a background job (daemon off),
# so it is ours to stop by its pid.
start_nginx() {
  local port body
  mkdir -p "$fdir/nginx/tmp"
  for ((port = 18089; port < 18189; port++)); do
    # someone listens there already: not ours, try the next
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    sed "s/127\.0\.0\.1:18089/127.0.0.1:$port/" "$here/nginx.conf" >"$fdir/nginx/nginx.conf"
    "$NGINX" -p "$fdir/nginx/" -c "$fdir/nginx/nginx.conf" -e "$fdir/nginx/error.log" &
    nginx_pid=$!
    local k
    for ((k = 0; k < 50; k++)); do
      kill -0 "$nginx_pid" 2>/dev/null || break
      body="$("$CURL" -s --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null)"
      if [[ ${#body} -eq 100 ]]; then
        fetch_url="http://127.0.0.1:$port/"
        return 0
      fi
      sleep 0.1
    done
    stop_nginx
  done
  echo "bench: nginx did not start:" >&2
  tail -n 5 "$fdir/nginx/error.log" >&2
  return 1
}

stop_nginx() {
  [[ -z "${nginx_pid:-}" ]] && return
  kill -QUIT "$nginx_pid" 2>/dev/null  # graceful: the master stops its workers
  local k
  for ((k = 0; k < 50; k++)); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$nginx_pid" 2>/dev/null
  wait "$nginx_pid" 2>/dev/null
  nginx_pid=
}

fetch_cmd_of() {  # fetch_cmd_of impl -> the command line (one word per line)
  case "$1" in
    ceiling) printf '%s\n' "$fdir/ceiling" "$fetch_url" "$FETCH_N" "$FETCH_LIMIT" ;;
    lessonrun-sem | lessonrun-all)
      printf '%s\n' "$LESSONRUN" "$here/fetch_lessonrun.lua" "$fetch_url" "$FETCH_N" "$FETCH_LIMIT" "${1#lessonrun-}" ;;
    lessonrun-b-*)
      printf '%s\n' "$LESSONRUN_B" "$here/fetch_lessonrun.lua" "$fetch_url" "$FETCH_N" "$FETCH_LIMIT" "${1#lessonrun-b-}" ;;
    aiohttp) printf '%s\n' "$PYTHON" "$here/fetch_aiohttp.py" "$fetch_url" "$FETCH_N" "$FETCH_LIMIT" ;;
    node) printf '%s\n' "$NODE" "$here/fetch_node.mjs" "$fetch_url" "$FETCH_N" "$FETCH_LIMIT" ;;
  esac
}

# curl's CLI measures nothing itself: wall from date, peak RSS and CPU from
# GNU time, ok = transfers that wrote "200 100" (status, body size) with -w.
run_curl() {
  local t0 t1 rc ok rss u s
  t0=$(date +%s%N)
  timeout "$TIMEOUT" "$GNU_TIME" -f '%M %U %S' -o "$fdir/curl.time" \
    "$CURL" --parallel --parallel-max "$FETCH_LIMIT" -s --no-progress-meter \
    -w '%{http_code} %{size_download}\n' -K "$fdir/curl.cfg" >"$fdir/curl.out" 2>"$fdir/curl.err"
  rc=$?
  t1=$(date +%s%N)
  ok=$(grep -c '^200 100$' "$fdir/curl.out")
  read -r rss u s < <(tail -n 1 "$fdir/curl.time")  # after "Command exited with..."
  awk -v n="$FETCH_N" -v ok="$ok" -v ns=$((t1 - t0)) -v rss="$rss" -v u="$u" -v s="$s" -v rc="$rc" 'BEGIN {
    w = ns / 1e9
    printf "RESULT impl=curl n=%d ok=%d wall=%.6f rps=%.1f cpu=%.3f rss_kb=%d rc=%d\n", n, ok, w, n / w, u + s, rss, rc }'
  return "$rc"
}

fetch_run_one() {  # fetch_run_one impl round
  local impl="$1" r="$2" out rc line
  if [[ "$impl" == curl ]]; then
    out="$(run_curl 2>&1)"
    rc=$?
  else
    local -a cmd
    mapfile -t cmd < <(fetch_cmd_of "$impl")
    out="$(timeout "$TIMEOUT" "${cmd[@]}" 2>&1)"
    rc=$?
  fi
  line="$(grep '^RESULT ' <<<"$out" | tail -n 1)"
  if [[ $rc -ne 0 || -z "$line" || "$line" != *" n=$FETCH_N ok=$FETCH_N "* ]]; then
    echo "FFAIL impl=$impl round=$r rc=$rc" >>"$raw"
    printf '  %-15s FAILED (exit %s): %s\n' "$impl" "$rc" "$(tail -n 3 <<<"$out" | tr '\n' ' ')" >&2
    return 1
  fi
  sed "s/^RESULT impl=[^ ]*/FRESULT impl=$impl round=$r/" <<<"$line" >>"$raw"
}

fetch_bench() {
  local bad=0
  fdir="$(mktemp -d)"
  nginx_pid=
  trap 'stop_nginx; rm -rf "$fdir"' EXIT
  trap 'exit 130' INT TERM
  if [[ ! -x "$NGINX" ]]; then
    echo "bench: no nginx (apt-get install nginx-light, or set NGINX=path)" >&2
    return 1
  fi
  # the ceiling, compiled here (no binary in the tree)
  if ! cc -O2 -o "$fdir/ceiling" "$here/ceiling.c" $(pkg-config --cflags --libs libuv libcurl) 2>"$fdir/cc.err"; then
    echo "bench: cannot compile bench/ceiling.c (libuv1-dev, libcurl4-*-dev?):" >&2
    head -n 5 "$fdir/cc.err" >&2
    bad=1
  fi
  start_nginx || return 1
  local i peers=() p
  for ((i = 0; i < FETCH_N; i++)); do printf 'url = "%s"\noutput = "/dev/null"\n' "$fetch_url"; done >"$fdir/curl.cfg"
  for p in $FETCH_PEERS; do
    if fetch_have "$p"; then peers+=("$p"); else echo "bench: skipping $p (not installed)" >&2; fi
  done
  echo "== fetch: $FETCH_N GETs of a 100-byte body from nginx on $fetch_url, at most $FETCH_LIMIT in flight"
  echo "   lessonrun: $LESSONRUN${LESSONRUN_B:+   lessonrun-b: $LESSONRUN_B}"
  echo "   nginx: $("$NGINX" -v 2>&1 | sed 's/.*version: //'), 2 workers; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local r k np=${#peers[@]}
  printf '   x%s:' "$FETCH_REPEAT" >&2
  for ((r = 0; r < FETCH_REPEAT; r++)); do
    for ((i = 0; i < np; i++)); do
      k=$(((i + r) % np))
      printf ' %s' "${peers[$k]}" >&2
      fetch_run_one "${peers[$k]}" "$r" || bad=1
    done
  done
  echo >&2
  stop_nginx

  # the lesson's shape, on the built-in server (no nginx), for each build
  local -a builds=(lessonrun)
  [[ " ${peers[*]} " == *" lessonrun-b-"* ]] && builds+=(lessonrun-b)
  lesson_runs "${builds[@]}" || bad=1
  report_fetch "${peers[@]}"
  return "$bad"
}

# The lesson's shape (fetch_lesson.lua: 20 x /delay/0.1, 10 in flight) on the
# built-in server, cold and warm, BENCH_LESSON_REPEAT rounds, the builds
# taking turns (one further along each round): LRESULT lines, with proc= the
# whole process's wall time (start-up, the server, loading libcurl).
lesson_runs() {
  local -a builds=("$@")
  local r i how build exe out line rc t0 t1 bad=0 nb=${#builds[@]}
  for ((r = 0; r < LESSON_REPEAT; r++)); do
    for ((i = 0; i < nb; i++)); do
      build="${builds[$(((i + r) % nb))]}"
      exe="$LESSONRUN"
      [[ "$build" == lessonrun-b ]] && exe="$LESSONRUN_B"
      for how in cold warm; do
        t0=$(date +%s%N)
        out="$(timeout "$TIMEOUT" "$exe" "$here/fetch_lesson.lua" 20 10 0.1 "$how" 2>&1)"
        rc=$?
        t1=$(date +%s%N)
        line="$(grep '^RESULT ' <<<"$out" | tail -n 1)"
        if [[ $rc -ne 0 || "$line" != *" ok=20 "* ]]; then
          echo "  $build lesson-$how FAILED: $(tail -n 3 <<<"$out" | tr '\n' ' ')" >&2
          bad=1
          continue
        fi
        sed "s/^RESULT /LRESULT build=$build /; s/\$/ proc=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.6f", d / 1e9 }')/" <<<"$line" >>"$raw"
      done
    done
  done
  return "$bad"
}

lesson_bench() {
  local -a builds=(lessonrun)
  [[ -n "${LESSONRUN_B:-}" && -x "$LESSONRUN_B" ]] && builds+=(lessonrun-b)
  echo "== lesson: 20 x /delay/0.1 on the built-in server, 10 in flight (ideal 0.2 s), $LESSON_REPEAT rounds"
  echo "   lessonrun: $LESSONRUN${LESSONRUN_B:+   lessonrun-b: $LESSONRUN_B}"
  echo "   $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  lesson_runs "${builds[@]}" || failed=1
  awk '
    function field(s, k) { return match(s, " " k "=[^ ]+") ? substr(s, RSTART + length(k) + 2, RLENGTH - length(k) - 2) : "" }
    function sortn(a, c,   i, j, t) { for (i = 2; i <= c; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
    /^LRESULT / {
      k = field($0, "build") " " field($0, "impl"); if (!(k in c)) order[++nk] = k
      i = ++c[k]; w[k, i] = field($0, "wall") + 0; p[k, i] = field($0, "proc") + 0
    }
    END {
      printf "\n%-24s %9s %17s %10s %17s %5s\n", "build, shape", "wall s", "(min..max)", "process s", "(min..max)", "runs"
      for (j = 1; j <= nk; j++) {
        k = order[j]; n = c[k]
        delete a; delete b
        for (i = 1; i <= n; i++) { a[i] = w[k, i]; b[i] = p[k, i] }
        sortn(a, n); sortn(b, n); m = int((n + 1) / 2)
        printf "%-24s %9.3f %17s %10.3f %17s %5d\n", k, a[m], sprintf("(%.3f..%.3f)", a[1], a[n]), b[m], sprintf("(%.3f..%.3f)", b[1], b[n]), n
      }
    }' "$raw"
}

# Medians over the rounds; "vs ceiling" is the median of each round's ratio
# to the ceiling's figure in the same round.
report_fetch() {
  awk -v peers="$*" -v n="$FETCH_N" -v reps="$FETCH_REPEAT" '
    function field(s, k) { return match(s, " " k "=[^ ]+") ? substr(s, RSTART + length(k) + 2, RLENGTH - length(k) - 2) : "" }
    function sortn(a, c,   i, j, t) { for (i = 2; i <= c; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
    function med(a, c) { sortn(a, c); return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2 }
    /^FRESULT / {
      im = field($0, "impl"); r = field($0, "round")
      rps[im, r] = field($0, "rps") + 0; cpu[im, r] = field($0, "cpu") + 0; rss[im, r] = field($0, "rss_kb") / 1024
      seen[im, r] = 1
    }
    /^FFAIL / { bad[field($0, "impl")]++ }
    /^LRESULT / { im = field($0, "build") SUBSEP field($0, "impl"); c = ++lc[im]; lw[im, c] = field($0, "wall") + 0 }
    END {
      np = split(peers, P, " ")
      printf "\n%-16s %9s %20s %11s %12s %12s\n", "program", "req/s", "(min..max)", "vs ceiling", "CPU us/req", "peak RSS MB"
      for (b = 1; b <= np; b++) {
        im = P[b]; c = 0; cr = 0
        delete a; delete q; delete u; delete m
        for (r = 0; r < reps; r++) {
          if (!seen[im, r]) continue
          c++; a[c] = rps[im, r]; u[c] = cpu[im, r] / n * 1e6; m[c] = rss[im, r]
          if (seen["ceiling", r]) q[++cr] = rps[im, r] / rps["ceiling", r]
        }
        if (!c) { printf "%-16s %9s\n", im, "FAILED"; continue }
        lo = hi = a[1]; for (i = 2; i <= c; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
        R[im] = med(a, c); Q[im] = cr ? med(q, cr) : -1; M[im] = med(m, c)
        printf "%-16s %9.0f %20s %11s %12.1f %12.1f%s\n", im, R[im], (c > 1 ? sprintf("(%.0f..%.0f)", lo, hi) : ""),
          (Q[im] < 0 ? "" : sprintf("%.2fx", Q[im])), med(u, c), M[im], (bad[im] ? "  (" bad[im] " failed)" : "")
      }
      # the targets, for each build of lessonrun: its faster form counts
      for (v = 1; v <= 2; v++) {
        pre = v == 1 ? "lessonrun" : "lessonrun-b"
        best = ""
        for (b = 1; b <= np; b++)
          if (P[b] ~ ("^" pre "-(sem|all)$") && (P[b] in R) && (best == "" || R[P[b]] > R[best])) best = P[b]
        if (best == "") continue
        print ""
        printf "%s: the faster form is %s (%.0f req/s)\n", pre, best, R[best]
        if ("ceiling" in R) printf "%s: target >= 0.80x the ceiling (same rounds): %.2fx  %s\n", pre, Q[best], (Q[best] >= 0.8 ? "MET" : "MISSED")
        if ("curl" in R) printf "%s:   ahead of curl CLI: %.0f vs %.0f req/s  %s\n", pre, R[best], R["curl"], (R[best] > R["curl"] ? "yes" : "no")
        if ("aiohttp" in R) printf "%s:   > 4x aiohttp: %.2fx  %s\n", pre, R[best] / R["aiohttp"], (R[best] > 4 * R["aiohttp"] ? "yes" : "no")
        if ("node" in R) printf "%s:   vs Node: %.2fx\n", pre, R[best] / R["node"]
        printf "%s: target peak RSS < 30 MB: %.1f MB  %s", pre, M[best], (M[best] < 30 ? "MET" : "MISSED")
        for (b = 1; b <= np; b++) if (P[b] ~ ("^" pre "-(sem|all)$") && P[b] != best && (P[b] in M)) printf "  (%s: %.1f MB)", P[b], M[P[b]]
        print ""
        for (h = 1; h <= 2; h++) {
          im = pre SUBSEP (h == 1 ? "lesson-cold" : "lesson-warm"); c = lc[im]
          if (!c) continue
          delete a; for (i = 1; i <= c; i++) a[i] = lw[im, i]
          lo = hi = a[1]; for (i = 2; i <= c; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
          w = med(a, c); ok = (w / 0.2 - 1) <= 0.05
          printf "%s: lesson shape (20 x /delay/0.1, 10 in flight), %s: %.3f s (%.3f..%.3f, %d runs) = %+.1f%% over the ideal 0.2 s  %s\n",
            pre, (h == 1 ? "first fetch of the process" : "after a blocking_fetch"), w, lo, hi, c, (w / 0.2 - 1) * 100,
            (h == 1 ? (ok ? "MET (<= 5%)" : "MISSED (> 5%)") : (ok ? "(<= 5%)" : "(> 5%)"))
        }
      }
    }' "$raw"
}

# ---- cpu ----------------------------------------------------------------------
# bench/cpu_lessonrun.lua: the same two loops one after another and offloaded,
# in turns in one process; the ratio of each round is measured in that round.
cpu_bench() {
  local n="${BENCH_CPU_N:-20000000}" rounds="${BENCH_CPU_ROUNDS:-5}" out rc
  echo "== cpu: 2 x $n square roots one after another vs offloaded to two threads, $rounds rounds"
  echo "   cores: $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  out="$(timeout "$TIMEOUT" "$LESSONRUN" "$here/cpu_lessonrun.lua" "$n" "$rounds" 2>&1)"
  rc=$?
  if [[ $rc -ne 0 ]] || ! grep -q '^RESULT ' <<<"$out"; then
    echo "  cpu FAILED (exit $rc): $(tail -n 3 <<<"$out" | tr '\n' ' ')" >&2
    failed=1
    return
  fi
  grep '^RESULT ' <<<"$out" | awk -v cores="$(nproc)" '
    function field(s, k) { return match(s, " " k "=[^ ]+") ? substr(s, RSTART + length(k) + 2, RLENGTH - length(k) - 2) : "" }
    { c++; s[c] = field($0, "serial") + 0; o[c] = field($0, "offloaded") + 0; r[c] = field($0, "ratio") + 0 }
    END {
      for (i = 2; i <= c; i++) for (j = i; j > 1 && r[j-1] > r[j]; j--) { t = r[j]; r[j] = r[j-1]; r[j-1] = t }
      for (i = 2; i <= c; i++) for (j = i; j > 1 && s[j-1] > s[j]; j--) { t = s[j]; s[j] = s[j-1]; s[j-1] = t }
      for (i = 2; i <= c; i++) for (j = i; j > 1 && o[j-1] > o[j]; j--) { t = o[j]; o[j] = o[j-1]; o[j-1] = t }
      m = int((c + 1) / 2)
      printf "one after another: %.3f s   offloaded: %.3f s   (medians of %d rounds)\n", s[m], o[m], c
      printf "speed-up, each round in itself: median %.2fx (%.2f..%.2f)\n", r[m], r[1], r[c]
      if (cores < 2) print "target offloaded >= 1.7x faster on 2 idle cores: not measured (1 core)"
      else printf "target offloaded >= 1.7x faster on 2 idle cores: %.2fx  %s\n", r[m], (r[m] >= 1.7 ? "MET" : "MISSED (is the machine idle?)")
    }'
}

# ---- alloc --------------------------------------------------------------------
# bench/alloc_reuse.lua under both interpreters, in turns; medians of peak RSS.
alloc_bench() {
  local rounds="${BENCH_ALLOC_ROUNDS:-3}" k impl out
  echo "== alloc: 1.5 M tables freed, then 1 M strings: peak RSS, $rounds rounds each"
  for ((k = 0; k < rounds; k++)); do
    for impl in lessonrun lua5.4; do
      if [[ $impl == lessonrun ]]; then out="$("$LESSONRUN" "$here/alloc_reuse.lua" 2>&1)"
      else out="$("$LUA" "$here/alloc_reuse.lua" 2>&1)"; fi
      grep -q '^RESULT ' <<<"$out" || { echo "  alloc FAILED ($impl): $out" >&2; failed=1; return; }
      echo "$impl $(sed -n 's/^RESULT peak_kb=\([0-9]*\).*/\1/p' <<<"$out")"
    done
  done | awk '
    { v[$1, ++n[$1]] = $2 }
    function median(im,   i, j, t, c) {
      c = n[im]; for (i = 1; i <= c; i++) a[i] = v[im, i]
      for (i = 2; i <= c; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
      return a[int((c + 1) / 2)]
    }
    END {
      l = median("lessonrun"); p = median("lua5.4")
      printf "lessonrun %.0f MB   lua5.4 %.0f MB   (medians)\n", l / 1024, p / 1024
      printf "target lessonrun peak <= 1.0x lua5.4: %.2fx  %s\n", l / p, (l <= p ? "MET" : "MISSED")
    }'
}

if [[ "$mode" == all || "$mode" == sleep ]]; then sleep_bench; fi
if [[ "$mode" == all ]]; then echo; fi
if [[ "$mode" == all || "$mode" == startup ]]; then startup_bench; fi
if [[ "$mode" == all ]]; then echo; fi
if [[ "$mode" == all || "$mode" == cpu ]]; then cpu_bench; fi
if [[ "$mode" == all ]]; then echo; fi
if [[ "$mode" == all || "$mode" == alloc ]]; then alloc_bench; fi
# a subshell: its EXIT trap stops nginx and removes its files
if [[ "$mode" == fetch ]]; then (fetch_bench) || failed=1; fi
if [[ "$mode" == lesson || ( "$mode" == ab && "$ab_opt" == LR_PRELOAD ) ]]; then lesson_bench; fi
if [[ "$mode" == ab && "$ab_opt" != LR_PRELOAD ]]; then sleep_bench; fi
[[ -n "${BENCH_RAW:-}" ]] && cp "$raw" "$BENCH_RAW"
exit "$failed"
