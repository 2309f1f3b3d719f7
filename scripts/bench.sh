#!/usr/bin/env bash
# Measures what the README claims, against the static release binary and the test API server:
#
#   scripts/bench.sh            full run, about 14 minutes (7 without Go: no client-go columns)
#   scripts/bench.sh --quick    CI smoke: fewer runs and shorter windows, about 2 minutes
#
# Prints a Markdown table (figure, value, goal, met?, command that produced it) and writes it
# to target/bench/results.md (raw samples and logs: target/bench/last-run/). Figures:
#   - graceful hand-over p50/p95: SIGTERM to the leader -> next replica's CMD running
#   - crash fail-over p50/p95: SIGKILL to the leader -> next CMD running, measured from the
#     leader's last successful renewal (its last Lease PUT 200 in the API server's request
#     log), minus the lease duration; also raw from the SIGKILL
#   - API requests per minute, 1 leader + 4 followers at the default timings 15/10/2
#   - leader (and follower) memory high-water mark, VmHWM
#   - stripped static binary size
#   - passthrough overhead (election disabled: exec CMD) against running CMD directly, for a
#     CMD with real start-up work (the Python interpreter) and for CMDs that do nothing
#     (/bin/true, sh -c :), beside the floor of any exec wrapper (a one-line static C execve,
#     built with cc when there is one); with hyperfine if installed (root + apt-get: installed
#     on demand), else a bash loop (BENCH_NO_HYPERFINE=1 forces the bash loop)
#   - cold start: process start -> CMD's first line, single replica, Lease absent
#   - idle CPU per minute of the leader and a follower at the default timings
#   - status probe latency p50/p95 (GET /status and /metrics, connect to close) while 1,000
#     hostile connections of each kind are open: idle, a byte a second, a head announcing a
#     body that never comes, a connect flood (python3 attacker); the leader's peak threads and
#     VmRSS and its renewals meanwhile
#   - side by side with the client-go test peer (scripts/bench-client-go.sh): hand-over (both
#     shutdown behaviours), crash fail-over, requests/min with 4 and 49 followers, VmHWM,
#     binary size; skipped without Go (a failure under CI)
# Hand-over and fail-over use 3 replicas with the short timings 4/3/1 (lease/renew/retry, s).
# Timestamps: CMD lines use `date +%s%N`, this script uses $EPOCHREALTIME (no fork), the
# request log has milliseconds. Percentiles are nearest-rank. Every process started here is
# stopped on exit. The machine's load average is recorded with the results: numbers from a
# busy machine are noisier (hand-over, cold start, passthrough).
set -euo pipefail

SAY_FD=2 # stdout is the results table
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/bench-client-go.sh
source "$root/scripts/bench-client-go.sh"

QUICK=0
for arg in "$@"; do
  case $arg in
  --quick) QUICK=1 ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) usage_error "unknown argument $arg" ;;
  esac
done

if ((QUICK)); then
  HANDOVER_RUNS=3 FAILOVER_RUNS=2 STEADY_SECONDS=20 WARMUP_SECONDS=3 PASS_RUNS=30 PASS_ROUNDS=3 COLD_RUNS=3
  STATUS_PROBES=20
  CG_HANDOVER_RUNS=1 CG_FAILOVER_RUNS=1
else
  HANDOVER_RUNS=20 FAILOVER_RUNS=8 STEADY_SECONDS=250 WARMUP_SECONDS=5 PASS_RUNS=400 PASS_ROUNDS=10 COLD_RUNS=15
  STATUS_PROBES=100
  CG_HANDOVER_RUNS=10 CG_FAILOVER_RUNS=8
fi
HOSTILE=1000 # hostile connections held open while the status endpoint is probed
SHORT_LEASE=4 SHORT_RENEW=3 SHORT_RETRY=1

out_dir=$target_dir/bench
work=$out_dir/last-run
rm -rf "$work"
mkdir -p "$work"

t0=0 t1=0 t_sig=0 t_kill=0 # set by stamp
# Timing with date(1) forks would add noise.
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5 or newer is needed (\$EPOCHREALTIME)"

