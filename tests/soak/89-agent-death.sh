# Faults: the agent dies inside the guest while a container is attached (`run -- sleep
# 600`). The guest runs the TEST initramfs (target/rootfs-test/, `rootfs/build.sh
# --test-hooks`), whose agent has the crash hook (guest-agent feature test-crash-hook,
# `hvtest.crash=MODE@MS` on the kernel command line); the production initramfs must not
# contain it. For each way to die, host-vmm notices within a bound, says so, exits non-zero
# and leaves nothing behind:
#   exit   pid 1 exits: kernel panic, panic=-1 resets the VM   -> "ended before the process did"
#   close  the agent's vsock sockets shut, kernel alive         -> the agent connection fails
#   hang   the agent stops answering, connections stay open     -> heartbeat: "stopped answering"
# scenario-cost: 75 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/sweep.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
test_initrd=${TEST_INITRD:-$REPO/target/rootfs-test/initramfs.cpio}
[ -f "$test_initrd" ] || fail "no test initramfs $test_initrd (rootfs/build.sh --test-hooks)"
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-death-$$"

step "the production initramfs has no crash hook; the test one has"
if grep -q 'hvtest\.crash' "$GUEST_INITRD"; then
    fail "$GUEST_INITRD contains the test crash hook"
fi
grep -q 'hvtest\.crash' "$test_initrd" || fail "$test_initrd has no crash hook"

# die MODE BOUND_S MESSAGE_RE: run -- sleep 600 with the hook in MODE; host-vmm must exit
# non-zero within BOUND_S seconds, its stderr matching MESSAGE_RE.
die() {
    cfg="$RESULTS/$1.toml"
    write_config "$cfg" "hvtest.crash=$1@1500"
    sed -i "s|^initrd = .*|initrd = \"$test_initrd\"|" "$cfg"
    start=$(now_ms)
    rc=0
    timeout -k 5 "$(($2 + 60))" host-vmm run --id "die-$1" --config "$cfg" \
        --console "$RESULTS/$1.console" -- sleep 600 \
        </dev/null >"$RESULTS/$1.out" 2>"$RESULTS/$1.err" || rc=$?
    ms=$(($(now_ms) - start))
    echo "$1: exit status $rc after $ms ms" | tee -a "$RESULTS/figures.txt"
    cat "$RESULTS/$1.err"
    [ "$rc" -ne 124 ] || fail "$1: host-vmm hung (killed after $(($2 + 60)) s)"
    [ "$rc" -ne 0 ] || fail "$1: host-vmm exited 0 for a dead agent"
    [ "$ms" -le $(($2 * 1000)) ] || fail "$1: noticed after $ms ms, more than $2 s"
    assert_grep "$3" "$RESULTS/$1.err" "$1: the error says the sandbox died"
    assert_grep 'TEST crash hook' "$RESULTS/$1.console" "$1: the hook fired"
    sweep "after the agent's death ($1)"
}

step "pid 1 exits (kernel panic)"
die exit 60 'sandbox VM ended before the process did: guest reset'
step "the ttrpc server dies, the kernel lives"
die close 60 'error: .*(agent|transport|connection)'
step "the agent stops answering"
die hang 90 "agent stopped answering: no reply to Health.Check for [0-9]+ s"
