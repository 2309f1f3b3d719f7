#!/usr/bin/env bash
# Seeded random fault schedules against three replicas of the real binary (README,
# "Reliability"). Each run starts a test API server and three replicas with service routing,
# throws a random sequence of faults at them for a few seconds (API outages with 5xx, 429 storms
# with Retry-After, connection resets and refusals, hung requests, latency, partitions of one
# replica, token rotation, SIGKILL of a container's whole process tree, SIGTERM, CMD crashes,
# CMDs that ignore SIGTERM, slow-dying CMDs (ignoring SIGTERM, leaving the overlap lock to a
# grandchild that ignores it too, and taking tens to hundreds of ms from SIGKILL to reaped: a
# python3 memory hog of 256 MiB), a twin replica (a fourth one with the identity of one of the
# three, started and later stopped with SIGTERM or SIGKILL), dropped, compacted and silenced
# (half-open) watches), then checks that no two CMDs ever ran at once (nor a CMD and what an
# earlier one left behind) and that exactly one leader (maybe the twin) runs CMD and owns the
# Service afterwards. The runs are the ignored test `chaos::schedules::random_schedule` of the
# integration tests (tests/integration/chaos/schedules.rs); this script only picks the
# parameters and sums up. Needs python3 >= 3.10.
#
# usage: scripts/chaos.sh [--runs N] [--seed S] [--seconds N] [--jobs N] [--soak] [--mixed] [--release]
#   --runs N     number of runs (default 12: about two minutes)
#   --seed S     seed of the first run (decimal or 0x hex); run i uses S + i (default: random)
#   --seconds N  seconds of faults per run (default 10; a run takes about that plus 1-10 s)
#   --jobs N     runs at a time (default 2)
#   --soak       long run: 1000 runs of 20 s (about three hours with 2 jobs)
#   --mixed      mixed elections: each pod's containers alternate between our binary and the
#                client-go test peer (tests/interop/client-go-peer, Go tool or releasing
#                shutdown; built by scripts/build-client-go-peer.sh, needs Go)
#   --release    test the release build (slower to build, closer to production)
#
# Prints one line per run (`ok`, or `FAILED` with its seed), then the summary line
# `N runs, N overlaps, N failures`. The schedule and every replica's log of a failing run go to
# $TMPDIR/chaos-<first seed>.log, and its directory stays under $TMPDIR
# (k8s-await-election-random-<seed>-*); repeat it with `scripts/chaos.sh --runs 1 --seed <seed>`
# (same fault sequence; the interleaving with the replicas differs from run to run).
# Exit status 0 only if every run passed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=12
seconds=10
jobs=2
seed=""
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --soak) runs=1000; seconds=20; shift ;;
    --mixed) export CHAOS_MIXED=1; shift ;;
    --release) PROFILE=(--release); shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
    esac
done
require_numbers "$runs" "$seconds" "$jobs"
if [ -z "$seed" ]; then
    seed=$(( $(od -An -N4 -tu4 /dev/urandom) ))
fi

echo "chaos.sh: $runs runs x ${seconds}s, $jobs at a time, first seed $seed${CHAOS_MIXED:+, mixed with client-go}" >&2
build_tests
if [[ -n ${CHAOS_MIXED:-} ]]; then
    CI=1 scripts/build-client-go-peer.sh >/dev/null || die "--mixed needs the client-go peer (Go)"
fi

out=$(mktemp "${TMPDIR:-/tmp}/chaos-out.XXXXXX")
details="${TMPDIR:-/tmp}/chaos-$seed.log"
trap 'rm -f "$out"' EXIT
echo "chaos.sh: details of failing runs go to $details" >&2
status=0
CHAOS_SEED="$seed" CHAOS_RUNS="$runs" CHAOS_SECONDS="$seconds" CHAOS_JOBS="$jobs" \
    run_ignored chaos::schedules::random_schedule 2>"$details" | tee "$out" | grep --line-buffered '^chaos: run ' || status=$?

summary=$(grep -E '^chaos: [0-9]+ runs, ' "$out" | tail -n1 || true)
if [ -z "$summary" ]; then
    echo "chaos.sh: the test ended without a summary (build failure or crash; see above)" >&2
    exit 1
fi
failed=$(grep -E '^chaos: run .* FAILED' "$out" | sed -E 's/.*seed=(0x[0-9a-f]+).*/\1/' || true)
if [ -n "$failed" ]; then
    echo "failing seeds (repeat with scripts/chaos.sh --runs 1 --seed <seed>):" "$failed"
fi
# "N runs, N overlaps, N failures"
echo "$summary" | sed -E 's/^chaos: ([0-9]+ runs, [0-9]+ overlaps, [0-9]+ failures).*/\1/'
if [ "$status" -ne 0 ] || ! echo "$summary" | grep -q ' 0 overlaps, 0 failures'; then
    exit 1
fi
