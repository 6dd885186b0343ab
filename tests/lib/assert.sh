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
