# vCPU hot-plug through ACPI (issue 12): a sandbox booted with default_vcpus = 1 and
# default_maxvcpus = 4. `host-vmm cpus ID --set 4` hot-adds three vCPUs (CPU hot-plug
# controller + GED: the guest's CSCN notifies ACPI0007 devices, Linux adds the CPUs, the
# agent onlines them) and returns once the guest has them online: `nproc` in a
# container prints 4, and a container with `--cpus 3` burns about three CPUs (its
# cpu.stat usage over a second). `--set 1` offlines and ejects them (the agent offlines
# each CPU, Linux calls _EJ0, the VMM parks the vCPU threads): nproc prints 1 and the
# sandbox keeps serving. `--set 5` and `--set 0` are refused naming the limit and change
# nothing. 3 <-> 1 ten times with the agent answering between (parked vCPUs are reused).
# A container created with `--cpus 2` in the 1-vCPU sandbox gets two vCPUs before it
# starts; after `delete` the sandbox is back to one.
# scenario-cost: 140 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
# shellcheck disable=SC2016 # single-quoted commands are expanded by the container's shell
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/pod.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "" "default_vcpus = 1" "default_maxvcpus = 4" "memory_slots = 1"

# field NAME KEY: KEY=value from $RESULTS/NAME.out.
field() { sed -n "s/^$2=//p" "$RESULTS/$1.out"; }

# set_cpus N: `cpus cpu1 --set N`, checks present/online, prints the timings.
set_cpus() {
    hv "set$1" cpus cpu1 --set "$1"
    assert_eq "present after --set $1" "$1" "$(field "set$1" present)"
    assert_eq "online after --set $1" "$1" "$(field "set$1" online)"
    step "--set $1: vmm_ms=$(field "set$1" vmm_ms) guest_ms=$(field "set$1" guest_ms)"
}

# nproc_in NAME: `nproc` in a fresh container, printed.
nproc_in() {
    hv "create-$1" create cpu1 "$1" -- nproc
    hv "start-$1" start cpu1 "$1" --attach
    hv "delete-$1" delete cpu1 "$1"
    tr -d '\r\n' <"$RESULTS/start-$1.out"
}

step "sandbox cpu1: default_vcpus = 1, default_maxvcpus = 4"
start_pod cpu1
hv info0 cpus cpu1
cat "$RESULTS/info0.out"
assert_eq "boot vCPUs" 1 "$(field info0 boot)"
assert_eq "max vCPUs" 4 "$(field info0 max)"
assert_eq "online at boot" 1 "$(field info0 online)"

step "refusals name the limit and change nothing"
EXPECT=1 hv above cpus cpu1 --set 5
assert_grep "default_maxvcpus = 4" "$RESULTS/above.err" "--set 5"
step "--set 5: $(cat "$RESULTS/above.err")"
EXPECT=1 hv zero cpus cpu1 --set 0
assert_grep "at least 1" "$RESULTS/zero.err" "--set 0"
hv info1 cpus cpu1
assert_eq "present after refusals" 1 "$(field info1 present)"

set_cpus 4
assert_eq "nproc with 4 vCPUs" 4 "$(nproc_in np4)"

step "a container with --cpus 3 burns three CPUs"
# Three busy loops; the container's cgroup cpu.stat (host-vmm stats: cpu_usage_usec) is
# read twice, about a second apart.
hv create-burn create cpu1 burn --cpus 3 -- sh -c 'for i in 1 2 3; do (while :; do :; done) & done; wait'
hv start-burn start cpu1 burn
sleep 2
hv stat1 stats cpu1 burn
t1=$(now_ms)
sleep 1
hv stat2 stats cpu1 burn
t2=$(now_ms)
hv delete-burn delete cpu1 burn
u1=$(field stat1 cpu_usage_usec) u2=$(field stat2 cpu_usage_usec)
# CPU microseconds per wall millisecond / 10: percent of one CPU.
pct=$(((u2 - u1) / (t2 - t1) / 10))
step "--cpus 3: $((u2 - u1)) us of CPU in $((t2 - t1)) ms: ${pct}% of one CPU"
# Three loops on three of the hot-added vCPUs: well above one CPU's worth.
[ "$pct" -ge 200 ] || fail "--cpus 3: ${pct}% of one CPU, want at least 200% (three busy loops)"

set_cpus 1
assert_eq "nproc with 1 vCPU" 1 "$(nproc_in np1)"

step "3 <-> 1 ten times, the agent answering between"
i=0
while [ "$i" -lt 10 ]; do
    i=$((i + 1))
    hv "up$i" cpus cpu1 --set 3
    assert_eq "round $i: online after --set 3" 3 "$(field "up$i" online)"
    hv "check-up$i" agent check cpu1
    hv "down$i" cpus cpu1 --set 1
    assert_eq "round $i: online after --set 1" 1 "$(field "down$i" online)"
    hv "check-down$i" agent check cpu1
    step "round $i: up vmm_ms=$(field "up$i" vmm_ms) guest_ms=$(field "up$i" guest_ms), down vmm_ms=$(field "down$i" vmm_ms) guest_ms=$(field "down$i" guest_ms)"
done

step "a container with --cpus 2 grows the sandbox before it starts"
hv create-two create cpu1 two --cpus 2 -- nproc
hv info2 cpus cpu1
assert_eq "present after create --cpus 2" 2 "$(field info2 present)"
hv start-two start cpu1 two --attach
assert_eq "nproc in the --cpus 2 container" 2 "$(tr -d '\r\n' <"$RESULTS/start-two.out")"
hv delete-two delete cpu1 two
hv info3 cpus cpu1
assert_eq "present after delete" 1 "$(field info3 present)"
assert_eq "online after delete" 1 "$(field info3 online)"

step "update --cpus 3 grows the sandbox; delete shrinks it back"
hv create-upd create cpu1 upd -- sleep 1000
hv start-upd start cpu1 upd
hv update-upd update cpu1 upd --cpus 3
hv info4 cpus cpu1
assert_eq "present after update --cpus 3" 3 "$(field info4 present)"
assert_eq "online after update --cpus 3" 3 "$(field info4 online)"
hv delete-upd delete cpu1 upd
hv info5 cpus cpu1
assert_eq "present after deleting the updated container" 1 "$(field info5 present)"

tr -d '\r' <"$RESULTS/cpu1.console" >"$RESULTS/cpu1.console.txt"
if grep -E 'Eject incomplete|cannot online|BUG|WARNING' "$RESULTS/cpu1.console.txt"; then
    fail "the guest reported CPU hot-plug problems"
fi
stop_pod

step "run --cpus 2 in a fresh 1-vCPU sandbox: nproc prints 2"
hv run2 run --config "$config" --console "$RESULTS/run2.console" --cpus 2 -- nproc
assert_eq "nproc under run --cpus 2" 2 "$(tr -d '\r\n' <"$RESULTS/run2.out")"
step "ok"
