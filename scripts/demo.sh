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
# The leader also points the Service `demo` at its (made-up) pod IP with an EndpointSlice, and
# the demo writes a kubeconfig for the test API server: the kubectl command line it prints at
# the start watches the Lease and the EndpointSlice live from another terminal, and at the end
# it shows them with kubectl (when kubectl is installed).
#
# After the build, the demo itself takes about 15 seconds. Set DEMO_KEEP=1 to keep the logs
# (their directory is printed at the end), DEMO_HOLD=SECONDS to keep everything running that
# much longer at the end (to play with kubectl).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LEASE=4 RENEW=3 RETRY=1
LOCK=demo
ELECTION_NAME=demo
PODS=(pod-1 pod-2 pod-3)
SERVICE=demo
declare -A POD_IP=([pod-1]=10.0.0.1 [pod-2]=10.0.0.2 [pod-3]=10.0.0.3)

# ms between two ns timestamps, with one decimal.
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

work=$(mktemp -d "${TMPDIR:-/tmp}/k8s-await-election-demo.XXXXXX")
on_exit() {
  if [[ -n ${DEMO_KEEP:-} || $1 -ne 0 ]]; then
    echo "(logs kept in $work)" >&2
  else
    rm -rf "$work"
  fi
}
stop_on_exit

# --- build ---------------------------------------------------------------------------------

say "building the static release binary and the test API server (first time: a few minutes)"
build "$work/build.log"
note "$(tail -n 1 "$work/build.log" | sed 's/^ *//')"
note "$(grep '^static binary' "$work/build.log" || echo "binary: $BIN")"

# --- API server ----------------------------------------------------------------------------

say "starting the test API server"
# One more token, for kubectl.
start_apiserver "$work" demo-token "${PODS[@]}" kubectl
note "https://127.0.0.1:$PORT (request log: one line per request, $work/requests.log)"
write_kubeconfig "$work" kubectl
kubectl_cmd="kubectl --kubeconfig $work/kubeconfig get lease,endpointslice"
note "watch the Lease and the EndpointSlice live from another terminal (DEMO_HOLD=60 keeps it all up longer):"
note "  $kubectl_cmd --watch"

lease_url="https://127.0.0.1:$PORT/apis/coordination.k8s.io/v1/namespaces/$NS/leases/$LOCK"
# The Lease as JSON, read with pod-1's token.
lease_json() {
  curl -sS --max-time 2 --cacert "$work/sa-${PODS[0]}/ca.crt" \
    -H "Authorization: Bearer $(cat "$work/sa-${PODS[0]}/token")" "$lease_url"
}
lease_field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
show_lease() {
  command -v curl >/dev/null || {
    note "(curl is not installed: cannot show the Lease)"
    return 0
  }
  local json
  json=$(lease_json) || return 0
  note "Lease $NS/$LOCK: holderIdentity=$(lease_field holderIdentity <<<"$json")" \
    "leaseTransitions=$(lease_field leaseTransitions <<<"$json")" \
    "renewTime=$(lease_field renewTime <<<"$json")"
  note "  (curl --cacert ca.crt -H 'Authorization: Bearer ...' $lease_url)"
}

# --- replicas ------------------------------------------------------------------------------

# CMD: log start/stop with a timestamp to the shared events file, print every second.
# `sleep 1 & wait` lets the TERM trap run at once instead of after the current sleep.
# shellcheck disable=SC2016 # expanded by the CMD's shell, not here
CMD_SCRIPT='
echo "start $POD $(date +%s%N)" >>"$EVENTS"
trap '\''echo "stop $POD $(date +%s%N)" >>"$EVENTS"; kill $! 2>/dev/null; exit 0'\'' TERM INT
while :; do
  echo "serving from $POD"
  sleep 1 & wait $!
done'

events=$work/events
: >"$events"

say "starting 3 replicas (lease ${LEASE}s, renew deadline ${RENEW}s, retry ${RETRY}s); each runs the CMD"
note "sh -c 'while :; do echo \"serving from \$POD\"; sleep 1; done'   (plus start/stop lines)"
stamp t_launch
for pod in "${PODS[@]}"; do
  start_replica "$work" "$pod" "$LOCK" "$LEASE" "$RENEW" "$RETRY"
  note "$pod: pid ${PID[$pod]}, token demo-token-$pod, $work/sa-$pod"
