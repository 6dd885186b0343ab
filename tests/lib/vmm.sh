# Helpers to drive host-vmm from scenarios: `. "$REPO/tests/lib/vmm.sh"` (after assert.sh).
# shellcheck shell=sh
# shellcheck disable=SC2034 # BOOT_* and READY_SINCE_MS are results for the caller

# write_config FILE KERNEL_PARAMS [TOML_LINE...]: a configuration.toml with the guest
# kernel and initramfs the harness provides, the given kernel_params and extra lines
# (e.g. "default_maxvcpus = 2"), everything else default.
write_config() {
    cfg_file=$1
    cat >"$cfg_file" <<TOML
[hypervisor.host-vmm]
kernel = "$GUEST_KERNEL"
initrd = "$GUEST_INITRD"
kernel_params = "$2"
TOML
    shift 2
    for cfg_line in "$@"; do
        echo "$cfg_line" >>"$cfg_file"
    done
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

# ready_field KEY [CONSOLE]: a field of the AGENT_READY line on CONSOLE (default: the
# last boot's console).
ready_field() {
    tr -d '\r' <"${2:-$BOOT_CONSOLE}" | grep -E '^AGENT_READY ' | tail -n 1 |
        sed -n "s/.* $1=\([^ ]*\).*/\1/p"
}

# wait_memtotal CONSOLE PREV_KIB MIN_GROWTH_KIB MS PID WHAT: after a hot-add returned, wait up
# to MS for the agent's "MemTotal now N kB" console line to show at least MIN_GROWTH_KIB
# above PREV_KIB (the agent prints it just before it replies); sets NOW_KIB, or kills PID
# and fails naming WHAT.
wait_memtotal() {
    wm_console=$1 wm_prev=$2 wm_min=$3 wm_deadline=$(($(now_ms) + $4)) wm_pid=$5 wm_what=$6
    while :; do
        NOW_KIB=$(tr -d '\r' <"$wm_console" | sed -n 's/.*MemTotal now \([0-9]*\) kB.*/\1/p' | tail -n 1)
        [ "$((${NOW_KIB:-0} - wm_prev))" -lt "$wm_min" ] || return 0
        [ "$(now_ms)" -lt "$wm_deadline" ] ||
            { kill "$wm_pid"; fail "$wm_what returned, but MemTotal is ${NOW_KIB:-?} kB, not $wm_min kB above $wm_prev kB"; }
        sleep 0.1
    done
}

# assert_ready WHAT CONSOLE CPUS MEM_MIB: CONSOLE has the agent's ready line
#   AGENT_READY version=V since_kernel_ms=N cpus=C mem_total_kib=M
# with C == CPUS and M at most MEM_MIB and at least 90% of it (the kernel keeps some).
# Sets READY_SINCE_MS.
assert_ready() {
    what=$1 console=$2 want_cpus=$3 mem_mib=$4
    tr -d '\r' <"$console" 2>/dev/null |
        grep -Eq '^AGENT_READY version=[^ ]+ since_kernel_ms=[0-9]+ cpus=[0-9]+ mem_total_kib=[0-9]+$' ||
        { show_boot; fail "$what: no well-formed AGENT_READY line on the console ($console)"; }
    got_cpus=$(ready_field cpus "$console")
    got_kib=$(ready_field mem_total_kib "$console")
    READY_SINCE_MS=$(ready_field since_kernel_ms "$console")
    assert_eq "$what: cpus" "$want_cpus" "$got_cpus"
    max_kib=$((mem_mib * 1024))
    min_kib=$((max_kib * 90 / 100))
    [ "$got_kib" -le "$max_kib" ] || fail "$what: mem_total_kib=$got_kib is more than ${mem_mib} MiB"
    [ "$got_kib" -ge "$min_kib" ] ||
        fail "$what: mem_total_kib=$got_kib, want $min_kib..$max_kib (${mem_mib} MiB less at most 10%)"
}

# wait_ready PID CONSOLE [SECS]: wait until CONSOLE has the agent's AGENT_READY line;
# fail (killing PID) if host-vmm PID exits first or SECS (default 60) pass.
wait_ready() {
    wr_pid=$1 wr_console=$2
    wr_deadline=$(($(now_ms) + ${3:-60} * 1000))
    # The whole line: the console is written a byte at a time, and the tty ends each
    # line with CR LF, so a ready line with its CR is complete.
    wr_cr=$(printf '\r')
    until grep -q "AGENT_READY .*$wr_cr" "$wr_console" 2>/dev/null; do
        kill -0 "$wr_pid" 2>/dev/null || fail "host-vmm exited before the agent was ready"
        [ "$(now_ms)" -lt "$wr_deadline" ] || { kill -9 "$wr_pid"; fail "no AGENT_READY within ${3:-60} s"; }
        sleep 0.2
    done
}
