# Scenario 40, a SELF-TEST bridge until the container RPCs are wired: the guest agent's
# container engine, driven inside the guest. The guest boots with
# `agent.selftest=containers agent.poweroff=1`; after AGENT_READY the agent creates a
# sandbox and containers from the built-in busybox image (/images/busybox), checks their
# output, namespaces, cgroups, exec, signals, removal (see
# guest-agent/src/container/selftest.rs), prints `SELFTEST containers PASS` or
# `SELFTEST containers FAIL <reason>` on the console, and powers off.
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (HOST_VMM=$HOST_VMM; cargo build -p host-vmm)"
# On tmpfs: Unix sockets cannot be bound on the 9p results share.
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" "agent.selftest=containers agent.poweroff=1"
# Container setup under nested emulation is slow: allow more than a plain boot.
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}

step "boot with agent.selftest=containers"
vmm_boot selftest --config "$config" --memory 512
[ "$BOOT_STATUS" -ne 124 ] || { show_boot; fail "timed out after $BOOT_TIMEOUT s"; }
clean="$RESULTS/selftest.console.txt"
tr -d '\r' <"$BOOT_CONSOLE" >"$clean"
grep -E '^(SELFTEST|guest-agent: (warn|error))' "$clean" || true

result=$(grep -E '^SELFTEST containers (PASS|FAIL)' "$clean" | tail -n 1)
[ -n "$result" ] || { show_boot; fail "no 'SELFTEST containers PASS|FAIL' line on the console"; }
case $result in
"SELFTEST containers PASS") ;;
*) fail "self-test failed: ${result#SELFTEST containers FAIL }" ;;
esac
assert_grep '^SELFTEST containers: hello/hello\| hello-from-container$' "$clean" "container output on the console"
[ "$BOOT_STATUS" -eq 0 ] || { show_boot; fail "host-vmm exit status $BOOT_STATUS (want 0: guest powered off)"; }
assert_no_leftover host-vmm
step "ok: $result (host-vmm wall ${BOOT_MS} ms)"
