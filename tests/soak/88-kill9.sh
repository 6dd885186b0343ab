# Faults: `kill -9` of host-vmm at random points of `run` (before boot, during boot, with a
# container attached, during a memory hot-add), KILL_ROUNDS (default 2) times each. After
# each kill the next `run --id` with the same id works (the stale runtime directory is
# reclaimed), and the sweep (tests/lib/sweep.sh) finds nothing left. KILL_SEED makes the
# random delays repeatable (printed).
# scenario-cost: 150 (seconds on an idle 2-core machine: tests/run-all deals by it)
# scenario-timeout: 1200
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
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-kill9-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "" "default_memory = 256" "memory_slots = 2" "default_maxmemory = 2048"
rounds=${KILL_ROUNDS:-2}
seed=${KILL_SEED:-$(now_ms)}
echo "KILL_SEED=$seed"
draws=0

# random_ms LOW HIGH: sets MS to the next delay drawn from the seed (not in a subshell:
# the draw count must advance).
random_ms() {
    draws=$((draws + 1))
    MS=$(awk -v s="$seed" -v n="$draws" -v lo="$1" -v hi="$2" \
        'BEGIN { srand(s); for (i = 0; i < n; i++) r = rand(); printf "%d", lo + r * (hi - lo) }')
}

# sleep_ms MS
sleep_ms() { sleep "$(awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }')"; }

# start ID ARGS...: `run --id ID ARGS` in the background (PID).
start() {
    s_id=$1
    shift
    host-vmm run --id "$s_id" --config "$config" --console "$RESULTS/$s_id.console" "$@" \
        </dev/null >"$RESULTS/$s_id.out" 2>"$RESULTS/$s_id.err" &
    PID=$!
}

# until_ps ID: until `host-vmm ps ID` lists ID (at most 120 s).
until_ps() {
    u_until=$(($(now_ms) + 120000))
    until host-vmm ps "$1" 2>/dev/null | grep -q "${2:-$1}"; do
        kill -0 "$PID" 2>/dev/null || { cat "$RESULTS/$1.err" >&2; fail "$1: run exited early"; }
        [ "$(now_ms)" -lt "$u_until" ] || fail "$1: ps shows no ${2:-$1} in 120 s"
        sleep 0.2
    done
}

# killed ID WHAT: kill -9 $PID, then the same id runs again and nothing is left.
killed() {
    kill -9 "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    rc=0
    timeout -k 5 120 host-vmm run --id "$1" --config "$config" --console "$RESULTS/$1.again.console" \
        -- echo again </dev/null >"$RESULTS/$1.again.out" 2>"$RESULTS/$1.again.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$RESULTS/$1.again.err" >&2; fail "$2: the next run --id $1: exit status $rc"; }
    assert_eq "$2: the next run --id $1" again "$(cat "$RESULTS/$1.again.out")"
    sweep "after kill -9 $2"
}

round=1
while [ "$round" -le "$rounds" ]; do
    random_ms 0 150
    ms=$MS
    step "round $round: kill -9 before boot (${ms} ms after exec)"
    start "k-early-$round" -- sleep 30
    sleep_ms "$ms"
    killed "k-early-$round" "before boot"

    random_ms 300 2000
    ms=$MS
    step "round $round: kill -9 during boot (${ms} ms after exec)"
    start "k-boot-$round" -- sleep 30
    sleep_ms "$ms"
    killed "k-boot-$round" "during boot"

    random_ms 0 1000
    ms=$MS
    step "round $round: kill -9 with a container attached (${ms} ms after it runs)"
    start "k-attached-$round" -- sleep 30
    until_ps "k-attached-$round"
    sleep_ms "$ms"
    killed "k-attached-$round" "with a container attached"

    random_ms 0 400
    ms=$MS
    step "round $round: kill -9 during a memory hot-add (${ms} ms after memory --add 1G)"
    start "k-hotadd-$round"
    until_ps "k-hotadd-$round" CONTAINER
    timeout -k 5 120 host-vmm memory "k-hotadd-$round" --add 1G >"$RESULTS/k-hotadd-$round.mem.out" \
        2>"$RESULTS/k-hotadd-$round.mem.err" &
    mem_pid=$!
    sleep_ms "$ms"
    kill -9 "$PID" 2>/dev/null || true
    mem_rc=0
    wait "$mem_pid" || mem_rc=$?
    [ "$mem_rc" -ne 124 ] || fail "memory --add hung after its sandbox was killed"
    echo "memory --add: exit status $mem_rc"
    killed "k-hotadd-$round" "during a memory hot-add"
    round=$((round + 1))
done