done

say "waiting for a leader"
wait_until 10 more_starts "$work" 0 || die "no CMD started within 10 s"
read -r leader t_first <<<"$(last_start "$work")"
note "$leader won: its CMD started $(ms_between "$t_launch" "$t_first") ms after the replicas were launched"
sleep 2.2
show_lease
for pod in "${PODS[@]}"; do
  grep 'serving from' "$work/$pod.log" | tail -n 2 | sed "s/^/    [$pod] /" || true
done

# --- graceful hand-over --------------------------------------------------------------------

say "SIGTERM to the leader $leader (pid ${PID[$leader]}): graceful hand-over"
stamp t_term
event "$work" signal-TERM "$leader"
kill -TERM "${PID[$leader]}"
wait_until 10 more_starts "$work" 1 || die "no replica took over within 10 s after SIGTERM"
read -r leader2 t_start2 <<<"$(last_start "$work")"
t_stop1=$(last_event "$work" stop "$leader")
set +e
wait "${PID[$leader]}"
code1=$?
set -e
unset "PID[$leader]"
handover=$(ms_between "$t_stop1" "$t_start2")
handover_sig=$(ms_between "$t_term" "$t_start2")
note "$leader's CMD stopped, $leader exited with code $code1 (CMD's own code: its TERM trap exits 0)"
note "$leader2's CMD started $handover ms after $leader's CMD stopped ($handover_sig ms after the SIGTERM)"
show_lease
sleep 1.2
grep 'serving from' "$work/$leader2.log" | tail -n 1 | sed "s/^/    [$leader2] /" || true

# --- crash fail-over -----------------------------------------------------------------------

say "SIGKILL to the new leader $leader2 (pid ${PID[$leader2]}): crash fail-over, the Lease must expire first (${LEASE}s)"
stamp t_kill
event "$work" signal-KILL "$leader2"
# (The braces keep bash's "Killed" job notice out of the output.)
{ kill -KILL "${PID[$leader2]}" && wait "${PID[$leader2]}"; } 2>/dev/null || true
unset "PID[$leader2]"
note "nobody releases the Lease now; $leader2's CMD died with it (parent-death signal)"
wait_until $((LEASE * 3)) more_starts "$work" 2 || die "no replica took over within $((LEASE * 3)) s after SIGKILL"
read -r leader3 t_start3 <<<"$(last_start "$work")"
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
note "$leader3's CMD started $failover ms after the SIGKILL$since_renew"
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
if command -v kubectl >/dev/null; then
  say "the Lease and the EndpointSlice, as kubectl shows them ($kubectl_cmd)"
  $kubectl_cmd 2>&1 | sed 's/^/    /' || note "(kubectl failed)"
else
  note "(kubectl is not installed: cannot show the Lease and the EndpointSlice with it)"
fi
# Never two CMDs at once: every start comes after the previous CMD stopped (or was killed).
overlaps=$(overlaps "$work" | paste -sd ' ')
if [[ -z $overlaps ]]; then
  single="at most one CMD ran at any time"
else
  single="OVERLAP: two CMDs ran at once ($overlaps)"
fi
say "summary"
note "first leader:        $leader"
note "graceful hand-over:  $handover ms  ($leader SIGTERM -> $leader2 CMD running: $handover_sig ms; $leader exit code $code1)"
note "crash fail-over:     $failover ms after SIGKILL, $failover_renew ms after the last renewal (lease ${LEASE}s)"
note "leader now:          $leader3; $single"
note "API requests:        $n_requests in total from 3 replicas"
if [[ -n ${DEMO_HOLD:-} ]]; then
  require_numbers "$DEMO_HOLD"
  say "holding for $DEMO_HOLD s (DEMO_HOLD): $kubectl_cmd --watch"
  sleep "$DEMO_HOLD"
fi
say "done: stopping the replicas and the API server"
[[ -z $overlaps ]] || die "two CMDs ran at once: the safety guarantee failed"
