# A VM whose agent stays up is stopped from the host: SIGTERM to host-vmm stops the
# guest at once, host-vmm exits 143 (128 + SIGTERM), and nothing is left behind: no
# host-vmm process and no runtime directory. A second VM with the same id while the
# first runs is refused with a clear error.
# scenario-cost: 10 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
# On tmpfs: Unix sockets cannot be bound on the 9p results share.
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" ""
console="$RESULTS/stop.console"

step "boot sandbox stop-1 (the agent stays up)"
host-vmm boot --id stop-1 --config "$config" --console "$console" 2>"$RESULTS/stop.stderr" &
pid=$!
wait_ready "$pid" "$console"
[ -f "$HOST_VMM_RUNTIME_DIR/stop-1/pid" ] || fail "no runtime directory at $HOST_VMM_RUNTIME_DIR/stop-1"
assert_eq "pid file" "$pid" "$(cat "$HOST_VMM_RUNTIME_DIR/stop-1/pid")"

step "a second sandbox with the same id is refused"
status=0
host-vmm boot --id stop-1 --config "$config" --console "$RESULTS/dup.console" 2>"$RESULTS/dup.stderr" || status=$?
assert_eq "duplicate id exit status" 1 "$status"
assert_grep "sandbox stop-1 is already running" "$RESULTS/dup.stderr" "duplicate id message"

step "SIGTERM stops the VM"
start=$(now_ms)
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
took=$(($(now_ms) - start))
assert_eq "host-vmm exit status after SIGTERM" 143 "$status"
[ "$took" -lt 10000 ] || fail "host-vmm took ${took} ms to stop"
[ ! -e "$HOST_VMM_RUNTIME_DIR/stop-1" ] || fail "runtime directory left behind: $(ls -la "$HOST_VMM_RUNTIME_DIR/stop-1")"
assert_no_leftover host-vmm
step "stopped in ${took} ms; runtime directory removed"
