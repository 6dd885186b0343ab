# A container cannot reach the agent, nor forge the agent's log (issue 10, finding 1). A
# static probe (tests/tools/vsock-probe.c, built here with the host's `gcc -static`) runs in
# a container of a running sandbox and tries every vsock path: CID 1 (loopback) and CID 3
# (the guest's own) port 1024, where the agent listens; CID 2 (the host) port 1024; CID 2
# and CID 1 port 1025, the agent log port, writing a forged AGENT_READY and log line. Each
# attempt must be refused (the guest kernel has no vsock loopback, the agent accepts only
# the host's CID, the log port took the agent's own connection and closed), agent.log must
# hold the agent's lines and no forged one, and the sandbox must still serve afterwards.
# scenario-cost: 28 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/pod.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
command -v gcc >/dev/null || fail "gcc is not on PATH: the probe is built with gcc -static"
command -v mkfs.erofs >/dev/null || fail "mkfs.erofs is not on PATH (Debian erofs-utils): --rootfs needs it"
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" ""

step "build the probe (gcc -static) into a rootfs tree"
root="/tmp/probe-rootfs-$$"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc"
gcc -static -O2 -Wall -Wextra -Werror -o "$root/vsock-probe" "$REPO/tests/tools/vsock-probe.c" ||
    fail "cannot build tests/tools/vsock-probe.c with gcc -static (libc6-dev has libc.a)"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

step "sandbox p70 (run --id p70, no command)"
start_pod p70
log="$HOST_VMM_RUNTIME_DIR/p70/agent.log"
i=0
until [ -s "$log" ]; do
    [ $i -lt 100 ] || fail "agent.log is empty after 10 s: the agent's own log connection did not arrive"
    sleep 0.1
    i=$((i + 1))
done
[ ! -e "$HOST_VMM_RUNTIME_DIR/p70/vsock.sock_1025" ] ||
    fail "the log port still listens after the agent's connection"

step "the probe, in a container (create --rootfs, start --attach)"
hv create-probe create p70 probe --rootfs "$root" -- /vsock-probe
hv start-probe start --attach p70 probe
cat "$RESULTS/start-probe.out"
for target in "1 1024" "3 1024" "2 1024" "2 1025" "1 1025"; do
    cid=${target% *} port=${target#* }
    line=$(grep "^PROBE cid=$cid port=$port " "$RESULTS/start-probe.out" || true)
    [ -n "$line" ] || fail "no probe result for CID $cid port $port"
    case "$line" in
    *" result=refused "*) ;;
    *) fail "CID $cid port $port was not refused: $line" ;;
    esac
done

step "agent.log: the agent's lines, nothing forged"
lines=$(wc -l <"$log")
assert_grep '^guest-agent: ' "$log" "agent.log"
if grep -q 'FORGED' "$log"; then
    grep 'FORGED' "$log" >&2
    fail "a forged line reached agent.log"
fi
if grep -q 'FORGED' "$RESULTS/p70.console"; then
    fail "a forged line reached the guest console"
fi
step "agent.log: $lines lines, none forged"

step "the sandbox still serves"
hv check agent check p70
assert_grep '^SERVING ' "$RESULTS/check.out" "agent check after the probe"
hv create-after create p70 after -- echo still-serving
hv start-after start --attach p70 after
assert_eq "a container after the probe" "still-serving" "$(out start-after)"
hv ps ps p70
cat "$RESULTS/ps.out"

stop_pod
rm -rf "$root"
assert_no_leftover host-vmm
