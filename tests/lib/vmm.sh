# Helpers to drive host-vmm from scenarios: `. "$REPO/tests/lib/vmm.sh"` (after assert.sh).
# shellcheck shell=sh

# write_config FILE [KERNEL_PARAMS]: a configuration.toml with the guest kernel and
# initramfs the harness provides, everything else default.
write_config() {
    cat >"$1" <<TOML
[hypervisor.host-vmm]
kernel = "$GUEST_KERNEL"
initrd = "$GUEST_INITRD"
kernel_params = "${2:-}"
TOML
}

# vmm_boot NAME [ARGS...]: `host-vmm boot ARGS --console $RESULTS/NAME.console` under
# `timeout ${BOOT_TIMEOUT:-120}`, stdout and stderr kept in $RESULTS/NAME.{stdout,stderr}.
# Sets BOOT_STATUS (124: timed out), BOOT_MS (wall time), BOOT_CONSOLE, BOOT_STDERR.
vmm_boot() {
    boot_name=$1
    shift
    BOOT_CONSOLE="$RESULTS/$boot_name.console"
    BOOT_STDERR="$RESULTS/$boot_name.stderr"
    boot_start=$(now_ms)
    if timeout -k 10 "${BOOT_TIMEOUT:-120}" host-vmm boot "$@" --console "$BOOT_CONSOLE" \
        >"$RESULTS/$boot_name.stdout" 2>"$BOOT_STDERR"; then
        BOOT_STATUS=0
    else
        BOOT_STATUS=$?
    fi
    BOOT_MS=$(($(now_ms) - boot_start))
}

# show_boot: the tail of the last boot's stderr and console, for a failure report.
show_boot() {
    for f in "$BOOT_STDERR" "$BOOT_CONSOLE"; do
        [ -f "$f" ] || continue
        echo "--- $f (last 30 lines):" >&2
        tail -n 30 "$f" | tr -d '\r' >&2
    done
}

# ready_field KEY: a field of the AGENT_READY line of the last boot's console.
ready_field() {
    tr -d '\r' <"$BOOT_CONSOLE" | grep -E '^AGENT_READY ' | tail -n 1 |
        sed -n "s/.* $1=\([^ ]*\).*/\1/p"
}
