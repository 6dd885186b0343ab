# Helpers for scenarios: `. "$REPO/tests/lib/assert.sh"`. POSIX sh (busybox sh).
# shellcheck shell=sh

# fail MSG...: print the reason and end the scenario with status 1.
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# step MSG...: a visible progress line.
step() {
    echo "--> $*"
}

# need_file VAR: the file named by variable VAR exists (else fail, naming VAR).
need_file() {
    eval "value=\${$1:-}"
    [ -n "$value" ] || fail "\$$1 is not set"
    [ -f "$value" ] || fail "\$$1=$value does not exist"
}

# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
    [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

# assert_grep PATTERN FILE WHAT: an extended regex matches a line of FILE.
assert_grep() {
    grep -Eq -- "$1" "$2" || {
        echo "--- $2 (last 20 lines):" >&2
        tail -n 20 "$2" >&2
        fail "$3: no line of $2 matches /$1/"
    }
}

# now_ms: a monotonic clock in milliseconds (from /proc/uptime).
now_ms() {
    awk '{ printf "%d", $1 * 1000 }' /proc/uptime
}

# stat_field PID N: field N of /proc/PID/stat counted after the "(comm)" field
# (1 state, 2 ppid, 3 pgrp, 4 session).
stat_field() {
    line=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # shellcheck disable=SC2086
    set -- "$2" ${line##*) }
    shift "$1"
    echo "$1"
}

# session_procs NAME: pids of processes named NAME in this shell's session (under
# run-all each scenario is its own session; under `run`, the script's run is).
session_procs() {
    own=$(stat_field $$ 4)
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        [ "$(cat "$dir/comm" 2>/dev/null)" = "$1" ] || continue
        [ "$(stat_field "$pid" 4)" = "$own" ] && echo "$pid"
    done
    return 0
}

# assert_no_leftover NAME: no process named NAME is left in this session.
assert_no_leftover() {
    left=$(session_procs "$1")
    [ -z "$left" ] || fail "leftover $1 process(es): $left"
}
