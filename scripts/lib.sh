# Shared by the scripts (source it; it is not run on its own): messages, waiting, building the
# static binary and the test API server, starting the API server standalone and replicas of
# the binary against it, reading the CMD event log, stopping every process on exit, and the
# long runs of ignored integration tests.
#
# Sourcing it changes to the repository root and sets `root`, `target_dir`, `SCRIPT` (the
# script's name for messages) and `NS`. Set SAY_FD=2 before sourcing to send `say`/`note` to
# stderr (stdout is the default).
# shellcheck shell=bash

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
[[ $target_dir == /* ]] || target_dir=$root/$target_dir
SCRIPT=${0##*/}
SCRIPT=${SCRIPT%.sh}
NS=default

# --- messages --------------------------------------------------------------------------------

say() { printf '==> %s\n' "$*" >&"${SAY_FD:-1}"; }
note() { printf '    %s\n' "$*" >&"${SAY_FD:-1}"; }
die() {
  printf '%s: error: %s\n' "$SCRIPT" "$*" >&2
  exit 1
}
# usage_error MESSAGE: a bad command line (exit 64).
usage_error() {
  printf '%s: %s (see --help)\n' "$SCRIPT" "$*" >&2
  exit 64
}
# usage: prints the script's header comment (from line 2 to the `set -e...` line).
usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
# require_numbers VALUE...: each VALUE is a non-negative integer, else a usage error.
require_numbers() {
  local v
  for v in "$@"; do
    case "$v" in '' | *[!0-9]*) usage_error "not a number: $v" ;; esac
  done
}

# --- time ------------------------------------------------------------------------------------

# stamp VAR: nanoseconds since the epoch into VAR, without forking where bash has
# $EPOCHREALTIME (bash 5), else with date(1).
stamp() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then
    local _us=${EPOCHREALTIME//[.,]/} # (a name no caller passes as VAR)
    printf -v "$1" '%s000' "$_us"
  else
    printf -v "$1" '%s' "$(date +%s%N)"
  fi
}

# wait_until SECONDS COMMAND...: runs COMMAND every 20 ms until it succeeds; fails after
# SECONDS.
wait_until() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.02
  done
}

# --- build -----------------------------------------------------------------------------------

