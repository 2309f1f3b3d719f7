#!/usr/bin/env bash
# The project's test command (README "Quick start"; .ci/run calls it too):
# builds the static release binary, then runs every test of the workspace against it and the
# debug build. Integration tests start a test Kubernetes API server on 127.0.0.1 and real
# replicas of the binary; the PID-namespace and chroot tests need root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-static.sh >/dev/null
REQUIRE_STATIC=1 cargo test --workspace --locked "$@"
