# The `run` hang hunt (issue 10, finding 10): the shapes of `run` calls that hung once
# (exit code, a refused option, a large stdout, stdin, an OOM kill), over and over, each
# under a watchdog that, past its deadline, keeps every thread's state, host-vmm's own
# account of its waits (SIGQUIT), a gdb backtrace, the agent's log and the guest console
# (tests/lib/watchdog.sh), then kills it. Any hang fails the scenario. Then SIGQUIT on a
# running `run`: it prints what each thread waits for (the agent's WaitProcess, the vCPU in
# KVM_RUN) and carries on to exit 0.
# HUNT_ROUNDS (default 2) rounds of 6 calls; HUNT_BIG_MIB (default 8) MiB of stdout;
# HUNT_DEADLINE (default 300) seconds per call (a loaded 2-core machine took over 120 s
# for one nested OOM run).
# scenario-cost: 380 (seconds on an idle 2-core machine: tests/run-all deals by it)
# scenario-timeout: 1800 (12 calls, each under a 300 s watchdog)
# shellcheck shell=sh
set -eu
# Knobs come as NAME=VALUE arguments too (`tests/testhost run` passes no environment).
for knob in "$@"; do
    case $knob in [A-Z]*=*) export "${knob?}" ;; esac
done
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/sweep.sh"
. "$REPO/tests/lib/watchdog.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-hunt-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "" "default_memory = 512" "memory_slots = 2" "default_maxmemory = 2048"
rounds=${HUNT_ROUNDS:-2}
big=${HUNT_BIG_MIB:-8}
deadline=${HUNT_DEADLINE:-300}

# call NAME ARGS...: `run --id NAME ARGS` under the watchdog.
call() {
    c_name=$1
    shift
    watch_run "$c_name" "$deadline" "$c_name" run --id "$c_name" --config "$config" \
        --console "$RESULTS/$c_name.console" "$@"
    echo "$c_name: status $RC in $MS ms" >>"$RESULTS/calls.txt"
    [ "$RC" -ne 124 ] || return 0
    CALLS=$((CALLS + 1))
}

CALLS=0
printf abc >"$RESULTS/abc.in"
round=1
while [ "$round" -le "$rounds" ]; do
    step "round $round of $rounds"
    call "exit-$round" -- sh -c 'echo out; exit 42'
    [ "$RC" = 124 ] || assert_eq "exit 42" 42 "$RC"
    call "refused-$round" --net host -- true
    [ "$RC" = 124 ] || { [ "$RC" -eq 1 ] || fail "--net host: status $RC, want 1"; }
    call "big-$round" -- sh -c "head -c $((big << 20)) /dev/zero"
    if [ "$RC" != 124 ]; then
        assert_eq "big stdout: status" 0 "$RC"
        assert_eq "big stdout: bytes" "$((big << 20))" "$(wc -c <"$RESULTS/big-$round.out")"
    fi
    rm -f "$RESULTS/big-$round.out"
    WATCH_STDIN="$RESULTS/abc.in" call "stdin-$round" -i -- cat
    [ "$RC" = 124 ] || assert_eq "stdin: echoed" abc "$(cat "$RESULTS/stdin-$round.out")"
    # shellcheck disable=SC2016 # expanded by the container's shell
    call "oom-$round" -m 64 -- sh -c 'x=$(head -c 134217728 /dev/zero | tr "\0" a); echo survived ${#x}'
    [ "$RC" = 124 ] || assert_eq "oom: status" 137 "$RC"
    call "echo-$round" -- echo hello
    [ "$RC" = 124 ] || assert_eq "echo: stdout" hello "$(cat "$RESULTS/echo-$round.out")"
    round=$((round + 1))
done
step "$CALLS calls finished, $HANGS hung"
[ "$HANGS" -eq 0 ] || fail "$HANGS run call(s) hung: see $RESULTS/*.hang"
sweep "after the hunt"

step "SIGQUIT: what each thread waits for"
host-vmm run --id quit --config "$config" --console "$RESULTS/quit.console" -- sleep 6 \
    </dev/null >"$RESULTS/quit.out" 2>"$RESULTS/quit.err" &
qpid=$!
until_ms=$(($(now_ms) + 120000))
until host-vmm ps quit 2>/dev/null | grep -q quit; do
    kill -0 "$qpid" 2>/dev/null || { cat "$RESULTS/quit.err" >&2; fail "run -- sleep 6 exited early"; }
    [ "$(now_ms)" -lt "$until_ms" ] || { kill -9 "$qpid"; fail "the container did not start in 120 s"; }
    sleep 0.2
done
sleep 1
kill -QUIT "$qpid"
status=0
wait "$qpid" || status=$?
assert_eq "run after SIGQUIT: status" 0 "$status"
assert_grep 'what each thread is waiting for' "$RESULTS/quit.err" "SIGQUIT dump"
assert_grep 'agent WaitProcess quit/quit since' "$RESULTS/quit.err" "SIGQUIT: the wait thread"
assert_grep 'vcpu0 \[tid [0-9]+\]: running the guest \(KVM_RUN\)' "$RESULTS/quit.err" "SIGQUIT: the vCPU"
assert_grep 'heartbeat|attached to quit/quit' "$RESULTS/quit.err" "SIGQUIT: the session"
sed -n '/what each thread is waiting for/,/^[^ ]/p' "$RESULTS/quit.err"
sweep "after SIGQUIT"
