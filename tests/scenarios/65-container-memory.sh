# Containers get the hot-plugged memory (the memory hotplug issue's container half). A
# sandbox boots with 512 MiB. Container c1, limited to 400 MiB, cannot allocate and touch
# 900 MiB (dd with a 900 MiB buffer). After `memory --add 1G` (it returns once the guest
# has onlined the memory) the guest has room, but c1's limit still holds: dd is OOM-killed
# in c1's cgroup (137, and stats count the OOM kill). After `update --memory 1200` the same
# container allocates and touches 900 MiB. A hot-add while container c2 is
# busy writing 128 MiB into memory loses nothing: c2 checks its data afterwards. The
# sandbox cgroup's memory.max follows the guest's total. `create -m` above the sandbox's
# RAM grows it first.
# scenario-cost: 95 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
# scenario-timeout: 900 (memory hot-adds and OOM runs take over 600 s nested on a loaded 2-core machine)
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/pod.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "" "default_memory = 512" "default_maxmemory = 3072" "memory_slots = 4"

# 900 MiB: dd's buffer, read full from /dev/zero (every page touched).
alloc900='dd if=/dev/zero of=/dev/null bs=943718400 count=1'

step "sandbox memc with 512 MiB; c1 limited to 400 MiB"
start_pod memc
hv create-c1 create memc c1 -m 400 -- sleep 1000
hv start-c1 start memc c1
hv stats0 stats memc c1
assert_grep "^memory_limit_bytes=$((400 << 20))\$" "$RESULTS/stats0.out" "c1 limit 400 MiB"

step "c1 cannot allocate 900 MiB in a 512 MiB sandbox"
# The guest refuses the 900 MiB malloc (overcommit) or the OOM killer takes dd.
EXPECT_ANY=1 hv alloc0 exec memc c1 -- sh -c "$alloc900"
step "  dd failed: $(tr '\n' ' ' <"$RESULTS/alloc0.err")"

step "hot-add 1 GiB: the guest has room, c1's 400 MiB limit still holds"
hv add1 memory memc --add 1G
assert_grep '^total_mib=1536$' "$RESULTS/add1.out" "sandbox total after the add"
step "  $(tr '\n' ' ' <"$RESULTS/add1.out")"
# The sandbox cgroup (every container together) follows the new total, less the agent's
# reserve: the agent logs it before OnlineCPUMem returns.
sandbox_max=$(tr -d '\r' <"$RESULTS/memc.console" |
    sed -n 's/.*sandbox memory: memory.max \([0-9]*\) MiB.*/\1/p' | tail -n 1)
[ "${sandbox_max:-0}" -ge 1400 ] || fail "sandbox cgroup memory.max is ${sandbox_max:-?} MiB after the add, want >= 1400"
step "  sandbox cgroup memory.max now $sandbox_max MiB"
EXPECT=137 hv alloc1 exec memc c1 -- sh -c "$alloc900"
hv stats1 stats memc c1
oom=$(sed -n 's/^oom_kills=//p' "$RESULTS/stats1.out")
[ "${oom:-0}" -ge 1 ] || { cat "$RESULTS/stats1.out" >&2; fail "no OOM kill counted for c1"; }
step "  dd was OOM-killed in c1's cgroup (137), oom_kills=$oom"

step "raise c1's limit to 1200 MiB (UpdateContainer)"
hv update-c1 update memc c1 --memory 1200
hv stats2 stats memc c1
assert_grep "^memory_limit_bytes=$((1200 << 20))\$" "$RESULTS/stats2.out" "c1 limit 1200 MiB"

step "c1 now allocates and touches 900 MiB"
hv alloc2 exec memc c1 -- sh -c "$alloc900"
assert_grep '^1[+]0 records out' "$RESULTS/alloc2.err" "dd copied its 900 MiB buffer"

step "hot-add while c2 writes 128 MiB into memory"
hv create-c2 create memc c2 -- sleep 1000
hv start-c2 start memc c2
# c2 streams 128 MiB of random data into its (tmpfs) root, hashing it on the way, then
# hashes the file again: equal hashes mean nothing was lost or changed.
# shellcheck disable=SC2016 # expanded in the container's shell
host-vmm exec memc c2 -- sh -c '
    head -c 134217728 /dev/urandom | tee /tmp/blob | sha256sum | cut -d" " -f1 >/tmp/streamed
    sha256sum /tmp/blob | cut -d" " -f1 >/tmp/stored
    cmp /tmp/streamed /tmp/stored && echo "VERIFIED $(cat /tmp/stored)"' \
    </dev/null >"$RESULTS/writer.out" 2>"$RESULTS/writer.err" &
writer=$!
# Let the writer get going, then hot-add while it runs.
sleep 1
kill -0 "$writer" 2>/dev/null || { cat "$RESULTS/writer.err" >&2; fail "the writer ended before the hot-add"; }
hv add2 memory memc --add 512M
assert_grep '^total_mib=2048$' "$RESULTS/add2.out" "sandbox total after the second add"
if kill -0 "$writer" 2>/dev/null; then
    step "  the add returned while the writer was still writing"
else
    step "  note: the writer had finished by the time the add returned"
fi
status=0
wait "$writer" || status=$?
[ "$status" -eq 0 ] || { cat "$RESULTS/writer.err" >&2; fail "writer: exit status $status"; }
assert_grep '^VERIFIED [0-9a-f]{64}$' "$RESULTS/writer.out" "the writer's data after the hot-add"

step "create with a limit above the sandbox's RAM grows the sandbox first"
hv create-c3 create memc c3 -m 2500 -- true
hv info3 memory memc
assert_grep '^total_mib=2560$' "$RESULTS/info3.out" "sandbox total after create -m 2500 (2048 + 512)"
hv delete-c3 delete memc c3

hv delete-c1 delete memc c1
hv delete-c2 delete memc c2
stop_pod
assert_no_leftover host-vmm
step "container memory follows hotplug: ok"
