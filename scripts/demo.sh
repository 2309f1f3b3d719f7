#!/usr/bin/env bash
# A one-minute tour of k8s-await-election on your machine, no cluster needed:
#
#   scripts/demo.sh            (from any directory; needs cargo, and curl to show the Lease)
#
# 1. builds the static release binary (scripts/build-static.sh) and the test API server
#    (`cargo build --release -p test-apiserver`; the only network it needs is crates.io),
# 2. starts the test API server on 127.0.0.1 and three replicas pod-1..pod-3, each with its own
#    token and service-account directory, lease 4 s / renew deadline 3 s / retry 1 s, all
#    running the same CMD: a shell loop printing "serving from <pod>" every second,
# 3. reads the Lease from the API server to show who leads,
# 4. SIGTERMs the leader (graceful hand-over: its CMD stops, it releases the Lease, the next
#    replica's CMD starts) and measures CMD stopped -> next CMD started,
# 5. SIGKILLs the new leader (crash: nobody releases the Lease) and measures the fail-over,
#    which is about the lease duration,
# 6. prints a timeline and a summary, and stops every process it started.
#
# After the build, the demo itself takes about 15 seconds. Set DEMO_KEEP=1 to keep the logs
# (their directory is printed at the end).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

LEASE=4 RENEW=3 RETRY=1
LOCK=demo NS=default
PODS=(pod-1 pod-2 pod-3)

say() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
  printf 'demo: error: %s\n' "$*" >&2
  exit 1
}

# Nanoseconds since the epoch without forking (bash 5), else date(1).
now_ns() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    local t=${EPOCHREALTIME//[.,]/}
    printf '%s000\n' "$t"
  else
    date +%s%N
  fi
}

# ms between two ns timestamps, with one decimal.
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

