# The client-go side of scripts/bench.sh (sourced by it after its own measurements; not run on
# its own): the same figures for the client-go test peer (tests/interop/client-go-peer, built
# by scripts/build-client-go-peer.sh), in the same run against the same test API server
# binary, and our requests/min with 49 followers, as a second table beside ours.
#   - graceful hand-over p50/p95, 3 peers at 4/3/1: PEER_SHUTDOWN=cancel (SIGTERM stops CMD,
#     then releases) and go-tool (no release: the next one waits for the lease to expire)
#   - crash fail-over − lease duration p50/p95 (SIGKILL to the leading peer)
#   - API requests per minute, 1 leader + 4 and 1 leader + 49 followers at 15/10/2: peers, and
#     ours with 49 followers; the three clusters share one window (requests do not depend on
#     CPU speed)
#   - leader and follower VmHWM of the peers (1 + 4), and the peer binary's size
# Uses bench.sh's helpers and variables (start_apiserver, replica_env, CMD_SCRIPT, pct, ...);
# sets CG_ROWS (the table's lines) or CG_SKIPPED (why there is no table).
# shellcheck shell=bash

# start_peer DIR ID MODE LOCK [LEASE RENEW RETRY]: like start_replica, for the peer.
start_peer() {
  local dir=$1 id=$2 mode=$3
  replica_env "$dir" "$id" "${@:4}"
  env -i "${REPLICA_ENV[@]}" PEER_SHUTDOWN="$mode" "$PEER" sh -c "$CMD_SCRIPT" \
    >>"$dir/$id.log" 2>&1 </dev/null &
  PID[$id]=$!
}

# peer_handover DIR MODE RUNS: RUNS hand-overs among 3 peers g1..g3 in MODE; samples (SIGTERM
# → next CMD start, ms) into DIR/handover-MODE.ms.
peer_handover() {
  local dir=$1 mode=$2 runs=$3 run leader n t_next code i
  : >"$dir/events"
  : >"$dir/handover-$mode.ms"
  for i in 1 2 3; do start_peer "$dir" "g$i" "$mode" "$mode" "$SHORT_LEASE" "$SHORT_RENEW" "$SHORT_RETRY"; done
  wait_until 15 more_starts "$dir" 0 || die "client-go $mode: no leader within 15 s"
  for run in $(seq "$runs"); do
    sleep 1
    read -r leader _ <<<"$(last_start "$dir")"
    n=$(starts "$dir")
    stamp t_sig
    kill -TERM "${PID[$leader]}"
    wait_until $((SHORT_LEASE * 4)) more_starts "$dir" "$n" || die "client-go $mode hand-over $run: no CMD started"
    read -r _ t_next <<<"$(last_start "$dir")"
    code=0
    wait "${PID[$leader]}" || code=$?
    awk -v a="$t_sig" -v b="$t_next" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >>"$dir/handover-$mode.ms"
    note "client-go $mode hand-over $run/$runs: $(tail -n 1 "$dir/handover-$mode.ms") ms (exit $code)"
    start_peer "$dir" "$leader" "$mode" "$mode" "$SHORT_LEASE" "$SHORT_RENEW" "$SHORT_RETRY"
  done
  stop_replicas
}

