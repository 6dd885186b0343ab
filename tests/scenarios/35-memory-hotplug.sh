# Memory hotplug through the CLI: boot 512 MiB, then `host-vmm memory ID --add 512M`
# three times (ACPI DIMM slot + GED interrupt). The agent onlines the new blocks by itself
# (uevent; it logs "memory: onlined N blocks, MemTotal now M kB"), and `memory --add`
# returns once OnlineCPUMem says they cover the new total (the agent logs "memory:
# OnlineCPUMem: onlined N, ..., MemTotal now M kB"): right after each add MemTotal has
# grown by 512 MiB (+-2%), 12 blocks in all are onlined, no onlining error, and
# `host-vmm memory ID` reports the slots used. Refusals change nothing and name the
# limit: an unaligned size, a size beyond default_maxmemory, no slot left. The VM keeps
# running, and the agent channel (virtio-vsock, whose buffers may now live in
# hot-added RAM) still answers.
# scenario-cost: 26 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
# On tmpfs: Unix sockets cannot be bound on the 9p results share.
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "" "memory_slots = 3" "default_maxmemory = 3072"
console="$RESULTS/hotplug.console"

step "boot sandbox mem1 with 512 MiB"
host-vmm boot --id mem1 --config "$config" --memory 512 --console "$console" 2>"$RESULTS/boot.stderr" &
pid=$!
wait_ready "$pid" "$console"
BOOT_CONSOLE=$console
prev_kib=$(ready_field mem_total_kib)
step "booted: MemTotal $prev_kib kB"

# refused WHAT PATTERN ARGS...: `host-vmm memory mem1 ARGS` fails with PATTERN on stderr.
refused() {
    what=$1 pattern=$2
    shift 2
    status=0
    host-vmm memory mem1 "$@" >"$RESULTS/refused.out" 2>"$RESULTS/refused.err" || status=$?
    assert_eq "$what: exit status" 1 "$status"
    assert_grep "$pattern" "$RESULTS/refused.err" "$what"
    step "$what: refused: $(cat "$RESULTS/refused.err")"
}

refused "unaligned size" "not a multiple of the 128 MiB memory block size" --add 100M

for i in 1 2 3; do
    start=$(now_ms)
    host-vmm memory mem1 --add 512M >"$RESULTS/add$i.out" 2>"$RESULTS/add$i.err" ||
        { cat "$RESULTS/add$i.err" >&2; kill "$pid"; fail "hot-add $i failed"; }
    assert_grep "^total_mib=$((512 + 512 * i))\$" "$RESULTS/add$i.out" "total after hot-add $i"
    assert_grep "^slots_used=$i\$" "$RESULTS/add$i.out" "slots used after hot-add $i"
    assert_grep '^guest_ms=[0-9]*$' "$RESULTS/add$i.out" "hot-add $i waited for the guest"
    wait_memtotal "$console" "$prev_kib" 513802 5000 "$pid" "hot-add $i"
    now_kib=$NOW_KIB
    grew=$((now_kib - prev_kib))
    { [ "$grew" -ge 513802 ] && [ "$grew" -le 534774 ]; } || fail "MemTotal grew by $grew kB, want 524288 kB +-2%"
    step "hot-add $i: MemTotal $prev_kib -> $now_kib kB (+$grew kB) in $(($(now_ms) - start)) ms"
    prev_kib=$now_kib
    if [ "$i" = 1 ]; then
        refused "beyond default_maxmemory" "default_maxmemory = 3072" --add 4G
    fi
done

refused "slots exhausted" "memory_slots = 3 are all in use" --add 128M
host-vmm memory mem1 >"$RESULTS/info.out"
cat "$RESULTS/info.out"
assert_grep '^slots_used=3$' "$RESULTS/info.out" "memory info: slots used"
assert_grep '^total_mib=2048$' "$RESULTS/info.out" "memory info: total"

tr -d '\r' <"$console" >"$console.txt"
if grep -E 'guest-agent: (error|warn) memory' "$console.txt"; then
    fail "the agent reported onlining problems"
fi
# Blocks are onlined by the uevent thread or by OnlineCPUMem, whichever comes first.
blocks=$(sed -n -e 's/.*memory: onlined \([0-9]*\) blocks.*/\1/p' \
    -e 's/.*memory: OnlineCPUMem: onlined \([0-9]*\),.*/\1/p' "$console.txt" |
    awk '{ s += $1 } END { print s + 0 }')
assert_eq "blocks onlined by the agent (3 x 512 MiB / 128 MiB)" 12 "$blocks"

step "the VM still runs and its agent still answers over vsock"
host-vmm agent check mem1 >"$RESULTS/check.out" 2>"$RESULTS/check.err" ||
    { cat "$RESULTS/check.err" >&2; kill "$pid"; fail "agent check after hot-add failed"; }
assert_grep '^SERVING ' "$RESULTS/check.out" "agent check after hot-add"
if grep -q 'not in guest RAM' "$RESULTS/boot.stderr"; then
    grep 'not in guest RAM' "$RESULTS/boot.stderr" | head -n 3 >&2
    fail "virtio could not reach hot-plugged RAM"
fi

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
assert_eq "host-vmm exit status after SIGTERM" 143 "$status"
assert_no_leftover host-vmm