# Calls "$@" every 50 ms until it succeeds; fails after $1 seconds.
wait_until() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# --- processes and cleanup -----------------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/k8s-await-election-demo.XXXXXX")
server_pid=""
declare -A PID=() # pod -> pid of its k8s-await-election process

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pids=()
  for p in "${PID[@]}" $server_pid; do
    kill -0 "$p" 2>/dev/null && pids+=("$p")
  done
  if ((${#pids[@]})); then
    # Replicas release the lease and stop their CMD on SIGTERM.
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 40); do
      local alive=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      ((alive)) || break
      sleep 0.05
    done
    { kill -KILL "${pids[@]}" && wait "${pids[@]}"; } 2>/dev/null || true
  fi
  if [[ -n ${DEMO_KEEP:-} || $status -ne 0 ]]; then
    echo "(logs kept in $work)" >&2
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build ---------------------------------------------------------------------------------

say "building the static release binary and the test API server (first time: a few minutes)"
command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
BIN=$(scripts/build-static.sh 2>"$work/build.log") || {
  cat "$work/build.log" >&2
  die "scripts/build-static.sh failed"
}
[[ $BIN == /* ]] || BIN=$root/$BIN
cargo build --release --locked -p test-apiserver 2>>"$work/build.log" || {
  cat "$work/build.log" >&2
  die "cargo build -p test-apiserver failed"
}
APISERVER=${CARGO_TARGET_DIR:-$root/target}/release/test-apiserver
[[ $APISERVER == /* ]] || APISERVER=$root/$APISERVER
info "$(tail -n 1 "$work/build.log" | sed 's/^ *//')"
info "$(grep '^static binary' "$work/build.log" || echo "binary: $BIN")"

# --- API server ----------------------------------------------------------------------------

say "starting the test API server"
tokens=()
for pod in "${PODS[@]}"; do tokens+=(--token "demo-token-$pod"); done
"$APISERVER" --sa-dir "$work/sa-${PODS[0]}" --namespace "$NS" "${tokens[@]}" \
  --request-log "$work/requests.log" >"$work/apiserver.out" 2>&1 </dev/null &
server_pid=$!
wait_until 10 grep -q '^listening https://127.0.0.1:' "$work/apiserver.out" ||
  die "the test API server did not start: $(cat "$work/apiserver.out")"
port=$(sed -n 's#^listening https://127.0.0.1:\([0-9]*\).*#\1#p' "$work/apiserver.out" | head -n 1)
info "https://127.0.0.1:$port (request log: one line per request, $work/requests.log)"
for pod in "${PODS[@]:1}"; do
  mkdir -p "$work/sa-$pod"
  cp "$work/sa-${PODS[0]}/ca.crt" "$work/sa-${PODS[0]}/namespace" "$work/sa-$pod/"
  printf '%s' "demo-token-$pod" >"$work/sa-$pod/token"
done

lease_url="https://127.0.0.1:$port/apis/coordination.k8s.io/v1/namespaces/$NS/leases/$LOCK"
# The Lease as JSON, read with pod-1's token.
lease_json() {
  curl -sS --max-time 2 --cacert "$work/sa-${PODS[0]}/ca.crt" \
    -H "Authorization: Bearer $(cat "$work/sa-${PODS[0]}/token")" "$lease_url"
}
lease_field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
show_lease() {
  command -v curl >/dev/null || {
    info "(curl is not installed: cannot show the Lease)"
    return 0
  }
  local json
  json=$(lease_json) || return 0
  info "Lease $NS/$LOCK: holderIdentity=$(lease_field holderIdentity <<<"$json")" \
    "leaseTransitions=$(lease_field leaseTransitions <<<"$json")" \
    "renewTime=$(lease_field renewTime <<<"$json")"
  info "  (curl --cacert ca.crt -H 'Authorization: Bearer ...' $lease_url)"
}

# --- replicas ------------------------------------------------------------------------------

# CMD: log start/stop with a timestamp to the shared events file, print every second.
# `sleep 1 & wait` lets the TERM trap run at once instead of after the current sleep.
# shellcheck disable=SC2016 # expanded by the CMD's shell, not here
CMD_SCRIPT='
echo "start $POD $(date +%s%N)" >>"$DEMO_EVENTS"
trap '\''echo "stop $POD $(date +%s%N)" >>"$DEMO_EVENTS"; kill $! 2>/dev/null; exit 0'\'' TERM INT
while :; do
  echo "serving from $POD"
  sleep 1 & wait $!
done'

events=$work/events
: >"$events"
event() { echo "$1 $2 $(now_ns)" >>"$events"; }

start_replica() {
  local pod=$1
  env -i PATH="$PATH" POD="$pod" DEMO_EVENTS="$events" \
    KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$port" \
    K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR="$work/sa-$pod" \
    K8S_AWAIT_ELECTION_ENABLED=1 \
    K8S_AWAIT_ELECTION_NAME=demo \
    K8S_AWAIT_ELECTION_LOCK_NAME="$LOCK" \
    K8S_AWAIT_ELECTION_LOCK_NAMESPACE="$NS" \
    K8S_AWAIT_ELECTION_IDENTITY="$pod" \
    K8S_AWAIT_ELECTION_LEASE_DURATION="$LEASE" \
    K8S_AWAIT_ELECTION_RENEW_DEADLINE="$RENEW" \
    K8S_AWAIT_ELECTION_RETRY_PERIOD="$RETRY" \
    "$BIN" sh -c "$CMD_SCRIPT" >>"$work/$pod.log" 2>&1 </dev/null &
  PID[$pod]=$!
}

# The pod whose CMD started last (only one CMD runs at a time) and its start time.
last_start() { awk '$1 == "start" { p = $2; t = $3 } END { if (p != "") print p, t }' "$events"; }
starts() { grep -c '^start ' "$events" || true; }
event_time() { awk -v k="$1" -v p="$2" '$1 == k && $2 == p { t = $3 } END { print t }' "$events"; }
has_starts() { (($(starts) >= $1)); }

say "starting 3 replicas (lease ${LEASE}s, renew deadline ${RENEW}s, retry ${RETRY}s); each runs the CMD"
info "sh -c 'while :; do echo \"serving from \$POD\"; sleep 1; done'   (plus start/stop lines)"
t_launch=$(now_ns)
for pod in "${PODS[@]}"; do
  start_replica "$pod"
  info "$pod: pid ${PID[$pod]}, token demo-token-$pod, $work/sa-$pod"
done

say "waiting for a leader"
wait_until 10 has_starts 1 || die "no CMD started within 10 s"
read -r leader t_first <<<"$(last_start)"
info "$leader won: its CMD started $(ms_between "$t_launch" "$t_first") ms after the replicas were launched"
sleep 2.2
show_lease
for pod in "${PODS[@]}"; do
  grep 'serving from' "$work/$pod.log" | tail -n 2 | sed "s/^/    [$pod] /" || true
done

# --- graceful hand-over --------------------------------------------------------------------

say "SIGTERM to the leader $leader (pid ${PID[$leader]}): graceful hand-over"
t_term=$(now_ns)
event signal-TERM "$leader"
kill -TERM "${PID[$leader]}"
wait_until 10 has_starts 2 || die "no replica took over within 10 s after SIGTERM"
read -r leader2 t_start2 <<<"$(last_start)"
t_stop1=$(event_time stop "$leader")
set +e
wait "${PID[$leader]}"
code1=$?
set -e
unset "PID[$leader]"
handover=$(ms_between "$t_stop1" "$t_start2")
handover_sig=$(ms_between "$t_term" "$t_start2")
info "$leader's CMD stopped, $leader exited with code $code1 (CMD's own code: its TERM trap exits 0)"
info "$leader2's CMD started $handover ms after $leader's CMD stopped ($handover_sig ms after the SIGTERM)"
show_lease
sleep 1.2
grep 'serving from' "$work/$leader2.log" | tail -n 1 | sed "s/^/    [$leader2] /" || true

# --- crash fail-over -----------------------------------------------------------------------

say "SIGKILL to the new leader $leader2 (pid ${PID[$leader2]}): crash fail-over, the Lease must expire first (${LEASE}s)"
t_kill=$(now_ns)
event signal-KILL "$leader2"
# (The braces keep bash's "Killed" job notice out of the output.)
{ kill -KILL "${PID[$leader2]}" && wait "${PID[$leader2]}"; } 2>/dev/null || true
unset "PID[$leader2]"
info "nobody releases the Lease now; $leader2's CMD died with it (parent-death signal)"
wait_until $((LEASE * 3)) has_starts 3 || die "no replica took over within $((LEASE * 3)) s after SIGKILL"
read -r leader3 t_start3 <<<"$(last_start)"
failover=$(ms_between "$t_kill" "$t_start3")
# The last successful renewal of the killed leader: the last Lease update (PUT 200) before the
# kill in the API server's request log (followers only watch while the Lease is held).
renew_ms=$(awk -v k="$((t_kill / 1000000))" \
  '$1 <= k && $2 == "update" && $3 == 200 && $4 ~ /\/leases\// { t = $1 } END { print t }' \
  "$work/requests.log")
if [[ -n $renew_ms ]]; then
  failover_renew=$(ms_between "$((renew_ms * 1000000))" "$t_start3")
  since_renew=" ($failover_renew ms after $leader2's last renewal; the lease lasts ${LEASE}000 ms)"
else
  failover_renew="?" since_renew=""
fi
info "$leader3's CMD started $failover ms after the SIGKILL$since_renew"
show_lease
sleep 1.2
grep 'serving from' "$work/$leader3.log" | tail -n 1 | sed "s/^/    [$leader3] /" || true

# --- summary -------------------------------------------------------------------------------

say "timeline (CMD start/stop lines written by the CMD itself, signals by this script)"
sort -k3,3n "$events" | awk -v t0="$t_first" '
  { printf "    %+9.3f s  %-12s %s\n", ($3 - t0) / 1e9, $1, $2 }'

say "what each replica logged (INFO and above)"
for pod in "${PODS[@]}"; do
  grep -v ' DEBUG \| TRACE ' "$work/$pod.log" | grep -v 'serving from' | sed "s/^/    [$pod] /" || true
done

n_requests=$(wc -l <"$work/requests.log")
# Never two CMDs at once: every start comes after the previous CMD stopped (or was killed).
overlaps=$(sort -k3,3n "$events" | awk '
  $1 == "start" { if (running != "") { print running "+" $2 }; running = $2 }
  ($1 == "stop" || $1 == "signal-KILL") && $2 == running { running = "" }')
if [[ -z $overlaps ]]; then
  single="at most one CMD ran at any time"
else
  single="OVERLAP: two CMDs ran at once ($overlaps)"
fi
say "summary"
info "first leader:        $leader"
info "graceful hand-over:  $handover ms  ($leader SIGTERM -> $leader2 CMD running: $handover_sig ms; $leader exit code $code1)"
info "crash fail-over:     $failover ms after SIGKILL, $failover_renew ms after the last renewal (lease ${LEASE}s)"
info "leader now:          $leader3; $single"
info "API requests:        $n_requests in total from 3 replicas"
say "done: stopping the replicas and the API server"
[[ -z $overlaps ]] || die "two CMDs ran at once: the safety guarantee failed"
