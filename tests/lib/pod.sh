# Helpers for scenarios that keep a sandbox running and drive containers in it:
# `. "$REPO/tests/lib/pod.sh"` after assert.sh. Needs $RESULTS, and $config (the sandbox's
# configuration.toml) for start_pod; set HOST_VMM_RUNTIME_DIR under /tmp first.
# shellcheck shell=sh
# shellcheck disable=SC2034 # POD_PID is a result for the caller

# hv NAME ARGS...: `host-vmm ARGS`, output in $RESULTS/NAME.{out,err}; fails unless it
# exits 0 (set EXPECT to another status, or EXPECT_ANY=1 for any failing one).
hv() {
    hv_name=$1
    shift
    status=0
    timeout -k 5 120 host-vmm "$@" </dev/null >"$RESULTS/$hv_name.out" 2>"$RESULTS/$hv_name.err" ||
        status=$?
    if [ -n "${EXPECT_ANY:-}" ]; then
        [ "$status" -ne 0 ] || fail "$hv_name: host-vmm $*: succeeded, want a failure"
        return 0
    fi
    [ "$status" -eq "${EXPECT:-0}" ] ||
        { cat "$RESULTS/$hv_name.err" >&2; fail "$hv_name: host-vmm $*: exit status $status, want ${EXPECT:-0}"; }
}

# out NAME: what `hv NAME ...` printed.
out() { cat "$RESULTS/$1.out"; }

# start_pod ID ARGS...: `host-vmm run --id ID ARGS` in the background (sets POD_PID) until
# `ps ID` answers.
start_pod() {
    pod=$1
    shift
    host-vmm run --id "$pod" --config "${config:?set config to the sandbox configuration first}" --console "$RESULTS/$pod.console" "$@" \
        </dev/null >"$RESULTS/$pod.run.out" 2>"$RESULTS/$pod.run.err" &
    POD_PID=$!
    deadline=$(($(now_ms) + 120000))
    until host-vmm ps "$pod" >/dev/null 2>&1; do
        kill -0 "$POD_PID" 2>/dev/null || { cat "$RESULTS/$pod.run.err" >&2; fail "$pod: host-vmm run exited"; }
        [ "$(now_ms)" -lt "$deadline" ] || { kill -9 "$POD_PID"; fail "$pod: no answer to ps within 120 s"; }
        sleep 0.2
    done
}

# stop_pod: SIGTERM to the sandbox's host-vmm; it must exit 143 and leave nothing.
stop_pod() {
    kill -TERM "$POD_PID"
    status=0
    wait "$POD_PID" || status=$?
    assert_eq "$pod: exit status after SIGTERM" 143 "$status"
    [ ! -e "$HOST_VMM_RUNTIME_DIR/$pod" ] || fail "$pod: runtime directory left"
}
