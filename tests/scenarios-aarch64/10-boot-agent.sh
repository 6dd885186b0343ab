# ARM64 boot to the agent (issue 11): `host-vmm boot` with the repository's defaults on
# aarch64 (no `firmware` key: Debian's UEFI ROM), 1 vCPU and 512 MiB. The ROM reads the
# kernel, initrd, command line and our ACPI tables from fw_cfg and starts the kernel's EFI
# stub; the agent must print AGENT_READY with 1 CPU and about 512 MiB, then power off
# (agent.poweroff=1): host-vmm exits 0. BOOT_TIMEOUT (default 900 s): under TCG the ROM
# alone takes minutes. Not in `make test` yet (make test-aarch64 runs it).
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
write_config "$config" "agent.poweroff=1" "default_memory = 512" "default_maxvcpus = 1"
host-vmm config show --config "$config" >"$RESULTS/config-show.txt" 2>&1 ||
    { cat "$RESULTS/config-show.txt" >&2; fail "config show refused the default aarch64 configuration"; }
assert_grep 'firmware.*QEMU_EFI.fd' "$RESULTS/config-show.txt" "the default firmware is Debian's ROM"

BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
step "boot through the UEFI ROM (up to $BOOT_TIMEOUT s under TCG)"
vmm_boot arm --config "$config"
[ "$BOOT_STATUS" -ne 124 ] || { show_boot; fail "boot: no power-off within $BOOT_TIMEOUT s"; }
[ "$BOOT_STATUS" -eq 0 ] || { show_boot; fail "boot: host-vmm exit status $BOOT_STATUS (want 0: guest powered off)"; }
assert_ready "boot" "$BOOT_CONSOLE" 1 512
step "agent ready ${READY_SINCE_MS} ms after kernel start; host-vmm wall ${BOOT_MS} ms"
rmdir "$HOST_VMM_RUNTIME_DIR" 2>/dev/null || true
assert_no_leftover host-vmm
step "PASS"