client_go_side_by_side() {
  CG_ROWS=() CG_SKIPPED=""
  PEER=$(scripts/build-client-go-peer.sh 2>"$work/client-go-build.log") || true
  if [[ -z $PEER || ! -x $PEER ]]; then
    CG_SKIPPED="no client-go peer ($(tail -n 1 "$work/client-go-build.log"))"
    [[ -z ${CI:-} ]] || die "$CG_SKIPPED"
    note "skipping the client-go comparison: $CG_SKIPPED"
    return 0
  fi
  cp "$PEER" "$work/client-go-peer"
  PEER=$work/client-go-peer
  local G=$work/client-go
  say "client-go peer: hand-over (cancel, go-tool) and fail-over, 3 peers, timings $SHORT_LEASE/$SHORT_RENEW/$SHORT_RETRY s"
  start_apiserver "$G" bench-token-cg g1 g2 g3
  peer_handover "$G" cancel "$CG_HANDOVER_RUNS"
  peer_handover "$G" go-tool "$CG_HANDOVER_RUNS"

  : >"$G/events"
  : >"$G/failover_minus.ms"
  local i run leader n renew_ms t_next
  for i in 1 2 3; do start_peer "$G" "g$i" go-tool failover "$SHORT_LEASE" "$SHORT_RENEW" "$SHORT_RETRY"; done
  wait_until 15 more_starts "$G" 0 || die "client-go fail-over: no leader within 15 s"
  for run in $(seq "$CG_FAILOVER_RUNS"); do
    sleep "2.$((RANDOM % 10))"
    read -r leader _ <<<"$(last_start "$G")"
    n=$(starts "$G")
    stamp t_kill
    { kill -KILL "${PID[$leader]}" && wait "${PID[$leader]}"; } 2>/dev/null || true
    wait_until $((SHORT_LEASE * 4)) more_starts "$G" "$n" || die "client-go fail-over $run: no CMD started"
    read -r _ t_next <<<"$(last_start "$G")"
    renew_ms=$(awk -v k="$((t_kill / 1000000))" \
      '$1 <= k && $2 == "update" && $3 == 200 && $4 ~ /\/leases\/failover$/ { t = $1 } END { print t }' \
      "$G/requests.log")
    [[ -n $renew_ms ]] || die "client-go fail-over $run: no renewal in the request log"
    awk -v a="$renew_ms" -v b="$t_next" -v l="$SHORT_LEASE" \
      'BEGIN { printf "%.3f\n", b / 1e6 - a - l * 1000 }' >>"$G/failover_minus.ms"
    note "client-go fail-over $run/$CG_FAILOVER_RUNS: $(tail -n 1 "$G/failover_minus.ms") ms after lease expiry"
    start_peer "$G" "$leader" go-tool failover "$SHORT_LEASE" "$SHORT_RENEW" "$SHORT_RETRY"
  done
  stop_replicas
  stop_servers

  say "requests/min at 15/10/2, one ${STEADY_SECONDS} s window: ours 1+49, client-go 1+4 and 1+49"
  local M=$work/ours50 P5=$work/cg5 P50=$work/cg50 ids
  mapfile -t ids < <(seq -f 'm%g' 50)
  start_apiserver "$M" bench-token-m "${ids[@]}"
  : >"$M/events"
  for i in "${ids[@]}"; do start_replica "$M" "$i" steady; done
  start_apiserver "$P5" bench-token-p g1 g2 g3 g4 g5
  : >"$P5/events"
  for i in g1 g2 g3 g4 g5; do start_peer "$P5" "$i" go-tool steady; done
  mapfile -t ids < <(seq -f 'h%g' 50)
  start_apiserver "$P50" bench-token-h "${ids[@]}"
  : >"$P50/events"
  for i in "${ids[@]}"; do start_peer "$P50" "$i" go-tool steady; done
  for d in "$M" "$P5" "$P50"; do wait_until 30 more_starts "$d" 0 || die "no leader in $d within 30 s"; done
  sleep "$((WARMUP_SECONDS + 5))"
  local c0 c1
  stamp c0
  sleep "$STEADY_SECONDS"
  stamp c1
  local cg_leader hwm_cg_leader hwm_cg_followers=0 h id
  read -r cg_leader _ <<<"$(last_start "$P5")"
  hwm_cg_leader=$(hwm "${PID[$cg_leader]}")
  for id in g1 g2 g3 g4 g5; do
    [[ $id == "$cg_leader" ]] && continue
    h=$(hwm "${PID[$id]}")
    if ((h > hwm_cg_followers)); then hwm_cg_followers=$h; fi
  done
  stop_replicas
  stop_servers
  per_min() {
    awk -v a="$((c0 / 1000000))" -v b="$((c1 / 1000000))" '$1 >= a && $1 < b { n++ }
      END { printf "%.1f", n * 60000 / (b - a) }' "$1/requests.log"
  }
  local r_m r_p5 r_p50
  r_m=$(per_min "$M") r_p5=$(per_min "$P5") r_p50=$(per_min "$P50")

  # The report's rows: figure | ours | client-go | client-go ÷ ours.
  local ratio
  ratio() { awk -v o="$1" -v g="$2" 'BEGIN { if (o + 0 > 0) printf "×%.1f", g / o; else print "—" }'; }
  local c_p50 c_p95 t_p50 t_p95 f_p50 f_p95 mib peer_size strip_note=""
  c_p50=$(pct 50 "$G/handover-cancel.ms") c_p95=$(pct 95 "$G/handover-cancel.ms")
  t_p50=$(pct 50 "$G/handover-go-tool.ms") t_p95=$(pct 95 "$G/handover-go-tool.ms")
  f_p50=$(pct 50 "$G/failover_minus.ms") f_p95=$(pct 95 "$G/failover_minus.ms")
  mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }
  if command -v strip >/dev/null && strip -o "$work/client-go-peer.stripped" "$PEER" 2>/dev/null; then
    peer_size=$(stat -c %s "$work/client-go-peer.stripped") strip_note="stripped"
  else
    peer_size=$(stat -c %s "$PEER") strip_note="not stripped"
  fi
  CG_ROWS=(
    "| Graceful hand-over p50 / p95, client-go releasing (cancel) | $ho_p50 / $ho_p95 ms | $c_p50 / $c_p95 ms | $(ratio "$ho_p95" "$c_p95") | 3 replicas of a kind, $short s, n=$HANDOVER_RUNS / $CG_HANDOVER_RUNS: \`kill -TERM <leader>\` → next CMD start |"
    "| Graceful hand-over p50 / p95, client-go as the Go tool (no release) | $ho_p50 / $ho_p95 ms | $t_p50 / $t_p95 ms | $(ratio "$ho_p95" "$t_p95") | same, PEER_SHUTDOWN=go-tool |"
    "| Crash fail-over − lease duration p50 / p95 | $fm_p50 / $fm_p95 ms | $f_p50 / $f_p95 ms | $(ratio "$fm_p95" "$f_p95") | \`kill -KILL <leader>\` → next CMD start, from its last Lease PUT 200, minus ${SHORT_LEASE} s (n=$FAILOVER_RUNS / $CG_FAILOVER_RUNS) |"
    "| API requests/min, 1 leader + 4 followers, 15/10/2 | $req_per_min /min | $r_p5 /min | $(ratio "$req_per_min" "$r_p5") | request-log lines per minute (ours: its own window above; client-go: the shared window) |"
    "| API requests/min, 1 leader + 49 followers, 15/10/2 | $r_m /min | $r_p50 /min | $(ratio "$r_m" "$r_p50") | one shared $(fmt "$(awk -v w="$(((c1 - c0) / 1000000))" 'BEGIN { print w / 60000 }')" 2) min window for ours (1+49) and client-go (1+4, 1+49), separate API servers |"
    "| Leader VmHWM | $hwm_leader_mib MiB | $(mib "$hwm_cg_leader") MiB | $(ratio "$hwm_leader_mib" "$(mib "$hwm_cg_leader")") | after the steady window (1 + 4) |"
    "| Follower VmHWM (max of 4) | $hwm_followers_mib MiB | $(mib "$hwm_cg_followers") MiB | $(ratio "$hwm_followers_mib" "$(mib "$hwm_cg_followers")") | same |"
    "| Binary size | $bin_mib MiB | $(awk -v s="$peer_size" 'BEGIN { printf "%.2f", s / 1048576 }') MiB ($strip_note) | $(ratio "$bin_size" "$peer_size") | client-go peer: \`go build -trimpath\`, client-go v0.36.6 |"
  )
}
