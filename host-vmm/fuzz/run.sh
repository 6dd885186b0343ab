#!/usr/bin/env bash
# Run one fuzz target for a bounded time: ./run.sh TARGET SECONDS
# Targets: vsock_queues, mmio_registers, block_queues. Needs a nightly toolchain
# (`cargo +nightly`); uses `cargo fuzz` if installed, otherwise builds the
# same libFuzzer binary directly with the flags cargo-fuzz uses. The
# committed seeds in corpus/TARGET are read, new inputs go to
# work/TARGET and crashes to artifacts/TARGET (both git-ignored). On stable, `cargo test -p host-vmm fuzz_smoke` runs
# the same harnesses on the seeds plus seeded random inputs.
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -ne 2 ]; then
  targets=(fuzz_targets/*.rs); targets=("${targets[@]#fuzz_targets/}")
  echo "usage: $0 TARGET SECONDS   (targets: ${targets[*]%.rs})" >&2
  exit 2
fi
target=$1 secs=$2
[ -f "fuzz_targets/$target.rs" ] || { echo "error: no fuzz target '$target'" >&2; exit 2; }
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "error: SECONDS must be a number" >&2; exit 2; }
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "error: fuzzing needs a nightly toolchain (cargo +nightly); on stable run: cargo test -p host-vmm fuzz_smoke" >&2
  exit 1
fi

mkdir -p "work/$target" "artifacts/$target"
fuzz_args=(-max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="artifacts/$target/" -print_final_stats=1)

if cargo +nightly fuzz --version >/dev/null 2>&1; then
  exec cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- "${fuzz_args[@]}"
fi

# Without cargo-fuzz: the same build (sanitizer coverage, ASan, debug
# assertions) by hand.
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Zsanitizer=address"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo +nightly build --release --target "$host" --bin "$target"
"$CARGO_TARGET_DIR/$host/release/$target" "${fuzz_args[@]}" "work/$target" "corpus/$target"
