#!/usr/bin/env bash
# Builds the fully static release binary (glibc, +crt-static) and prints its path and size.
#   scripts/build-static.sh            -> target/x86_64-unknown-linux-gnu/release/k8s-await-election
# The binary needs nothing from the filesystem at run time: it runs in an empty root (FROM scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
# --target keeps build scripts and proc macros dynamically linked; only our binary is static.
# It is a static PIE (ASLR kept), so it carries relocations for every pointer in its data;
# `-z pack-relative-relocs` (DT_RELR) stores them in ~1 KiB instead of ~100 KiB. The glibc we
# link supplies the start-up code that applies them, and only glibc >= 2.36 knows DT_RELR:
# with an older one the binary would crash at start, so it is left out there.
flags="-C target-feature=+crt-static"
glibc=$(ldd --version 2>/dev/null | awk 'NR == 1 { print $NF }')
if awk -v v="$glibc" 'BEGIN { split(v, p, "."); exit !(p[1] > 2 || (p[1] == 2 && p[2] >= 36)) }'; then
  flags="$flags -C link-arg=-Wl,-z,pack-relative-relocs"
else
  echo "build-static: glibc ${glibc:-unknown} < 2.36: relocations not packed (a ~100 KiB larger binary)" >&2
fi
RUSTFLAGS="${RUSTFLAGS:-} $flags" \
  cargo build --release --locked --target "$target" --bin k8s-await-election >&2
bin="${CARGO_TARGET_DIR:-target}/$target/release/k8s-await-election"
if file "$bin" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "error: $bin is dynamically linked" >&2
  exit 1
fi
size=$(stat -c %s "$bin")
echo "$bin"
awk -v b="$bin" -v s="$size" 'BEGIN { printf "static binary: %s (%d bytes, %.2f MiB, stripped)\n", b, s, s / 1048576 }' >&2
