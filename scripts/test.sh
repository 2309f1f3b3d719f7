#!/usr/bin/env bash
# The project's test command (README "Quick start"; .ci/run calls it too):
# builds the static release binary, then runs every test of the workspace against it and the
# debug build. Integration tests start a test Kubernetes API server on 127.0.0.1 and real
# replicas of the binary; the PID-namespace, chroot and scratch-image tests need root and a
# static busybox (installed here with apt-get when missing and possible), and promtool. With
# REQUIRE_STATIC set (below), a missing prerequisite fails those tests instead of skipping them.
# The client-go test peer of the mixed-election tests is built too
# (scripts/build-client-go-peer.sh, needs Go): without Go those tests are skipped, but under CI
# (env CI set) that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg -s busybox-static >/dev/null 2>&1 && ((EUID == 0)) && command -v apt-get >/dev/null; then
  echo "installing busybox-static (a stand-in CMD for the scratch-image tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq busybox-static >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq busybox-static >/dev/null; }
fi
# promtool checks examples/prometheus-rules.yaml (tests/integration/examples.rs); Debian ships
# it in the prometheus package (the server is installed but not started).
if ! command -v promtool >/dev/null && ((EUID == 0)) && command -v apt-get >/dev/null; then
  echo "installing prometheus (for promtool)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
fi
scripts/build-static.sh >/dev/null
scripts/build-client-go-peer.sh >/dev/null
# The output is also kept to add up every test binary's result line at the end ("skipped":
# #[ignore]d tests, the long chaos runs of scripts/chaos.sh). --no-fail-fast: every test
# binary runs, so the total is complete even when one fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
REQUIRE_STATIC=1 cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6; i += $8 }
  END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
