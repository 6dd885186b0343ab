# Nothing the user or the guest controls makes host-vmm wait forever, and the
# configuration is never taken from the current directory unless named:
# - `config show` run in a directory holding a hostile configuration.toml reports the
#   shipped default (the build tree's configuration.toml), not ./configuration.toml;
#   the file is read only when named by --config or $HOST_VMM_CONFIG;
# - `disk --add` of a FIFO into a running sandbox is refused at once, naming the path
#   and what it is; a regular file is still hot-added; the sandbox then stops at once;
# - a console FIFO nobody has open is refused before boot, naming the console;
# - a console reader that never reads (a FIFO held open) does not stall the guest:
#   its pipe shrunk to 4 KiB, a chatty boot (initcall_debug, measured first to print
#   several times that) reaches the agent and powers off. (Dropping output once the 1 MiB console queue is
#   full is unit-tested: a nested guest prints about 5 KB/s, too slow to fill it here.)
# scenario-cost: 60 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/pod.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" ""

step "config search: a configuration.toml in the current directory is ignored unless named"
evil=/tmp/evil-$$
mkdir -p "$evil"
printf '[hypervisor.host-vmm]\nkernel = "%s/bzImage"\n' "$evil" >"$evil/configuration.toml"
(cd "$evil" && env -u HOST_VMM_CONFIG host-vmm config show) >"$RESULTS/show-cwd.out" 2>&1 ||
    { cat "$RESULTS/show-cwd.out" >&2; fail "config show in $evil failed"; }
head -n 1 "$RESULTS/show-cwd.out"
if grep -q "$evil" "$RESULTS/show-cwd.out"; then
    fail "config show in $evil read ./configuration.toml unasked"
fi
assert_grep '^# configuration: .*(the shipped default|built-in defaults)' "$RESULTS/show-cwd.out" "config show names the shipped default"
(cd "$evil" && host-vmm config show --config ./configuration.toml) >"$RESULTS/show-flag.out" 2>&1 || true
assert_grep "^# configuration: .*configuration.toml \(named by --config\)" "$RESULTS/show-flag.out" "--config ./configuration.toml"
assert_grep "$evil/bzImage" "$RESULTS/show-flag.out" "a named ./configuration.toml is read"
(cd "$evil" && HOST_VMM_CONFIG=./configuration.toml host-vmm config show) >"$RESULTS/show-env.out" 2>&1 || true
assert_grep "named by \\\$HOST_VMM_CONFIG" "$RESULTS/show-env.out" "HOST_VMM_CONFIG=./configuration.toml"
rm -rf "$evil"

step "disk --add of a FIFO into a running sandbox"
start_pod pod74
# FIFOs live in /tmp: the results share (9p) refuses special files.
fifo="/tmp/disk-$$.fifo"
mkfifo "$fifo"
t0=$(now_ms)
EXPECT_ANY=1 hv disk-fifo disk pod74 --add "$fifo"
took=$(($(now_ms) - t0))
cat "$RESULTS/disk-fifo.err"
assert_grep "$fifo: is a FIFO" "$RESULTS/disk-fifo.err" "the refusal names the path and what it is"
[ "$took" -lt 10000 ] || fail "disk --add of a FIFO took $took ms"
step "refused in $took ms"
img="$RESULTS/disk.img"
dd if=/dev/zero of="$img" bs=1024 count=1024 2>/dev/null
hv disk-file disk pod74 --add "$img,ro,serial=bounds74"
assert_grep '^serial=bounds74$' "$RESULTS/disk-file.out" "a regular file is still hot-added"
t0=$(now_ms)
stop_pod
took=$(($(now_ms) - t0))
[ "$took" -lt 10000 ] || fail "sandbox stop took $took ms"
step "sandbox stopped in $took ms"

step "console FIFO without a reader: refused before boot"
cfifo="/tmp/console-$$.fifo"
mkfifo "$cfifo"
t0=$(now_ms)
status=0
timeout -k 5 30 host-vmm boot --config "$config" --console "$cfifo" \
    </dev/null >"$RESULTS/noreader.out" 2>"$RESULTS/noreader.err" || status=$?
took=$(($(now_ms) - t0))
cat "$RESULTS/noreader.err"
[ "$status" -ne 124 ] || fail "boot with a reader-less console FIFO hung"
[ "$status" -ne 0 ] || fail "boot with a reader-less console FIFO succeeded"
assert_grep "console $cfifo: cannot open" "$RESULTS/noreader.err" "the error names the console"
step "refused in $took ms (exit $status)"

step "console reader that never reads: a chatty boot still completes"
chatty="$RESULTS/chatty.toml"
write_config "$chatty" "agent.poweroff=1 loglevel=8 initcall_debug"
# The reader shrinks the FIFO's pipe to one page (F_SETPIPE_SZ), holds it open and
# never reads. First, to a file: the boot must print several times what that pipe
# holds, or the stalled run below would prove nothing.
vmm_boot chatty-file --config "$chatty"
[ "$BOOT_STATUS" -eq 0 ] || { show_boot; fail "chatty boot to a file: exit status $BOOT_STATUS"; }
bytes=$(wc -c <"$BOOT_CONSOLE")
step "a chatty boot prints $bytes console bytes in ${BOOT_MS} ms"
[ "$bytes" -gt 16384 ] || fail "the chatty boot printed only $bytes bytes: not enough to fill a 4 KiB pipe"
command -v python3 >/dev/null || fail "python3 is needed to shrink the console pipe"
python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
fcntl.fcntl(fd, 1031, 4096)  # F_SETPIPE_SZ
open(sys.argv[2], "w").close()
time.sleep(600)
' "$cfifo" "/tmp/holder-$$.ready" &
holder=$!
deadline=$(($(now_ms) + 10000))
until [ -e "/tmp/holder-$$.ready" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "the FIFO holder did not start"
    sleep 0.1
done
t0=$(now_ms)
status=0
timeout -k 5 "${BOOT_TIMEOUT:-240}" host-vmm boot --config "$chatty" --console "$cfifo" \
    </dev/null >"$RESULTS/stalled.out" 2>"$RESULTS/stalled.err" || status=$?
took=$(($(now_ms) - t0))
# SIGKILL: the harness may start scripts with SIGTERM ignored, and that is inherited.
kill -9 "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
tail -n 5 "$RESULTS/stalled.err"
[ "$status" -ne 124 ] || fail "boot with a stalled console reader hung"
assert_eq "boot with a stalled console reader: exit status" 0 "$status"
step "powered off in $took ms with a stalled console reader ($bytes bytes of console)"
assert_no_leftover host-vmm
rm -f "$fifo" "$cfifo" "/tmp/holder-$$.ready"
