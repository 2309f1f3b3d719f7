#!/usr/bin/env bash
# Memory and file descriptors of a leader and a follower over a long run (README,
# "Reliability"): two replicas of the real binary against the test API server with the test
# timings (lease 4 s, renew deadline 3 s, retry period 1 s: one renewal a second), every watch
# dropped periodically (like API server restarts), and VmRSS / VmHWM (from /proc/<pid>/status),
# the number of open descriptors (/proc/<pid>/fd) and threads sampled at a fixed interval.
# The run is the ignored test `tests/chaos.rs::resource_soak`; it fails if leadership changed
# or descriptors grew.
#
# usage: scripts/soak-resources.sh [--seconds N] [--interval N] [--watch-restart N] [--release]
#   --seconds N        length of the run (default 600)
#   --interval N       seconds between samples (default 10)
#   --watch-restart N  seconds between dropping every watch (default 30)
#   --release          measure the release build (what ships) instead of the debug build
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
interval=10
restart=30
profile=()
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    --watch-restart) restart="$2"; shift 2 ;;
    --release) profile=(--release); shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak-resources.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done
for v in "$seconds" "$interval" "$restart"; do
    case "$v" in '' | *[!0-9]*) echo "soak-resources.sh: not a number: $v" >&2; exit 64 ;; esac
done

cargo test "${profile[@]}" --test chaos --no-run >&2
log=$(mktemp "${TMPDIR:-/tmp}/soak-resources.XXXXXX")
status=0
SOAK_SECONDS="$seconds" SOAK_INTERVAL="$interval" SOAK_WATCH_RESTART="$restart" \
    cargo test "${profile[@]}" --test chaos -- --ignored resource_soak --nocapture --exact \
    2>"$log" | grep --line-buffered '^soak:' | sed -u 's/^soak: //' || status=$?
if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "soak-resources.sh: FAILED (whole log: $log)" >&2
    exit 1
fi
rm -f "$log"