# pct P FILE: nearest-rank percentile of the numbers in FILE, one per line.
pct() {
  sort -g "$2" | awk -v p="$1" '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    i = int(p / 100 * NR); if (i < p / 100 * NR) i++; if (i < 1) i = 1
    printf "%.1f", v[i] }'
}
# pct3 P FILE: the same with three decimals.
pct3() {
  sort -g "$2" | awk -v p="$1" '{ v[NR] = $1 } END {
    if (NR == 0) { print "n/a"; exit }
    i = int(p / 100 * NR); if (i < p / 100 * NR) i++; if (i < 1) i = 1
    printf "%.3f", v[i] }'
}
count() { wc -l <"$1" | tr -d ' '; }
fmt() { awk -v v="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, v }'; }
# ok VALUE GOAL: ✅ when VALUE <= GOAL, else ❌.
ok() { awk -v v="$1" -v g="$2" 'BEGIN { print ((v != "n/a" && v + 0 <= g + 0) ? "✅" : "❌") }'; }

on_exit() { (($1 == 0)) || echo "bench: failed; logs in $work" >&2; }
stop_on_exit

# --- build ---------------------------------------------------------------------------------

say "building the static release binary and the test API server"
build "$work/build.log"
if command -v file >/dev/null; then
  file -L "$BIN" | grep -q 'statically linked\|static-pie linked' || die "$BIN is not static: $(file -L "$BIN")"
fi
built=${BIN#"$root"/}
# Measure a private copy: another build into target/ during the run cannot swap it.
cp "$BIN" "$work/k8s-await-election"
BIN=$work/k8s-await-election
bin_rel=${BIN#"$root"/}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t_bench_start=$SECONDS

# --- API server and replicas ---------------------------------------------------------------

# start_server NAME: starts a test API server for replicas r1..r5 in $work/NAME; sets PORT.
start_server() { start_apiserver "$work/$1" "bench-token-$1" r1 r2 r3 r4 r5; }

# The CMD of the election runs: log start/stop (ns) to the shared events file, idle until
# signalled. `sleep 1 & wait` lets the TERM trap run at once.
# shellcheck disable=SC2016 # expanded by the CMD's shell
CMD_SCRIPT='
echo "start $POD $(date +%s%N)" >>"$EVENTS"
trap '\''echo "stop $POD $(date +%s%N)" >>"$EVENTS"; kill $! 2>/dev/null; exit 0'\'' TERM INT
while :; do sleep 1 & wait $!; done'

exited() { ! kill -0 "$1" 2>/dev/null; }

# --- 1 and 2: hand-over and fail-over -------------------------------------------------------

say "hand-over and fail-over: 3 replicas, timings $SHORT_LEASE/$SHORT_RENEW/$SHORT_RETRY s"
A=$work/failover
start_server failover
: >"$A/events"
for i in 1 2 3; do start_replica "$A" "r$i" bench "$SHORT_LEASE" "$SHORT_RENEW" "$SHORT_RETRY"; done
wait_until 10 more_starts "$A" 0 || die "no leader within 10 s"

: >"$A/handover_sig.ms"
: >"$A/handover_stop.ms"
bad_exit=0
for run in $(seq "$HANDOVER_RUNS"); do
  sleep 1 # let the followers settle on the new leader (watch open)
  read -r leader _ <<<"$(last_start "$A")"
  n=$(starts "$A")
  stamp t_sig
  kill -TERM "${PID[$leader]}"
  event "$A" signal-TERM "$leader" "$t_sig"
  wait_until 10 more_starts "$A" "$n" || die "hand-over $run: no CMD started within 10 s"
  read -r next t_next <<<"$(last_start "$A")"
  wait_until 10 exited "${PID[$leader]}" || die "hand-over $run: $leader did not exit"
  code=0
  wait "${PID[$leader]}" || code=$?
  ((code == 0)) || bad_exit=$((bad_exit + 1))
  t_stop=$(last_event "$A" stop "$leader")
  awk -v a="$t_sig" -v b="$t_next" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$A/handover_sig.ms"
  awk -v a="$t_stop" -v b="$t_next" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$A/handover_stop.ms"
  note "hand-over $run/$HANDOVER_RUNS: $leader -> $next $(tail -n 1 "$A/handover_sig.ms") ms (exit $code)"
  start_replica "$A" "$leader" bench "$SHORT_LEASE" "$SHORT_RENEW" "$SHORT_RETRY"
done

: >"$A/failover_kill.ms"
: >"$A/failover_renew.ms"
: >"$A/failover_minus.ms"
for run in $(seq "$FAILOVER_RUNS"); do
  # Kill at a random point of the renew cycle.
  sleep "1.$((RANDOM % 10))"
  read -r leader _ <<<"$(last_start "$A")"
  n=$(starts "$A")
  stamp t_kill
  { kill -KILL "${PID[$leader]}" && wait "${PID[$leader]}"; } 2>/dev/null || true
  event "$A" signal-KILL "$leader" "$t_kill"
  wait_until $((SHORT_LEASE * 3)) more_starts "$A" "$n" ||
    die "fail-over $run: no CMD started within $((SHORT_LEASE * 3)) s"
  read -r next t_next <<<"$(last_start "$A")"
  # The killed leader's last successful renewal: followers only watch while the Lease is
  # held, so the last Lease PUT answered 200 before the kill is the leader's.
  renew_ms=$(awk -v k="$((t_kill / 1000000))" \
    '$1 <= k && $2 == "update" && $3 == 200 && $4 ~ /\/leases\/bench$/ { t = $1 } END { print t }' \
    "$A/requests.log")
  [[ -n $renew_ms ]] || die "fail-over $run: no renewal in the request log"
  awk -v a="$t_kill" -v b="$t_next" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$A/failover_kill.ms"
  awk -v a="$renew_ms" -v b="$t_next" 'BEGIN { printf "%.3f\n", b / 1e6 - a }' >>"$A/failover_renew.ms"
  awk -v a="$renew_ms" -v b="$t_next" -v l="$SHORT_LEASE" \
    'BEGIN { printf "%.3f\n", b / 1e6 - a - l * 1000 }' >>"$A/failover_minus.ms"
  note "fail-over $run/$FAILOVER_RUNS: $leader -> $next $(tail -n 1 "$A/failover_kill.ms") ms after SIGKILL, $(tail -n 1 "$A/failover_renew.ms") ms after the last renewal"
  start_replica "$A" "$leader" bench "$SHORT_LEASE" "$SHORT_RENEW" "$SHORT_RETRY"
done
overlap_a=$(overlaps "$A" | wc -l)
stop_replicas
stop_servers

# --- 3, 4, 8: steady state at the default timings --------------------------------------------

say "steady state: 1 leader + 4 followers, default timings 15/10/2, ${STEADY_SECONDS} s window"
B=$work/steady
start_server steady
: >"$B/events"
for i in 1 2 3 4 5; do start_replica "$B" "r$i" steady; done
wait_until 20 more_starts "$B" 0 || die "no leader within 20 s"
sleep "$WARMUP_SECONDS"
read -r leader _ <<<"$(last_start "$B")"
follower=r1
[[ $leader != r1 ]] || follower=r2
clk_tck=$(getconf CLK_TCK)
# CPU time in ns: utime+stime of the process (clock ticks, includes exited threads), and the
# sum over its live threads of /proc/<pid>/task/*/schedstat (ns resolution).
cpu_ticks_ns() { awk -v t="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1e9 / t }' "/proc/$1/stat"; }
cpu_sched_ns() { cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
cpu_l0=$(cpu_ticks_ns "${PID[$leader]}") cpu_f0=$(cpu_ticks_ns "${PID[$follower]}")
sch_l0=$(cpu_sched_ns "${PID[$leader]}") sch_f0=$(cpu_sched_ns "${PID[$follower]}")
stamp t0
note "leader $leader (pid ${PID[$leader]}), measured follower $follower (pid ${PID[$follower]})"
sleep "$STEADY_SECONDS"
stamp t1
cpu_l1=$(cpu_ticks_ns "${PID[$leader]}") cpu_f1=$(cpu_ticks_ns "${PID[$follower]}")
sch_l1=$(cpu_sched_ns "${PID[$leader]}") sch_f1=$(cpu_sched_ns "${PID[$follower]}")
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
hwm_leader=$(hwm "${PID[$leader]}")
hwm_followers=0
for id in "${!PID[@]}"; do
  [[ $id == "$leader" ]] && continue
  h=$(hwm "${PID[$id]}")
  if ((h > hwm_followers)); then hwm_followers=$h; fi
done
read -r leader_now _ <<<"$(last_start "$B")"
[[ $leader_now == "$leader" ]] || die "the leader changed during the steady window ($leader -> $leader_now)"
stop_replicas
stop_servers
window_ms=$(((t1 - t0) / 1000000))
awk -v a="$((t0 / 1000000))" -v b="$((t1 / 1000000))" '$1 >= a && $1 < b' "$B/requests.log" >"$B/window.log"
req_total=$(count "$B/window.log")
req_per_min=$(awk -v n="$req_total" -v w="$window_ms" 'BEGIN { printf "%.1f", n * 60000 / w }')
req_by_verb=$(awk '{ c[$2 " " $3]++ } END { for (k in c) printf "%s%s: %d", (s++ ? ", " : ""), k, c[k] }' "$B/window.log")
minutes=$(awk -v w="$window_ms" 'BEGIN { print w / 60000 }')
cpu_ms_min() { awk -v a="$1" -v b="$2" -v m="$minutes" 'BEGIN { printf "%.1f", (b - a) / 1e6 / m }'; }
cpu_leader=$(cpu_ms_min "$cpu_l0" "$cpu_l1") cpu_follower=$(cpu_ms_min "$cpu_f0" "$cpu_f1")
sch_leader=$(cpu_ms_min "$sch_l0" "$sch_l1") sch_follower=$(cpu_ms_min "$sch_f0" "$sch_f1")
cpu_pct() { awk -v v="$1" 'BEGIN { printf "%.3f", v / 600 }'; }

# --- 5: binary size --------------------------------------------------------------------------

bin_size=$(stat -c %s "$BIN")
bin_mib=$(awk -v s="$bin_size" 'BEGIN { printf "%.2f", s / 1048576 }')
stripped="stripped"
if command -v file >/dev/null && ! file -L "$BIN" | grep -q ', stripped'; then stripped="NOT stripped"; fi

# --- 6: passthrough overhead -----------------------------------------------------------------

say "passthrough overhead (election disabled)"
if [[ -z ${BENCH_NO_HYPERFINE:-} ]] && ! command -v hyperfine >/dev/null && ((EUID == 0)) &&
  command -v apt-get >/dev/null; then
  note "installing hyperfine (apt-get install -y hyperfine)"
  apt-get install -y -qq hyperfine >"$work/apt.log" 2>&1 || note "could not install hyperfine; using a bash loop"
fi
# The floor of any wrapper that execs CMD: a one-line static C program that only calls
# execve. What our binary costs beyond it is the price of being this program rather than that.
floor_bin=""
if command -v cc >/dev/null; then
  printf '#include <unistd.h>\nint main(int c, char **v, char **e) { execve(v[1], v + 1, e); return 127; }\n' >"$work/exec-floor.c"
  if cc -O2 -static-pie -o "$work/exec-floor" "$work/exec-floor.c" 2>"$work/exec-floor.log"; then
    floor_bin=$work/exec-floor
  else
    note "cannot build the exec floor (cc -static-pie failed; see $work/exec-floor.log)"
  fi
fi

# passthrough WRAPPER CMD...: times `CMD...` against `WRAPPER CMD...`; sets PT_DIRECT and
# PT_WRAPPED (ms per run, medians), PT_RATIO, PT_EXTRA and PT_HOW. Other work on the machine
# comes and goes, so direct and wrapped runs alternate: hyperfine in $PASS_ROUNDS rounds of
# both commands (order swapped every round; the ratio is the median of the rounds' ratios),
# or, without hyperfine, a bash loop alternating each run.
passthrough() {
  local wrapper=$1
  shift
  local key="${wrapper##*/}-$*"
  key=${key//[^a-z_-]/}
  local d=$work/passthrough-$key direct_cmd="$*" wrapped_cmd="$wrapper $*"
  local wrapper_rel=${wrapper#"$root"/}
  mkdir -p "$d"
  : >"$d/direct.ms"
  : >"$d/wrapped.ms"
  : >"$d/ratio"
  if [[ -z ${BENCH_NO_HYPERFINE:-} ]] && command -v hyperfine >/dev/null; then
    local r per=$((PASS_RUNS / PASS_ROUNDS)) a b
    for r in $(seq "$PASS_ROUNDS"); do
      if ((r % 2)); then a=$direct_cmd b=$wrapped_cmd; else a=$wrapped_cmd b=$direct_cmd; fi
      env -u K8S_AWAIT_ELECTION_ENABLED hyperfine -N --style none --warmup 5 --runs "$per" \
        --export-csv "$d/round-$r.csv" "$a" "$b" >/dev/null 2>&1
      # command,mean,stddev,median,user,system,min,max (seconds)
      awk -F, -v c="$direct_cmd" '$1 == c { printf "%.4f\n", $4 * 1000 }' "$d/round-$r.csv" >>"$d/direct.ms"
      awk -F, -v c="$wrapped_cmd" '$1 == c { printf "%.4f\n", $4 * 1000 }' "$d/round-$r.csv" >>"$d/wrapped.ms"
      paste "$d/direct.ms" "$d/wrapped.ms" | tail -n 1 | awk '{ printf "%.4f\n", $2 / $1 }' >>"$d/ratio"
    done
    PT_HOW="hyperfine -N '$*' '$wrapper_rel $*', $PASS_ROUNDS rounds of $per runs each (order swapped per round); medians"
  else
    local i t_a=0 t_b=0
    for ((i = 0; i < PASS_RUNS; i++)); do
      stamp t_a
      env -u K8S_AWAIT_ELECTION_ENABLED "$@"
      stamp t_b
      echo "$(((t_b - t_a) / 1000))" >>"$d/direct.us"
      stamp t_a
      env -u K8S_AWAIT_ELECTION_ENABLED "$wrapper" "$@"
      stamp t_b
      echo "$(((t_b - t_a) / 1000))" >>"$d/wrapped.us"
    done
    awk '{ printf "%.4f\n", $1 / 1000 }' "$d/direct.us" >"$d/direct.ms"
    awk '{ printf "%.4f\n", $1 / 1000 }' "$d/wrapped.us" >"$d/wrapped.ms"
    paste "$d/direct.ms" "$d/wrapped.ms" | awk '{ printf "%.4f\n", $2 / $1 }' >"$d/ratio"
    PT_HOW="bash loop, $PASS_RUNS runs each of 'env -u K8S_AWAIT_ELECTION_ENABLED [$wrapper_rel] $*', alternating (env's exec is in both); medians"
  fi
  PT_DIRECT=$(pct3 50 "$d/direct.ms")
  PT_WRAPPED=$(pct3 50 "$d/wrapped.ms")
  PT_RATIO=$(pct3 50 "$d/ratio" | awk '{ printf "%.2f", $1 }')
  PT_EXTRA=$(awk -v a="$PT_DIRECT" -v b="$PT_WRAPPED" 'BEGIN { printf "%+.3f", b - a }')
}
# A CMD with start-up work of its own, as every real server has: the Python interpreter
# (the real executable, not a version manager's shell-script shim, which would add its own
# start-up to the direct runs).
pt_real=()
py=$(command -v python3 >/dev/null && python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
if [[ -n $py && -x $py ]]; then
  passthrough "$BIN" "$py" -c pass
  pt_real=("$PT_DIRECT" "$PT_WRAPPED" "$PT_RATIO" "$PT_HOW" "$PT_EXTRA" "$py -c pass")
fi
# The worst case: CMDs that do nothing, so the extra exec is all there is to see.
passthrough "$BIN" /bin/true
pt_true=("$PT_DIRECT" "$PT_WRAPPED" "$PT_RATIO" "$PT_HOW" "$PT_EXTRA")
passthrough "$BIN" sh -c :
pt_sh=("$PT_DIRECT" "$PT_WRAPPED" "$PT_RATIO" "$PT_HOW" "$PT_EXTRA")
pt_floor=()
if [[ -n $floor_bin ]]; then
  passthrough "$floor_bin" /bin/true
  pt_floor=("$PT_DIRECT" "$PT_WRAPPED" "$PT_RATIO" "$PT_HOW" "$PT_EXTRA")
fi

# --- 7: cold start ---------------------------------------------------------------------------

say "cold start: single replica, Lease absent, CMD = date +%s%N"
C=$work/cold
start_server cold
: >"$C/cold.ms"
: >"$C/baseline.ms"
for run in $(seq "$COLD_RUNS"); do
  replica_env "$C" r1 "cold-$run"
  stamp t_a
  env -i "${REPLICA_ENV[@]}" "$BIN" date +%s%N >"$C/cmd.out" 2>>"$C/r1.log" </dev/null ||
    die "cold start $run failed: $(tail -n 3 "$C/r1.log")"
  awk -v a="$t_a" 'NR == 1 { printf "%.3f\n", ($1 - a) / 1e6 }' "$C/cmd.out" >>"$C/cold.ms"
  stamp t_a
  env -i "${REPLICA_ENV[@]}" date +%s%N >"$C/cmd.out" </dev/null
  awk -v a="$t_a" 'NR == 1 { printf "%.3f\n", ($1 - a) / 1e6 }' "$C/cmd.out" >>"$C/baseline.ms"
done

# --- 9: status endpoint under attack ---------------------------------------------------------

say "status probes under 1,000 hostile connections of each kind"
# One leader with the status endpoint; a python3 attacker process holds HOSTILE connections of
# one kind open (reconnecting those the server closes) while this side times full probes:
# connect, GET, read to the close (every other pair of probes waits 10 ms between connect and
# GET, as a busy client may: that wait is not counted). Kinds: idle (say nothing), drip (a head a byte a second),
# body (a head announcing a body that never comes), flood (replace the oldest connection with
# a new one, as fast as it can). Also records the leader's peak threads and VmRSS, and its
# renewals during the attacks.
S=$work/status
start_server status
status_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
replica_env "$S" r1 status-lock "$SHORT_LEASE" "$SHORT_RENEW" "$SHORT_RETRY"
env -i "${REPLICA_ENV[@]}" K8S_AWAIT_ELECTION_STATUS_ENDPOINT="127.0.0.1:$status_port" \
  "$BIN" sh -c "$CMD_SCRIPT" >>"$S/r1.log" 2>&1 </dev/null &
PID[r1]=$!
python3 - "$status_port" "${PID[r1]}" "$STATUS_PROBES" "$HOSTILE" "$S" <<'PY' ||
import json, os, resource, select, socket, subprocess, sys, time
port, pid, probes, hostile, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ATTACK = r"""
import resource, socket, sys, time
kind, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
DRIP = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: "
BODY = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"
def conn():
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        if kind == "drip": s.sendall(DRIP[:1])
        if kind == "body": s.sendall(BODY)
        s.setblocking(False)
        return s
    except OSError:
        return None
def alive(s):
    try:
        while s.recv(4096): pass
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
conns, sent, ready, i, last = [None] * n, [1] * n, False, 0, time.monotonic()
while True:
    if kind == "flood":
        if conns[i]: conns[i].close()
        conns[i] = conn()
        i = (i + 1) % n
        if i: continue
    else:
        drip = kind == "drip" and time.monotonic() - last >= 1
        if drip: last = time.monotonic()
        for j, s in enumerate(conns):
            dead = s is None
            if s and drip:
                b, sent[j] = DRIP[sent[j]:sent[j] + 1] or b"a", sent[j] + 1
                try: s.send(b)
                except OSError: dead = True
            if s and not dead: dead = not alive(s)
            if dead:
                if s: s.close()
                conns[j], sent[j] = conn(), 1
        time.sleep(0.05)
    if not ready and all(conns):
        print("ready", flush=True)
        ready = True
"""
def probe(path, delay=0):
    t = time.perf_counter()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if delay:
            time.sleep(delay)
            t += delay
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: probe\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
        s.close()
    except OSError as e:
        return None, ("%s after %.0f ms" % (type(e).__name__, (time.perf_counter() - t) * 1000)).encode()
    return (time.perf_counter() - t) * 1000, data
def doc():
    ms, data = probe("/status")
    try:
        return json.loads(data.split(b"\r\n\r\n", 1)[1])
    except (IndexError, ValueError):
        return {}
def proc():
    f = dict(l.split(":", 1) for l in open("/proc/%d/status" % pid))
    return int(f["Threads"]), int(f["VmRSS"].split()[0])
deadline = time.monotonic() + 20
while not doc().get("leading"):
    if time.monotonic() > deadline: sys.exit("the leader's /status never said leading")
    time.sleep(0.1)
renewals0, t0 = doc()["renewals"], time.monotonic()
idle = proc()
peak, failed, why = idle, 0, []
for kind in ["idle", "drip", "body", "flood"]:
    a = subprocess.Popen([sys.executable, "-c", ATTACK, kind, str(port), str(hostile)], stdout=subprocess.PIPE)
    if not select.select([a.stdout], [], [], 60)[0] or not a.stdout.readline():
        a.kill()
        sys.exit("the %s attacker did not get %d connections open" % (kind, hostile))
    with open("%s/probe-%s.ms" % (out, kind), "w") as f:
        for k in range(probes):
            ms, data = probe(["/status", "/metrics"][k % 2], [0, 0, 0.01, 0.01][k % 4])
            if ms is None or not data.startswith(b"HTTP/1.1 200 "):
                failed += 1
                why.append("%s: %s" % (kind, data[:60].decode(errors="replace") or "closed without an answer"))
            else:
                f.write("%.3f\n" % ms)
            peak = tuple(map(max, peak, proc()))
            time.sleep(0.02)
    a.kill()
    a.wait()
renewals = doc()["renewals"] - renewals0
with open(out + "/status-summary", "w") as f:
    print(failed, idle[0], peak[0], idle[1], peak[1], renewals, round(time.monotonic() - t0), file=f)
with open(out + "/status-unanswered", "w") as f:
    print("; ".join(why) or "none", file=f)
PY
  die "status probes under attack failed: $(tail -n 3 "$S/r1.log")"
cat "$S"/probe-*.ms >"$S/probe.ms"
read -r st_failed st_threads0 st_threads st_rss0 st_rss st_renewals st_secs <"$S/status-summary"
st_why=$(cat "$S/status-unanswered")
st_kinds=""
for kind in idle drip body flood; do st_kinds+="$kind $(pct 95 "$S/probe-$kind.ms"), "; done
stop_replicas

say "SIGKILL to reaped for large processes (the kill margin's basis)"
# A python3 child maps and touches N GiB of anonymous memory, then the parent SIGKILLs it and
# times waitpid. The kernel frees the memory before the process counts as exited.
kill_to_reap() {
  python3 - "$@" <<'PY'
import mmap, os, signal, sys, time
for gib in [int(a) for a in sys.argv[1:]]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        m = mmap.mmap(-1, gib << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
        os.write(w, b"r")
        time.sleep(600)
        os._exit(0)
    os.read(r, 1)
    t = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print(gib, round((time.monotonic() - t) * 1000, 1))
PY
}
kill_sizes="1 4"
((QUICK)) && kill_sizes="1"
kill_rows=$(kill_to_reap $kill_sizes 2>/dev/null || true)

stop_servers
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$((SECONDS - t_bench_start))

# --- report ----------------------------------------------------------------------------------

ho_p50=$(pct 50 "$A/handover_sig.ms") ho_p95=$(pct 95 "$A/handover_sig.ms")
hs_p50=$(pct 50 "$A/handover_stop.ms") hs_p95=$(pct 95 "$A/handover_stop.ms")
fm_p50=$(pct 50 "$A/failover_minus.ms") fm_p95=$(pct 95 "$A/failover_minus.ms")
fk_p50=$(pct 50 "$A/failover_kill.ms") fk_p95=$(pct 95 "$A/failover_kill.ms")
fr_p50=$(pct 50 "$A/failover_renew.ms") fr_p95=$(pct 95 "$A/failover_renew.ms")
cs_p50=$(pct 50 "$C/cold.ms") cs_p95=$(pct 95 "$C/cold.ms")
cb_p50=$(pct 50 "$C/baseline.ms")
st_p50=$(pct 50 "$S/probe.ms") st_p95=$(pct 95 "$S/probe.ms") st_n=$(count "$S/probe.ms")
st_max=$(pct 100 "$S/probe.ms")
hwm_leader_mib=$(awk -v k="$hwm_leader" 'BEGIN { printf "%.2f", k / 1024 }')
hwm_followers_mib=$(awk -v k="$hwm_followers" 'BEGIN { printf "%.2f", k / 1024 }')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || commit="$commit+dirty"
mode=full
((QUICK)) && mode=quick
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
short="$SHORT_LEASE/$SHORT_RENEW/$SHORT_RETRY"
client_go_side_by_side
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$((SECONDS - t_bench_start))

{
  echo "## k8s-await-election benchmarks ($mode run)"
  echo
  echo "$started_at, commit $commit, $(nproc) CPUs ($cpu_model), kernel $(uname -r)."
  echo "Load average (1/5/15 min) at start: $load_start; at end: $load_end. Took ${elapsed} s."
  echo "Binary: \`$built\` from \`scripts/build-static.sh\` (static; measured as the copy \`$bin_rel\`)."
  echo "API server: \`test-apiserver\` (release build) on 127.0.0.1, TLS and bearer tokens."
  echo
  echo "| Figure | Value | Goal | Met | Command |"
  echo "|---|---|---|---|---|"
  echo "| Graceful hand-over p50 / p95 (n=$HANDOVER_RUNS) | $ho_p50 / $ho_p95 ms | p95 ≤ 250 ms | $(ok "$ho_p95" 250) | 3 replicas, timings $short s: \`kill -TERM <leader>\` → next replica's CMD prints \`start \$(date +%s%N)\` |"
  echo "| … of which CMD stopped → next CMD started p50 / p95 | $hs_p50 / $hs_p95 ms | — | | same runs, from the old CMD's TERM-trap line |"
  echo "| Crash fail-over − lease duration p50 / p95 (n=$FAILOVER_RUNS) | $fm_p50 / $fm_p95 ms | p95 ≤ 250 ms | $(ok "$fm_p95" 250) | \`kill -KILL <leader>\` → next CMD start, from the leader's last Lease PUT 200 in \`--request-log\` ($fr_p50 / $fr_p95 ms), minus ${SHORT_LEASE} s |"
  echo "| Crash fail-over from the SIGKILL p50 / p95 | $fk_p50 / $fk_p95 ms | ≤ lease ${SHORT_LEASE} s | $(ok "$fk_p95" "$((SHORT_LEASE * 1000))") | same runs, from \`kill -KILL\` (kills land at random points of the 1 s renew cycle) |"
  echo "| API requests per minute, 1 leader + 4 followers, 15/10/2 | $req_per_min /min | ≤ 40 /min | $(ok "$req_per_min" 40) | request-log lines over $(fmt "$minutes" 2) min after a ${WARMUP_SECONDS} s warm-up ($req_by_verb); followers re-open their watch every 3600 s |"
  echo "| Leader memory high-water mark (VmHWM) | $hwm_leader_mib MiB | ≤ 4 MiB | $(ok "$hwm_leader_mib" 4) | \`grep VmHWM /proc/<leader pid>/status\` after the steady window |"
  echo "| Follower VmHWM (max of 4) | $hwm_followers_mib MiB | — | | same, followers |"
  echo "| Static binary size ($stripped) | $bin_mib MiB ($bin_size B) | ≤ 2.5 MiB | $(ok "$bin_mib" 2.5) | \`stat -c %s $built\` |"
  if ((${#pt_real[@]})); then
    echo "| Passthrough overhead, CMD with real start-up (\`${pt_real[5]}\`) | ×${pt_real[2]} (${pt_real[1]} ms vs ${pt_real[0]} ms direct: ${pt_real[4]} ms) | ≤ 1.10 | $(ok "${pt_real[2]}" 1.10) | ${pt_real[3]} |"
  else
    echo "| Passthrough overhead, CMD with real start-up | n/a (no python3) | ≤ 1.10 | ❌ | — |"
  fi
  echo "| Passthrough, worst case: \`/bin/true\` | ×${pt_true[2]} (${pt_true[1]} ms vs ${pt_true[0]} ms direct: ${pt_true[4]} ms) | ≈ floor | | ${pt_true[3]} |"
  echo "| Passthrough, worst case: \`sh -c :\` | ×${pt_sh[2]} (${pt_sh[1]} ms vs ${pt_sh[0]} ms direct: ${pt_sh[4]} ms) | ≈ floor | | ${pt_sh[3]} |"
  if ((${#pt_floor[@]})); then
    beyond=$(awk -v a="${pt_floor[1]}" -v b="${pt_true[1]}" 'BEGIN { printf "%+.3f", b - a }')
    echo "| Floor: any exec wrapper (1-line static C \`execve\`), \`/bin/true\` | ×${pt_floor[2]} (${pt_floor[1]} ms vs ${pt_floor[0]} ms direct: ${pt_floor[4]} ms); ours costs $beyond ms more | — | | ${pt_floor[3]} (\`cc -O2 -static-pie\`) |"
  fi
  if [[ -n $kill_rows ]]; then
    while read -r gib ms; do
      echo "| SIGKILL → reaped, process with $gib GiB touched | $ms ms | < kill margin (2 s) | $(ok "$ms" 2000) | python3 child: \`mmap(MAP_POPULATE)\` of $gib GiB, \`kill -KILL\`, time to \`waitpid\` |"
    done <<<"$kill_rows"
  fi
  echo "| Cold start to CMD running p50 / p95 (n=$COLD_RUNS) | $cs_p50 / $cs_p95 ms | ≤ 50 ms | $(ok "$cs_p95" 50) | \`$bin_rel date +%s%N\`, election on, fresh Lease name each run, from \$EPOCHREALTIME before the fork (same without our binary: $cb_p50 ms) |"
  echo "| Status probe latency under $HOSTILE hostile connections p50 / p95 (n=$st_n) | $st_p50 / $st_p95 ms | p95 ≤ 100 ms | $(ok "$st_p95" 100) | python3 attacker holding $HOSTILE connections of each kind (p95 ms: ${st_kinds%, }) while GET /status and /metrics are timed connect → close (half of them send the request 10 ms after connecting, not counted); max $st_max ms; $st_failed probes unanswered ($st_why); leader threads $st_threads0 → peak $st_threads, VmRSS $st_rss0 → peak $st_rss KiB; $st_renewals renewals in $st_secs s |"
  echo "| Idle CPU, leader (15/10/2) | $sch_leader ms CPU/min ($(cpu_pct "$sch_leader") % of a core) | — | | sum of \`/proc/<pid>/task/*/schedstat\` over the steady window (live threads only: misses a watch thread that ended); utime+stime from \`/proc/<pid>/stat\` ($((1000 / clk_tck)) ms ticks): $cpu_leader ms/min |"
  echo "| Idle CPU, follower (15/10/2) | $sch_follower ms CPU/min ($(cpu_pct "$sch_follower") % of a core) | — | | same, one follower; utime+stime: $cpu_follower ms/min |"
  echo
  echo
  if ((${#CG_ROWS[@]})); then
    echo "Side by side with client-go (the test peer \`tests/interop/client-go-peer\`: client-go's \`leaderelection\`, as in the Go tool), same run, same API server binary:"
    echo
    echo "| Figure | Ours | client-go | client-go ÷ ours | Command |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${CG_ROWS[@]}"
  else
    echo "No client-go comparison: $CG_SKIPPED."
  fi
  echo
  echo "Checks: $overlap_a overlapping CMD starts in the hand-over/fail-over runs (must be 0);" \
    "$bad_exit replicas exited non-zero after SIGTERM (must be 0);" \
    "$st_failed status probes unanswered under attack (should be 0)."
} >"$work/results.md"

cp "$work/results.md" "$out_dir/results.md"
cat "$out_dir/results.md"
say "written to ${out_dir#"$root"/}/results.md (samples and logs: ${work#"$root"/}/)"
((overlap_a == 0 && bad_exit == 0)) || die "invariant violated (see above)"
