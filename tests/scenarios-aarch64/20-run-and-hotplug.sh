# ARM64 containers and memory hot-add (issue 11), through the UEFI ROM:
# - `host-vmm run -- sh -c ...` runs a busybox container in a sandbox VM and returns its
#   output and exit status (hybrid vsock, ttrpc, cgroups, namespaces on arm64);
# - a sandbox booted with 512 MiB takes `memory --add 256M` through ACPI (the memory
#   devices and the GED in our DSDT, installed by the ROM): the command waits for the
#   guest, which then reports 768 MiB, and the guest's MemTotal grows by about 256 MiB.
# scenario-timeout: 1200
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (HOST_VMM=$HOST_VMM; make build-aarch64)"
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-arm-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "" "default_memory = 512" "default_maxvcpus = 1" "memory_slots = 2" "default_maxmemory = 1024"

step "run: a container prints where it runs and exits 42"
status=0
# shellcheck disable=SC2016 # expanded by the container's shell
timeout -k 5 600 host-vmm run --config "$config" --console "$RESULTS/run.console" -- \
    sh -c 'echo "hello from $(uname -m)"; exit 42' >"$RESULTS/run.out" 2>"$RESULTS/run.err" || status=$?
[ "$status" -ne 124 ] || { tail -n 30 "$RESULTS/run.err" "$RESULTS/run.console" >&2; fail "run: no exit within 600 s"; }
assert_eq "run: exit status (the container's)" 42 "$status"
assert_eq "run: output" "hello from aarch64" "$(cat "$RESULTS/run.out")"

step "boot sandbox arm-mem with 512 MiB, then memory --add 256M"
console="$RESULTS/mem.console"
host-vmm boot --id arm-mem --config "$config" --console "$console" 2>"$RESULTS/boot.stderr" &
pid=$!
wait_ready "$pid" "$console" 600
BOOT_CONSOLE=$console
before_kib=$(ready_field mem_total_kib)
step "booted: MemTotal $before_kib kB"
timeout -k 5 300 host-vmm memory arm-mem --add 256M >"$RESULTS/add.out" 2>"$RESULTS/add.err" ||
    { cat "$RESULTS/add.err" >&2; kill "$pid"; fail "memory --add 256M failed"; }
cat "$RESULTS/add.out"
assert_grep '^total_mib=768$' "$RESULTS/add.out" "total after the hot-add"
assert_grep '^guest_ms=[0-9]*$' "$RESULTS/add.out" "the hot-add waited for the guest"
wait_memtotal "$console" "$before_kib" 256901 10000 "$pid" "memory --add 256M"
step "MemTotal $before_kib -> $NOW_KIB kB"
host-vmm stop arm-mem >"$RESULTS/stop.out" 2>&1 || { cat "$RESULTS/stop.out" >&2; fail "stop arm-mem failed"; }
wait "$pid" || true
rmdir "$HOST_VMM_RUNTIME_DIR" 2>/dev/null || true
assert_no_leftover host-vmm
step "PASS"
