#!/usr/bin/env bash
# Memory and file descriptors of a leader and a follower over a long run (README,
# "Reliability"): two replicas of the real binary against the test API server with the test
# timings (lease 4 s, renew deadline 3 s, retry period 1 s: one renewal a second), every watch
# dropped periodically (like API server restarts), and VmRSS / VmHWM (from /proc/<pid>/status),
# the number of open descriptors (/proc/<pid>/fd) and threads sampled at a fixed interval.
# The run is the ignored test `chaos::soak::resource_soak` of the integration tests
# (tests/integration/chaos/soak.rs); it fails if leadership changed or descriptors grew.
#
# usage: scripts/soak-resources.sh [--seconds N] [--interval N] [--watch-restart N] [--release]
#   --seconds N        length of the run (default 600)
#   --interval N       seconds between samples (default 10)
#   --watch-restart N  seconds between dropping every watch (default 30)
#   --release          measure the release build (what ships) instead of the debug build
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds=600
interval=10
restart=30
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    --watch-restart) restart="$2"; shift 2 ;;
    --release) PROFILE=(--release); shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument $1" ;;
    esac
done
require_numbers "$seconds" "$interval" "$restart"

build_tests
log=$(mktemp "${TMPDIR:-/tmp}/soak-resources.XXXXXX")
status=0
SOAK_SECONDS="$seconds" SOAK_INTERVAL="$interval" SOAK_WATCH_RESTART="$restart" \
    run_ignored chaos::soak::resource_soak 2>"$log" | grep --line-buffered '^soak:' | sed -u 's/^soak: //' || status=$?
if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "soak-resources.sh: FAILED (whole log: $log)" >&2
    exit 1
fi
rm -f "$log"
