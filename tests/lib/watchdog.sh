# A watchdog for host-vmm calls that may hang: `. "$REPO/tests/lib/watchdog.sh"` after
# assert.sh. When a call outlives its deadline, everything needed to find out why is kept
# in $RESULTS/NAME.hang before it is killed: every thread's state from /proc, host-vmm's own
# account of what each thread waits for (SIGQUIT), a gdb backtrace of every thread when gdb
# is there, the agent's log and the guest console.
# shellcheck shell=sh
# shellcheck disable=SC2034 # RC, MS and HANGS are results for the caller

# dump_threads PID FILE: every thread of PID: name, wait channel, syscall, kernel stack.
dump_threads() {
    for task in /proc/"$1"/task/*; do
        {
            echo "--- thread ${task##*/}: $(cat "$task/comm" 2>/dev/null)"
            echo "wchan:   $(cat "$task/wchan" 2>/dev/null)"
            echo "syscall: $(cat "$task/syscall" 2>/dev/null)"
            echo "stack:"
            cat "$task/stack" 2>/dev/null
        } >>"$2"
    done
}

# watch_run NAME DEADLINE_S ID HOST_VMM_ARGS...: `host-vmm HOST_VMM_ARGS` (stdin from
# $WATCH_STDIN or /dev/null; stdout and stderr in $RESULTS/NAME.{out,err}). ID is the
# sandbox id the arguments give (for its agent log). If it runs longer than DEADLINE_S,
# the dump goes to $RESULTS/NAME.hang, the call is killed, RC is 124 and HANGS grows.
# Sets RC and MS (wall time).
HANGS=0
watch_run() {
    w_name=$1
    w_deadline=$2
    w_id=$3
    shift 3
    w_start=$(now_ms)
    host-vmm "$@" <"${WATCH_STDIN:-/dev/null}" >"$RESULTS/$w_name.out" 2>"$RESULTS/$w_name.err" &
    w_pid=$!
    w_limit=$((w_start + w_deadline * 1000))
    while kill -0 "$w_pid" 2>/dev/null && [ "$(now_ms)" -lt "$w_limit" ]; do
        sleep 0.2
    done
    if kill -0 "$w_pid" 2>/dev/null && [ "$(stat_field "$w_pid" 1)" != Z ]; then
        hang_report "$w_name" "$w_pid" "$w_id" "$w_deadline"
        kill -9 "$w_pid" 2>/dev/null
        wait "$w_pid" 2>/dev/null
        RC=124
        HANGS=$((HANGS + 1))
    else
        RC=0
        wait "$w_pid" || RC=$?
    fi
    MS=$(($(now_ms) - w_start))
}

# hang_report NAME PID ID DEADLINE: the dump described above, in $RESULTS/NAME.hang.
hang_report() {
    h_file="$RESULTS/$1.hang"
    echo "=== $1: host-vmm (pid $2) still running after $4 s" >"$h_file"
    # host-vmm's own account, printed to its stderr ($RESULTS/NAME.err).
    kill -QUIT "$2" 2>/dev/null
    sleep 1
    {
        echo "=== host-vmm's waits (SIGQUIT), from $RESULTS/$1.err:"
        sed -n '/what each thread is waiting for/,$p' "$RESULTS/$1.err"
        echo "=== threads (/proc/$2/task)"
    } >>"$h_file"
    dump_threads "$2" "$h_file"
    if command -v gdb >/dev/null; then
        echo "=== gdb: thread apply all bt" >>"$h_file"
        timeout 120 gdb -p "$2" -batch -ex 'thread apply all bt' >>"$h_file" 2>&1
    fi
    h_dir=${HOST_VMM_RUNTIME_DIR:-/run/host-vmm}/$3
    {
        echo "=== agent log ($h_dir/agent.log, last 100 lines)"
        tail -n 100 "$h_dir/agent.log" 2>&1
        echo "=== guest console ($RESULTS/$1.console, last 100 lines)"
        tail -n 100 "$RESULTS/$1.console" 2>&1 | tr -d '\r'
    } >>"$h_file"
    echo "HANG: $1 (pid $2) after $4 s: see $h_file" >&2
}
