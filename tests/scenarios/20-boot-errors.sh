# Scenario 2: boots that cannot work fail fast and clearly: a missing kernel, a garbage
# bzImage and too little memory each make host-vmm exit non-zero within seconds (not by
# the timeout, not by a panic), with a message on stderr naming the problem, and leave
# no host-vmm process behind.
# scenario-cost: 7 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (HOST_VMM=$HOST_VMM; cargo build -p host-vmm)"
config="$RESULTS/configuration.toml"
write_config "$config" "agent.poweroff=1"
BOOT_TIMEOUT=60

# must_fail NAME KEYWORD [ARGS...]: the boot fails cleanly and stderr contains KEYWORD
# (case-insensitive, fixed string).
must_fail() {
    name=$1 keyword=$2
    shift 2
    step "$name: host-vmm boot $*"
    vmm_boot "$name" --config "$config" "$@"
    case "$BOOT_STATUS" in
        0) show_boot; fail "$name: host-vmm succeeded; want a failure" ;;
        124) show_boot; fail "$name: host-vmm did not exit within $BOOT_TIMEOUT s" ;;
        101) show_boot; fail "$name: host-vmm panicked (exit 101); want an error message" ;;
    esac
    [ "$BOOT_STATUS" -lt 128 ] || { show_boot; fail "$name: host-vmm died by signal $((BOOT_STATUS - 128))"; }
    grep -qiF -- "$keyword" "$BOOT_STDERR" ||
        { show_boot; fail "$name: stderr does not mention '$keyword'"; }
    assert_no_leftover host-vmm
    step "$name: ok: exit $BOOT_STATUS in ${BOOT_MS} ms: $(grep -iF -m1 -- "$keyword" "$BOOT_STDERR")"
}

missing="$RESULTS/no-such-dir/bzImage"
must_fail missing-kernel "$missing" --kernel "$missing"

garbage="$RESULTS/garbage.bzImage"
head -c 1048576 /dev/urandom >"$garbage"
must_fail garbage-kernel "$garbage" --kernel "$garbage"

must_fail tiny-memory memory --memory 8
