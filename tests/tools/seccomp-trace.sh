# How host-vmm's seccomp allow-lists were found, repeatable: runs end-to-end scenarios
# with every host-vmm call under `strace -f` (filters on), then prints, per thread kind,
# the system calls (and ioctl requests) made after the thread's filter was installed.
# A call a filter refused shows as `KILLED` with the kind and the call.
#
#   tests/testhost run tests/tools/seccomp-trace.sh [SCENARIO...] --timeout 1800
#
# Default scenarios: 10 30 35 50 60 80. Traces and the summary (seccomp-trace.txt) are
# kept in $RESULTS. Not part of `make test` (strace slows the nested guest's I/O).
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"

command -v strace >/dev/null || fail "strace is not on PATH"
real=$(command -v host-vmm) || fail "host-vmm is not on PATH"
wrap="/tmp/seccomp-trace-$$"
traces="$RESULTS/traces"
mkdir -p "$wrap" "$traces"
cat >"$wrap/host-vmm" <<EOF
#!/bin/sh
exec strace -f -qq -s 64 -o "$traces/hv.\$\$" "$real" "\$@"
EOF
chmod +x "$wrap/host-vmm"

[ $# -gt 0 ] || set -- 10 30 35 50 60 80
failed=""
for n in "$@"; do
    for script in "$REPO"/tests/scenarios/"$n"-*.sh; do
        name=$(basename "$script" .sh)
        step "$name (traced)"
        mkdir -p "$RESULTS/$name"
        if PATH="$wrap:$PATH" RESULTS="$RESULTS/$name" sh "$script" >"$RESULTS/$name.log" 2>&1; then
            step "$name: passed"
        else
            step "$name: FAILED (last lines below)"
            tail -n 15 "$RESULTS/$name.log"
            failed="$failed $name"
        fi
    done
done
python3 "$REPO/tests/tools/seccomp-trace.py" "$traces" | tee "$RESULTS/seccomp-trace.txt"
rm -rf "$wrap"
[ -z "$failed" ] || fail "failed under strace:$failed"