# build LOG: builds the static release binary (scripts/build-static.sh) and the test API server
# (release), their output into the file LOG; sets BIN and APISERVER (absolute paths).
build() {
  local log=$1
  command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
  BIN=$(scripts/build-static.sh 2>"$log") || {
    cat "$log" >&2
    die "scripts/build-static.sh failed"
  }
  [[ $BIN == /* ]] || BIN=$root/$BIN
  cargo build --release --locked -p test-apiserver 2>>"$log" || {
    cat "$log" >&2
    die "cargo build -p test-apiserver failed"
  }
  APISERVER=$target_dir/release/test-apiserver
}

# --- processes -------------------------------------------------------------------------------

declare -A PID=()     # replica id -> pid of its k8s-await-election process
declare -a SERVERS=() # test API server pids

# stop_pids PID...: SIGTERM to those still running, SIGKILL to those left after 5 s; reaps them.
stop_pids() {
  local pids=() p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && pids+=("$p"); done
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local i alive
  for i in $(seq 100); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.05
  done
  { kill -KILL "${pids[@]}" && wait "${pids[@]}"; } 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}

# stop_replicas: stops every replica (they release the Lease and stop their CMD on SIGTERM).
stop_replicas() {
  ((${#PID[@]})) || return 0
  stop_pids "${PID[@]}"
  PID=()
}

# stop_servers: stops every test API server.
stop_servers() {
  ((${#SERVERS[@]})) || return 0
  stop_pids "${SERVERS[@]}"
  SERVERS=()
}

# stop_on_exit: on exit (also by SIGINT or SIGTERM), stops the replicas, then the API servers,
# then calls the script's `on_exit STATUS` if it defines one; the exit status is kept.
stop_on_exit() {
  trap _cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_replicas
  stop_servers
  if declare -F on_exit >/dev/null; then on_exit "$status"; fi
  exit "$status"
}

# --- the test API server and replicas --------------------------------------------------------

# start_apiserver DIR TOKEN_PREFIX ID...: starts the test API server (output DIR/apiserver.out,
# one line per request in DIR/requests.log) that knows the token TOKEN_PREFIX-ID of every
# replica ID, and writes each replica's service-account directory DIR/sa-ID. Sets PORT.
start_apiserver() {
  local dir=$1 prefix=$2
  shift 2
  local ids=("$@") tokens=() id first=$dir/sa-$1
  mkdir -p "$dir"
  for id in "${ids[@]}"; do tokens+=(--token "$prefix-$id"); done
  "$APISERVER" --sa-dir "$first" --namespace "$NS" "${tokens[@]}" \
    --request-log "$dir/requests.log" >"$dir/apiserver.out" 2>&1 </dev/null &
  SERVERS+=($!)
  wait_until 10 grep -q '^listening https://127.0.0.1:' "$dir/apiserver.out" ||
    die "the test API server did not start: $(cat "$dir/apiserver.out")"
  PORT=$(sed -n 's#^listening https://127.0.0.1:\([0-9]*\).*#\1#p' "$dir/apiserver.out" | head -n 1)
  for id in "${ids[@]:1}"; do
    mkdir -p "$dir/sa-$id"
    cp "$first/ca.crt" "$first/namespace" "$dir/sa-$id/"
    printf '%s' "$prefix-$id" >"$dir/sa-$id/token"
  done
}

# write_kubeconfig DIR ID: writes DIR/kubeconfig for kubectl: the API server at PORT, its CA
# and the token of DIR/sa-ID, namespace NS.
write_kubeconfig() {
  local dir=$1 sa=$1/sa-$2
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test-apiserver
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority: $sa/ca.crt
users:
- name: $2
  user:
    tokenFile: $sa/token
contexts:
- name: test-apiserver
  context: {cluster: test-apiserver, user: $2, namespace: $NS}
current-context: test-apiserver
EOF
}

# replica_env DIR ID LOCK [LEASE RENEW RETRY]: the environment of replica ID (for env -i) into
# REPLICA_ENV: election on for Lease LOCK with the API server at PORT and the service-account
# directory DIR/sa-ID, the timings if given (else the defaults; a 250ms kill margin when they
# leave less than the default 2 s), K8S_AWAIT_ELECTION_NAME if
# ELECTION_NAME is set, service routing if SERVICE is set (see below), and for CMD: POD=ID and
# EVENTS=DIR/events (see CMD_SCRIPT).
replica_env() {
  local dir=$1 id=$2 lock=$3
  REPLICA_ENV=(
    PATH="$PATH" POD="$id" EVENTS="$dir/events"
    KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$PORT"
    K8S_AWAIT_ELECTION_SERVICEACCOUNT_DIR="$dir/sa-$id"
    K8S_AWAIT_ELECTION_ENABLED=1
  )
  [[ -z ${ELECTION_NAME:-} ]] || REPLICA_ENV+=(K8S_AWAIT_ELECTION_NAME="$ELECTION_NAME")
  REPLICA_ENV+=(
    K8S_AWAIT_ELECTION_LOCK_NAME="$lock"
    K8S_AWAIT_ELECTION_LOCK_NAMESPACE="$NS"
    K8S_AWAIT_ELECTION_IDENTITY="$id"
  )
  [[ -z ${4:-} ]] || REPLICA_ENV+=(
    K8S_AWAIT_ELECTION_LEASE_DURATION="$4"
    K8S_AWAIT_ELECTION_RENEW_DEADLINE="$5"
    K8S_AWAIT_ELECTION_RETRY_PERIOD="$6"
  )
  # Service routing when SERVICE is set: the Service SERVICE pointed at POD_IP[ID] (port 8080).
  [[ -z ${SERVICE:-} ]] || REPLICA_ENV+=(
    K8S_AWAIT_ELECTION_SERVICE_NAME="$SERVICE"
    K8S_AWAIT_ELECTION_POD_IP="${POD_IP[$id]}"
    K8S_AWAIT_ELECTION_SERVICE_PORTS_JSON='[{"name":"http","port":8080}]'
  )
  # Short timings leave less than the default 2 s kill margin; the CMDs here are small shells.
  [[ -z ${4:-} ]] || (($4 - $5 >= 2)) || REPLICA_ENV+=(K8S_AWAIT_ELECTION_KILL_MARGIN=250ms)
}

# start_replica DIR ID LOCK [LEASE RENEW RETRY]: starts replica ID in the background running
# `sh -c "$CMD_SCRIPT"` (the script defines CMD_SCRIPT), its output appended to DIR/ID.log.
start_replica() {
  local dir=$1 id=$2
  replica_env "$@"
  env -i "${REPLICA_ENV[@]}" "$BIN" sh -c "$CMD_SCRIPT" >>"$dir/$id.log" 2>&1 </dev/null &
  PID[$id]=$!
}

# --- the CMD event log (DIR/events: "KIND ID NANOS" lines) -----------------------------------

# event DIR KIND ID [NANOS]: appends a line (NANOS: now).
event() {
  local at=${4:-}
  [[ -n $at ]] || stamp at
  echo "$2 $3 $at" >>"$1/events"
}
# starts DIR: how many CMDs started.
starts() { grep -c '^start ' "$1/events" 2>/dev/null || true; }
# more_starts DIR N: more than N CMDs started.
more_starts() { (($(starts "$1") > $2)); }
# last_start DIR: the replica whose CMD started last (one CMD at a time) and when.
last_start() { awk '$1 == "start" { p = $2; t = $3 } END { print p, t }' "$1/events"; }
# last_event DIR KIND ID: when replica ID last logged KIND.
last_event() { awk -v k="$2" -v p="$3" '$1 == k && $2 == p { t = $3 } END { print t }' "$1/events"; }
# overlaps DIR: "A+B" for every CMD of B that started while A's still ran (never two CMDs at
# once: every start comes after the previous CMD stopped, or after its replica got SIGKILL).
overlaps() {
  sort -k3,3n "$1/events" | awk '
    $1 == "start" { if (running != "") { print running "+" $2 }; running = $2 }
    ($1 == "stop" || $1 == "signal-KILL") && $2 == running { running = "" }'
}

# --- long runs of ignored integration tests (chaos.sh, soak-resources.sh) --------------------

PROFILE=() # (--release) to test the release build

# build_tests: builds the integration tests (output to stderr).
build_tests() { cargo test "${PROFILE[@]}" --test integration --no-run >&2; }

# run_ignored TEST: runs the ignored integration test TEST (its full path, such as
# chaos::soak::resource_soak) alone, with its output shown.
run_ignored() { cargo test "${PROFILE[@]}" --test integration -- --ignored "$1" --nocapture --exact; }
