# Container benchmark inside the test host (`tests/testhost run
# tests/bench/containers-in-testhost.sh [RUNS]`, part of `make bench`): `run -- true`,
# create+start in a running sandbox and exec, as ratios to a boot in the same run. See
# tests/bench/containers.py.
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
need_file GUEST_KERNEL
need_file GUEST_INITRD
exec python3 "$REPO/tests/bench/containers.py" "${1:-5}"
