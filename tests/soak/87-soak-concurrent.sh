# Load: SOAK_CONCURRENT (default 8) sandboxes at once, 256 MiB each, each running a
# container that prints its name and sleeps 2 s: every one exits 0 with its own output, and
# nothing is left behind (tests/lib/sweep.sh). Prints the wall time of the whole batch.
# scenario-cost: 85 (seconds on an idle 2-core machine: tests/run-all deals by it)
# scenario-timeout: 1200
# shellcheck shell=sh
set -eu
# Knobs come as NAME=VALUE arguments too (`tests/testhost run` passes no environment).
for knob in "$@"; do
    case $knob in [A-Z]*=*) export "${knob?}" ;; esac
done
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/sweep.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-conc-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "" "default_memory = 256"
count=${SOAK_CONCURRENT:-8}

step "$count sandboxes at once"
start=$(now_ms)
pids=""
i=1
while [ "$i" -le "$count" ]; do
    (
        rc=0
        timeout -k 5 300 host-vmm run --id "conc-$i" --config "$config" --console "$RESULTS/conc-$i.console" \
            -- sh -c "echo conc $i; sleep 2" </dev/null >"$RESULTS/conc-$i.out" 2>"$RESULTS/conc-$i.err" || rc=$?
        echo "$rc" >"$RESULTS/conc-$i.status"
    ) &
    pids="$pids $!"
    i=$((i + 1))
done
for pid in $pids; do
    wait "$pid"
done
total=$(($(now_ms) - start))
i=1
while [ "$i" -le "$count" ]; do
    rc=$(cat "$RESULTS/conc-$i.status")
    [ "$rc" -eq 0 ] || { cat "$RESULTS/conc-$i.err" >&2; fail "sandbox conc-$i: exit status $rc"; }
    assert_eq "conc-$i: stdout" "conc $i" "$(cat "$RESULTS/conc-$i.out")"
    i=$((i + 1))
done
echo "concurrent: $count sandboxes of 256 MiB at once in $total ms" | tee "$RESULTS/figures.txt"
sweep "after $count concurrent sandboxes"
