#!/usr/bin/env bash
# Run one fuzz target for a bounded time: ./run.sh TARGET SECONDS
# (./run.sh --build only builds every target; run-all.sh runs them side by side).
# Targets: fuzz_targets/*.rs (vsock_queues, mmio_registers, block_queues,
# hotplug_registers, log_lines, api_requests, fw_cfg_registers, flash_commands). Needs a nightly toolchain
# (`cargo +nightly`); uses `cargo fuzz` if installed, otherwise builds the
# same libFuzzer binary directly with the flags cargo-fuzz uses. The
# committed seeds in corpus/TARGET are read, new inputs go to
# work/TARGET and crashes to artifacts/TARGET (both git-ignored). On stable, `cargo test -p host-vmm fuzz_smoke` runs
# the same harnesses on the seeds plus seeded random inputs.
#
# The last line of output is the figure for the run:
#   fuzz TARGET: N executions in S s, C crashes
# (from libFuzzer's final `Done N runs in S second(s)` and the crash
# artifacts it wrote); it is also appended to $FUZZ_SUMMARY when set.
# FUZZ_RUNS=N stops after N executions (the time limit still applies).
# The exit status is 0 only if the run finished with no crash.
set -euo pipefail
cd "$(dirname "$0")"

build_only=0
if [ "${1:-}" = --build ] && [ $# -eq 1 ]; then
  build_only=1
  set -- build 0
fi
if [ $# -ne 2 ]; then
  targets=(fuzz_targets/*.rs); targets=("${targets[@]#fuzz_targets/}")
  echo "usage: $0 TARGET SECONDS   (targets: ${targets[*]%.rs})" >&2
  exit 2
fi
target=$1 secs=$2
[ $build_only = 1 ] || [ -f "fuzz_targets/$target.rs" ] || { echo "error: no fuzz target '$target'" >&2; exit 2; }
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "error: SECONDS must be a number" >&2; exit 2; }
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "error: fuzzing needs a nightly toolchain (cargo +nightly); on stable run: cargo test -p host-vmm fuzz_smoke" >&2
  exit 1
fi

[ $build_only = 1 ] || mkdir -p "work/$target" "artifacts/$target"
fuzz_args=(-max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="artifacts/$target/" -print_final_stats=1)
if [ -n "${FUZZ_RUNS:-}" ]; then
  [[ "$FUZZ_RUNS" =~ ^[0-9]+$ ]] || { echo "error: FUZZ_RUNS must be a number" >&2; exit 2; }
  fuzz_args+=(-runs="$FUZZ_RUNS")
fi
log=$(mktemp "${TMPDIR:-/tmp}/fuzz-$target.XXXXXX")
trap 'rm -f "$log"' EXIT

# report STATUS: print (and append to $FUZZ_SUMMARY) the run's figures.
report() {
  local status=$1 runs secs crashes line
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
  secs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -n1)
  if [ -z "$runs" ]; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
  fi
  crashes=$(grep -cE 'Test unit written to .*(crash|leak|timeout|oom|slow-unit)-' "$log" || true)
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1 # died without writing an artifact: count it
  fi
  line="fuzz $target: ${runs:-?} executions in ${secs:-?} s, $crashes crashes"
  echo "$line"
  if [ -n "${FUZZ_SUMMARY:-}" ]; then echo "$line" >>"$FUZZ_SUMMARY"; fi
  [ "$status" -eq 0 ] && [ "$crashes" -eq 0 ]
}

if cargo +nightly fuzz --version >/dev/null 2>&1; then
  if [ $build_only = 1 ]; then exec cargo +nightly fuzz build; fi
  set +e
  cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- "${fuzz_args[@]}" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  report "$status"
  exit
fi

# Without cargo-fuzz: the same build (sanitizer coverage, ASan, debug
# assertions) by hand.
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Zsanitizer=address"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
if [ $build_only = 1 ]; then exec cargo +nightly build --release --target "$host" --bins; fi
cargo +nightly build --release --target "$host" --bin "$target"
set +e
"$CARGO_TARGET_DIR/$host/release/$target" "${fuzz_args[@]}" "work/$target" "corpus/$target" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
report "$status"
