# The runtime directory does not rely on the umask, and liveness is the pid file's lock.
# Under `umask 0`: the runtime root and a sandbox's directory are 0700, its sockets 0600,
# its files 0600; `host-vmm list` shows the sandbox with its pid, vCPUs, memory and
# containers; `host-vmm stop` returns 0 and the directory is gone, and `stop` of an unknown
# id fails naming it and the runtime directory. A symlink planted as agent.log in a stale
# directory is not followed (its target is untouched) and the directory is reclaimed. After
# `kill -9` of a sandbox's host-vmm, the directory reads as stale (`list`, `ps`) and the
# next `run --id` with the same id works and leaves nothing. Two starts with one id at once:
# exactly one runs, the other is told the id is in use. A pre-made world-writable runtime
# root is refused, naming its mode and what is required.
# scenario-cost: 85 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/pod.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
umask 0
# On tmpfs: Unix sockets cannot be bound on the 9p results share.
RT="/tmp/host-vmm-runtime-$$"
export HOST_VMM_RUNTIME_DIR="$RT"
config="$RESULTS/configuration.toml"
write_config "$config" "" "default_memory = 512" "default_vcpus = 1"

# mode PATH: the permission bits in octal (700, 600, ...).
mode() { stat -c '%a' "$1"; }
# left: what the runtime root holds (hidden work directories included).
left() { ls -A "$RT" 2>/dev/null || true; }

step "umask 0: run --id rd1; the root and its directory are 0700, sockets and files 0600"
start_pod rd1
assert_eq "runtime root mode" 700 "$(mode "$RT")"
assert_eq "sandbox directory mode" 700 "$(mode "$RT/rd1")"
for f in api.sock vsock.sock pid agent.log; do
    [ -e "$RT/rd1/$f" ] || fail "no $RT/rd1/$f"
    assert_eq "$f mode" 600 "$(mode "$RT/rd1/$f")"
done
for s in api.sock vsock.sock; do
    [ -S "$RT/rd1/$s" ] || fail "$s is not a socket"
done
# The agent's log port (vsock.sock_1025, 0600 while it listens) takes the agent's one
# connection at boot, then is closed and removed (scenario 70): by now it is gone.
[ ! -e "$RT/rd1/vsock.sock_1025" ] || fail "vsock.sock_1025 still listens after the agent connected"

step "list: rd1 with its pid, 1 vCPU, 512 MiB, then 1 container"
hv list0 list
cat "$RESULTS/list0.out"
assert_grep "^ID +STATE +PID +UPTIME +VCPUS +MEMORY_MIB +CONTAINERS" "$RESULTS/list0.out" "list header"
assert_grep "^rd1 +running +$POD_PID +[0-9hms]+ +1 +512 +0$" "$RESULTS/list0.out" "list: rd1 with no container"
hv create-c1 create rd1 c1 -- sleep 1000
hv start-c1 start rd1 c1
hv list1 list
assert_grep "^rd1 +running +$POD_PID +[0-9hms]+ +1 +512 +1$" "$RESULTS/list1.out" "list: rd1 with one container"
hv list-json list --json
assert_grep '"id": "rd1"' "$RESULTS/list-json.out" "list --json: id"
assert_grep '"containers": 1' "$RESULTS/list-json.out" "list --json: containers"
assert_grep "\"pid\": $POD_PID" "$RESULTS/list-json.out" "list --json: pid"

step "stop rd1: exit 0, host-vmm exits 143, the directory is gone"
hv stop-rd1 stop rd1
assert_eq "stop prints the id" rd1 "$(out stop-rd1)"
[ ! -e "$RT/rd1" ] || fail "stop returned but $RT/rd1 is still there"
status=0
wait "$POD_PID" || status=$?
assert_eq "rd1's host-vmm exit status after stop" 143 "$status"
assert_eq "left after stop" "" "$(left)"

step "stop of an unknown id fails, naming it and the runtime directory"
EXPECT=1 hv stop-unknown stop nosuch
assert_grep "sandbox nosuch is not running \(no $RT/nosuch\)" "$RESULTS/stop-unknown.err" "stop nosuch"

step "a symlink planted as agent.log in a stale directory is not followed"
victim="/tmp/victim-$$"
echo keep >"$victim"
mkdir -m 700 "$RT/rd2"
echo 1 >"$RT/rd2/pid" # pid 1 lives, but nobody holds the lock: stale
chmod 600 "$RT/rd2/pid"
ln -s "$victim" "$RT/rd2/agent.log"
EXPECT=1 hv ps-stale ps rd2
assert_grep "sandbox rd2 is not running: .* is left by host-vmm pid 1, which is gone" "$RESULTS/ps-stale.err" "ps of a stale directory"
hv list-stale list
assert_grep "^rd2 +stale +1 " "$RESULTS/list-stale.out" "list shows the stale directory as stale"
hv run-rd2 run --id rd2 --config "$config" --console "$RESULTS/rd2.console" -- echo reclaimed
assert_eq "run in the reclaimed directory" reclaimed "$(out run-rd2)"
assert_eq "the symlink's target" keep "$(cat "$victim")"
assert_eq "left after run --id rd2" "" "$(left)"
rm -f "$victim"

