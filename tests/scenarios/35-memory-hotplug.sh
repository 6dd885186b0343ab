# Memory hotplug: boot with 512 MiB, hot-add 512 MiB three times through
# MemoryHotplug::hotplug_memory (ACPI DIMM slot + GED interrupt). After each add the
# agent onlines the new blocks by itself (uevent) and logs "memory: onlined N blocks,
# MemTotal now M kB": MemTotal must grow by 512 MiB (+-2%) each time, 12 blocks in all,
# with no onlining error.
#
# Driver: the hotplug-boot example (cargo build -p host-vmm --example hotplug-boot) until
# host-vmm's control API can hot-add from the command line.
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
driver=${HOTPLUG_DRIVER:-$REPO/target/debug/examples/hotplug-boot}
[ -x "$driver" ] || fail "no $driver: cargo build -p host-vmm --example hotplug-boot"

config="$RESULTS/configuration.toml"
write_config "$config" "" "memory_slots = 4" "default_maxmemory = 2048"
console="$RESULTS/hotplug.console"
out="$RESULTS/hotplug.stdout"

step "boot 512 MiB, then hot-add 512M three times"
start=$(now_ms)
status=0
timeout -k 10 "${BOOT_TIMEOUT:-400}" "$driver" --config "$config" --console "$console" \
    --memory 512 --add 512M --add 512M --add 512M --wait-secs 120 --vsock "/tmp/hp-vsock-$$.sock" \
    >"$out" 2>"$RESULTS/hotplug.stderr" || status=$?
cat "$out"
show() {
    BOOT_STDERR="$RESULTS/hotplug.stderr" BOOT_CONSOLE="$console" show_boot
}
[ "$status" -ne 124 ] || { show; fail "timed out"; }
[ "$status" -eq 0 ] || { show; fail "hotplug-boot exit status $status"; }
step "done in $(($(now_ms) - start)) ms"

assert_eq "hot-adds" 3 "$(grep -c '^added ' "$out")"
assert_eq "hot-adds seen online" 3 "$(grep -c '^online ' "$out")"
# 512 MiB = 524288 kB, +-2%.
sed -n 's/^online .* grew_kib=\([0-9]*\) .*/\1/p' "$out" >"$RESULTS/grew"
while read -r grew; do
    if [ "$grew" -lt 513802 ] || [ "$grew" -gt 534774 ]; then
        fail "MemTotal grew by $grew kB, want 524288 kB +-2%"
    fi
done <"$RESULTS/grew"

tr -d '\r' <"$console" >"$console.txt"
if grep -E 'guest-agent: (error|warn) memory' "$console.txt"; then
    fail "the agent reported onlining problems"
fi
blocks=$(sed -n 's/.*memory: onlined \([0-9]*\) blocks.*/\1/p' "$console.txt" |
    awk '{ s += $1 } END { print s + 0 }')
assert_eq "blocks onlined by the agent (3 x 512 MiB / 128 MiB)" 12 "$blocks"
# virtio devices must DMA into hot-plugged RAM too (the agent's vsock log channel runs
# throughout). Known gap until virtio uses the hot-plug memory map: warn, do not fail.
if grep -q 'not in guest RAM' "$RESULTS/hotplug.stderr"; then
    echo "WARNING: virtio could not reach hot-plugged RAM:" >&2
    grep 'not in guest RAM' "$RESULTS/hotplug.stderr" | head -n 3 >&2
fi
step "ok: $(grep '^online ' "$out" | tr '\n' ';')"
assert_no_leftover hotplug-boot
