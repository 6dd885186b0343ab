#!/usr/bin/env bash
# Build the static guest-agent (the guest's /init) and check that it really is static.
# Usage: rootfs/build-agent.sh [--arch aarch64]  (prints the binary's path on its last stdout line)
#   --arch aarch64: cross-built for aarch64-unknown-linux-gnu with Debian's Rust (/usr/bin/cargo,
#   /usr/bin/rustc, libstd-rust-web-dev:arm64) and aarch64-linux-gnu-gcc as the linker, as
#   .ci/check-aarch64 does (rustup's toolchain has no arm64 std here).
# Env:   AGENT_TARGET (default x86_64-unknown-linux-gnu), CARGO (default cargo)
#        AGENT_TEST_HOOKS=1: TEST BUILD with the crash hook (feature test-crash-hook), in its
#        own target dir (target/agent-test-hooks) so it never replaces the production agent.
#        A production build is checked to contain no test hook.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${AGENT_TARGET:-x86_64-unknown-linux-gnu}
cargo=${CARGO:-cargo}
if [ "${1:-}" = --arch ]; then
  case "${2:-}" in
    x86_64) ;;
    aarch64)
      target=aarch64-unknown-linux-gnu
      cargo=${CARGO:-/usr/bin/cargo}
      for tool in /usr/bin/cargo /usr/bin/rustc aarch64-linux-gnu-gcc; do
        command -v "$tool" >/dev/null ||
          { echo "error: $tool not found: the aarch64 agent needs Debian's Rust and cross gcc (run .ci/install-deps)" >&2; exit 1; }
      done
      [ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ] ||
        { echo "error: no arm64 Rust std (Debian package libstd-rust-web-dev:arm64; run .ci/install-deps)" >&2; exit 1; }
      export PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc ;;
    *) echo "error: --arch ${2:-}: not one of x86_64, aarch64" >&2; exit 2 ;;
  esac
fi
# crt-static gives a glibc binary with no interpreter. The flags go through the per-target
# variable so host builds (build scripts, target/debug) keep theirs and are not rebuilt.
target_var=CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_RUSTFLAGS
export "$target_var"="-C target-feature=+crt-static"

if [ "${AGENT_TEST_HOOKS:-0}" = 1 ]; then
  echo "[agent] TEST BUILD: cargo build -p guest-agent --features test-crash-hook --profile agent --target $target (+crt-static)" >&2
  "$cargo" build --locked -p guest-agent --features test-crash-hook --profile agent \
    --target "$target" --target-dir target/agent-test-hooks >&2
  bin=target/agent-test-hooks/$target/agent/guest-agent
else
  echo "[agent] cargo build -p guest-agent --profile agent --target $target (+crt-static)" >&2
  "$cargo" build --locked -p guest-agent --profile agent --target "$target" >&2
  bin=target/$target/agent/guest-agent
  # The crash hook's command-line key is a string in its code: absent means no hook.
  if grep -q 'hvtest\.crash' "$bin"; then
    echo "error: $bin contains the test crash hook (feature test-crash-hook): not a production agent" >&2
    exit 1
  fi
fi

# Static means no program interpreter (PT_INTERP) and no shared libraries (DT_NEEDED).
if ! command -v readelf >/dev/null; then
  echo "error: readelf not found (Debian package binutils; run .ci/install-deps)" >&2
  exit 1
fi
if readelf -lW "$bin" | grep -q INTERP; then
  echo "error: $bin has a PT_INTERP program header: it is not static" >&2
  readelf -lW "$bin" | grep -A1 INTERP >&2
  exit 1
fi
if readelf -dW "$bin" | grep -q NEEDED; then
  echo "error: $bin needs shared libraries:" >&2
  readelf -dW "$bin" | grep NEEDED >&2
  exit 1
fi
size=$(stat -c %s "$bin")
echo "[agent] $bin: static, stripped, $size bytes ($(( (size + 1023) / 1024 )) KiB)" >&2
echo "$bin"
