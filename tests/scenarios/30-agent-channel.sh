# The agent channel: host-vmm serves virtio-vsock in userspace as hybrid vsock. With a
# sandbox running, `host-vmm agent check` and `agent details` reach guest-agent's ttrpc
# server on vsock port 1024; the agent's log arrives in <runtime dir>/agent.log over
# port 1025; the guest's clock is set from the host. A sandbox that does not exist
# gets a clear error. Everything is gone after the stop.
# scenario-cost: 13 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
# On tmpfs: Unix sockets cannot be bound on the 9p results share.
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "agent.log=debug"
console="$RESULTS/agent.console"

step "boot sandbox ag1 (the agent stays up)"
host-vmm boot --id ag1 --config "$config" --console "$console" 2>"$RESULTS/boot.stderr" &
pid=$!
start=$(now_ms)
i=0
until [ -f "$HOST_VMM_RUNTIME_DIR/ag1/pid" ]; do
    kill -0 "$pid" 2>/dev/null || fail "host-vmm exited: $(cat "$RESULTS/boot.stderr")"
    [ $i -lt 100 ] || { kill "$pid"; fail "no runtime directory after 10 s"; }
    sleep 0.1
    i=$((i + 1))
done

step "agent check (retries while the guest boots)"
host-vmm agent check ag1 >"$RESULTS/check.out" 2>"$RESULTS/check.err" ||
    { cat "$RESULTS/check.err" >&2; kill "$pid"; fail "agent check failed"; }
took=$(($(now_ms) - start))
cat "$RESULTS/check.out"
assert_grep '^SERVING agent_version=[0-9]+\.[0-9]+\.[0-9]+ ' "$RESULTS/check.out" "agent check output"

step "agent details"
host-vmm agent details ag1 >"$RESULTS/details.out" 2>"$RESULTS/details.err" ||
    { cat "$RESULTS/details.err" >&2; kill "$pid"; fail "agent details failed"; }
cat "$RESULTS/details.out"
assert_grep '^mem_block_size_bytes=134217728$' "$RESULTS/details.out" "memory block size (128 MiB on x86)"
assert_grep '^kernel_version=6\.12\.' "$RESULTS/details.out" "guest kernel version"
assert_grep '^init_daemon=true$' "$RESULTS/details.out" "agent is pid 1"

step "the guest clock follows the host's"
log="$HOST_VMM_RUNTIME_DIR/ag1/agent.log"
i=0
until grep -q 'guest clock set to' "$log" 2>/dev/null; do
    [ $i -lt 100 ] || fail "the agent never logged 'guest clock set to' in $log"
    sleep 0.2
    i=$((i + 1))
done
guest_s=$(sed -n 's/.*guest clock set to \([0-9]*\)\..*/\1/p' "$log" | tail -n 1)
host_s=$(date +%s)
skew=$((host_s - guest_s))
{ [ "$skew" -ge 0 ] && [ "$skew" -le 60 ]; } || fail "guest clock set to $guest_s, host is at $host_s"
step "agent.log over vsock port 1025: $(wc -l <"$HOST_VMM_RUNTIME_DIR/ag1/agent.log") lines"
[ -s "$HOST_VMM_RUNTIME_DIR/ag1/agent.log" ] || fail "agent.log is empty"
head -n 5 "$HOST_VMM_RUNTIME_DIR/ag1/agent.log"

step "a sandbox that does not exist"
status=0
host-vmm agent check nosuch 2>"$RESULTS/nosuch.err" || status=$?
assert_eq "exit status for a missing sandbox" 1 "$status"
assert_grep "sandbox nosuch is not running" "$RESULTS/nosuch.err" "missing sandbox message"

step "stop"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
assert_eq "host-vmm exit status after SIGTERM" 143 "$status"
[ ! -e "$HOST_VMM_RUNTIME_DIR/ag1" ] || fail "runtime directory left behind"
assert_no_leftover host-vmm
step "agent reachable ${took} ms after launch"