step "kill -9 of a sandbox's host-vmm: stale, then run --id rd3 works and nothing is left"
start_pod rd3
kill -9 "$POD_PID"
wait "$POD_PID" 2>/dev/null || true
[ -e "$RT/rd3/pid" ] || fail "kill -9 should leave the directory (nothing ran to remove it)"
EXPECT=1 hv ps-killed ps rd3
assert_grep "sandbox rd3 is not running: .* is left by host-vmm pid $POD_PID, which is gone" "$RESULTS/ps-killed.err" "ps after kill -9"
hv list-killed list
assert_grep "^rd3 +stale +$POD_PID " "$RESULTS/list-killed.out" "list after kill -9"
if grep -Eq '^rd3 +running' "$RESULTS/list-killed.out"; then fail "a killed sandbox listed as running"; fi
hv run-rd3 run --id rd3 --config "$config" --console "$RESULTS/rd3b.console" -- echo again
assert_eq "run --id rd3 after kill -9" again "$(out run-rd3)"
assert_grep "reclaimed the runtime directory of a host-vmm that is gone" "$RESULTS/run-rd3.err" "reclaim logged"
assert_eq "left after kill -9 and a new run" "" "$(left)"
assert_no_leftover host-vmm

step "two starts with one id at once: one runs, the other is told the id is in use"
for n in 1 2; do
    host-vmm run --id dup --config "$config" --console "$RESULTS/dup$n.console" \
        </dev/null >"$RESULTS/dup$n.out" 2>"$RESULTS/dup$n.err" &
    eval "dup$n=\$!"
done
# shellcheck disable=SC2154 # set by the eval above
pids="$dup1 $dup2"
deadline=$(($(now_ms) + 120000))
loser="" winner=""
while [ -z "$loser" ]; do
    for p in $pids; do
        kill -0 "$p" 2>/dev/null || loser=$p
    done
    [ "$(now_ms)" -lt "$deadline" ] || { kill -9 "$dup1" "$dup2"; fail "neither start gave up within 120 s"; }
    sleep 0.1
done
for p in $pids; do [ "$p" = "$loser" ] || winner=$p; done
status=0
wait "$loser" || status=$?
n=1
[ "$loser" = "$dup1" ] || n=2
assert_eq "the losing start's exit status" 125 "$status"
assert_grep "sandbox dup is already running \(id in use: host-vmm pid $winner," "$RESULTS/dup$n.err" "the losing start"
kill -0 "$winner" 2>/dev/null || fail "the winning start is not running"
until host-vmm ps dup >/dev/null 2>&1; do
    kill -0 "$winner" 2>/dev/null || fail "the winning start exited: $(cat "$RESULTS"/dup*.err)"
    [ "$(now_ms)" -lt "$deadline" ] || { kill -9 "$winner"; fail "dup: no answer to ps"; }
    sleep 0.2
done
hv stop-dup stop dup
status=0
wait "$winner" || status=$?
assert_eq "the winning start's exit status after stop" 143 "$status"
assert_eq "left after the duplicate starts" "" "$(left)"

step "a pre-made world-writable runtime root is refused"
open_root="/tmp/host-vmm-open-$$"
mkdir -m 777 "$open_root"
status=0
HOST_VMM_RUNTIME_DIR="$open_root" host-vmm boot --id w1 --config "$config" \
    --console "$RESULTS/w1.console" 2>"$RESULTS/w1.err" || status=$?
assert_eq "boot in a world-writable root: exit status" 1 "$status"
assert_grep "$open_root is owned by uid [0-9]+ with mode 0777; required: owned by uid [0-9]+ \(the caller\) with no group or world access \(mode 0700\)" "$RESULTS/w1.err" "the refusal names the mode and the rule"
assert_eq "nothing made in the refused root" "" "$(ls -A "$open_root")"
status=0
HOST_VMM_RUNTIME_DIR="$open_root" host-vmm list >"$RESULTS/list-open.out" 2>"$RESULTS/list-open.err" || status=$?
assert_eq "list in a world-writable root: exit status" 1 "$status"
assert_grep "$open_root is owned by uid [0-9]+ with mode 0777" "$RESULTS/list-open.err" "list refuses it too"
rmdir "$open_root"

assert_no_leftover host-vmm
rmdir "$RT"
step "runtime directory checks passed"
