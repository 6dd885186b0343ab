# Load: SOAK_SEQUENTIAL (default 100) sandboxes started and stopped one after another
# (`run -- echo`, 256 MiB each): every one exits 0 with its output, nothing is left behind
# (tests/lib/sweep.sh: process, runtime directory, socket, tap, loop device, cgroup, image
# temp file; checked every 10 and at the end), and a new sandbox's RSS at the end is the
# same as at the start: host-vmm's VmRSS while a container runs, first against last, within
# 10 % + 8 MiB (it includes the guest RAM the guest touched, which varies a little).
# scenario-cost: 900 (seconds on an idle 2-core machine: tests/run-all deals by it)
# scenario-timeout: 1800 (100 sandboxes, up to 15 s each on a loaded machine)
# shellcheck shell=sh
set -eu
# Knobs come as NAME=VALUE arguments too (`tests/testhost run` passes no environment).
for knob in "$@"; do
    case $knob in [A-Z]*=*) export "${knob?}" ;; esac
done
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/sweep.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-seq-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "" "default_memory = 256"
count=${SOAK_SEQUENTIAL:-100}

# sandbox_rss ID: host-vmm's VmRSS (KiB) while a container runs in sandbox ID.
sandbox_rss() {
    host-vmm run --id "$1" --config "$config" --console /dev/null -- sleep 3 \
        </dev/null >"$RESULTS/$1.out" 2>"$RESULTS/$1.err" &
    r_pid=$!
    r_until=$(($(now_ms) + 120000))
    until host-vmm ps "$1" 2>/dev/null | grep -q "$1"; do
        kill -0 "$r_pid" 2>/dev/null || { cat "$RESULTS/$1.err" >&2; fail "$1: run exited early"; }
        [ "$(now_ms)" -lt "$r_until" ] || { kill -9 "$r_pid"; fail "$1: no container in 120 s"; }
        sleep 0.2
    done
    RSS=$(rss_kib "$r_pid")
    r_status=0
    wait "$r_pid" || r_status=$?
    assert_eq "$1: status" 0 "$r_status"
}

step "RSS of the first sandbox"
sandbox_rss rss-first
first=$RSS
start=$(now_ms)
i=1
while [ "$i" -le "$count" ]; do
    rc=0
    timeout -k 5 120 host-vmm run --id "seq-$i" --config "$config" --console /dev/null -- echo "seq $i" \
        </dev/null >"$RESULTS/seq.out" 2>"$RESULTS/seq.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$RESULTS/seq.err" >&2; fail "sandbox $i of $count: exit status $rc"; }
    assert_eq "sandbox $i: stdout" "seq $i" "$(cat "$RESULTS/seq.out")"
    [ $((i % 10)) -ne 0 ] || { sweep "after $i sandboxes"; step "$i sandboxes, $(($(now_ms) - start)) ms"; }
    i=$((i + 1))
done
total=$(($(now_ms) - start))
sweep "after $count sandboxes"
step "RSS of a sandbox after $count"
sandbox_rss rss-last
last=$RSS
limit=$((first + first / 10 + 8192))
echo "sequential: $count sandboxes in $total ms ($((total / count)) ms each); RSS first $first KiB, last $last KiB (limit $limit)" |
    tee "$RESULTS/figures.txt"
[ "$last" -le "$limit" ] || fail "RSS grew: first $first KiB, last $last KiB (more than 10 % + 8 MiB)"
sweep "at the end"
