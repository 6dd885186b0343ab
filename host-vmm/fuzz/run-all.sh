#!/usr/bin/env bash
# Fuzz every target for SECONDS each, JOBS (default: the number of cores) side by side:
#   host-vmm/fuzz/run-all.sh SECONDS TARGET...
# Builds every target once first (run.sh --build), then runs them; each target's libFuzzer
# output goes to target/fuzz-logs/TARGET.log (its last 40 lines are shown when it fails).
# Prints one figure line per target (run.sh's) and exits non-zero if any crashed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 2 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS TARGET..." >&2
  exit 2
fi
secs=$1
shift
jobs=${JOBS:-$(nproc)}
logs=$here/../../target/fuzz-logs
mkdir -p "$logs"
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
echo "fuzz: building ${#} targets (nightly, ASan, sanitizer coverage)"
"$here/run.sh" --build || { echo "fuzz: the build failed" >&2; exit 1; }
echo "fuzz: $# targets, $secs s each, $jobs at a time (logs: $logs)"
export FUZZ_SUMMARY=$summary here logs secs
# shellcheck disable=SC2016 # the inner script expands its own variables
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c '
  if "$here/run.sh" {} "$secs" >"$logs/{}.log" 2>&1; then
    tail -n 1 "$logs/{}.log"
  else
    echo "fuzz {}: FAILED; the end of $logs/{}.log:"
    tail -n 40 "$logs/{}.log"
    exit 1
  fi'
status=$?
echo "== fuzz figures ($secs s per target)"
sort "$summary"
exit $status
