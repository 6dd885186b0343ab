# Several containers in one sandbox: `host-vmm run --id pod1` (no command) starts a
# sandbox and keeps it running; `create`/`start`/`exec`/`kill`/`wait`/`delete`/`ps`/
# `stats` drive containers in it. Containers of a pod share its network namespace (a
# listener on 127.0.0.1 in one is reached from another) and its IPC namespace (a POSIX
# message queue made in one is seen in the other), and have pid and uts namespaces of
# their own; in a sandbox started with --pid pod they share the pid namespace too. `kill`
# + `wait` gives 143 (SIGTERM); a deleted container is gone from `ps` (and `delete` only
# succeeds once the agent has checked that its cgroup and mounts are gone); `create --rootfs`
# and `--bundle` hot-add the tree as an erofs disk and `start --attach` streams them;
# SIGTERM to the sandbox's host-vmm stops it and leaves nothing behind.
# scenario-cost: 90 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
# shellcheck disable=SC2016 # single-quoted commands are expanded by the container's shell
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

step "sandbox pod1 (run --id pod1, no command)"
start=$(now_ms)
start_pod pod1
step "pod1 ready in $(($(now_ms) - start)) ms"
hv ps0 ps pod1
assert_eq "empty pod: ps lines" 1 "$(out ps0 | wc -l)"

step "c1 listens on 127.0.0.1:8080; c2 idles"
hv create-c1 create pod1 c1 -- sh -c 'nc -l -p 8080 >/tmp/got; exec sleep 1000'
hv create-c2 create pod1 c2 -- sleep 1000
hv ps1 ps pod1
cat "$RESULTS/ps1.out"
assert_grep '^c1 +created ' "$RESULTS/ps1.out" "c1 created"
hv start-c1 start pod1 c1
hv start-c2 start pod1 c2
hv ps2 ps pod1
assert_grep '^c1 +running ' "$RESULTS/ps2.out" "c1 running"
assert_grep '^c2 +running ' "$RESULTS/ps2.out" "c2 running"

step "loopback is shared: c2 connects to c1's listener"
hv nc exec pod1 c2 -- sh -c 'i=0; until echo ping-from-c2 | nc 127.0.0.1 8080; do i=$((i+1)); [ $i -lt 50 ] || exit 1; sleep 0.2; done'
EXPECT=0 hv got exec pod1 c1 -- sh -c 'i=0; until [ -s /tmp/got ]; do i=$((i+1)); [ $i -lt 50 ] || exit 1; sleep 0.1; done; cat /tmp/got'
assert_eq "c1 received" "ping-from-c2" "$(out got)"

step "namespaces: net and ipc shared, pid and uts own"
ns() { hv "ns-$1-$2" exec pod1 "$1" -- readlink "/proc/self/ns/$2"; out "ns-$1-$2"; }
for kind in net ipc; do
    a=$(ns c1 $kind) b=$(ns c2 $kind)
    assert_eq "$kind namespace shared" "$a" "$b"
done
for kind in pid uts; do
    a=$(ns c1 $kind) b=$(ns c2 $kind)
    [ "$a" != "$b" ] || fail "$kind namespace shared by c1 and c2 ($a); want their own"
done
# IPC, for real: a POSIX message queue made in c1 is seen in c2.
hv mq-make exec pod1 c1 -- sh -c ': >/dev/mqueue/pod-queue && ls /dev/mqueue'
hv mq-see exec pod1 c2 -- ls /dev/mqueue
assert_grep '^pod-queue$' "$RESULTS/mq-see.out" "c2 sees c1's message queue"
# Pids: c2 does not see c1's processes (only its own init and the exec).
hv ps-c2 exec pod1 c2 -- sh -c 'for p in /proc/[0-9]*; do cat $p/comm; done'
if grep -q '^nc$' "$RESULTS/ps-c2.out"; then fail "c2 sees c1's nc: pid namespace shared"; fi
assert_grep '^sleep$' "$RESULTS/ps-c2.out" "c2 sees its own init"
hv hostname exec pod1 c2 -- hostname
assert_eq "c2's hostname" "c2" "$(out hostname)"

step "exec: exit code, stdin, stats"
EXPECT=7 hv exec7 exec pod1 c2 -- sh -c 'exit 7'
EXPECT=125 hv exec-missing exec pod1 nosuch -- true
assert_grep 'nosuch' "$RESULTS/exec-missing.err" "exec in a missing container names it"
printf 'via-stdin' | timeout 60 host-vmm exec -i pod1 c2 -- cat >"$RESULTS/exec-i.out"
assert_eq "exec -i" "via-stdin" "$(out exec-i)"
hv stats stats pod1 c2
cat "$RESULTS/stats.out"
assert_grep '^pids_current=[1-9][0-9]*$' "$RESULTS/stats.out" "stats: pids"
assert_grep '^memory_usage_bytes=[1-9][0-9]*$' "$RESULTS/stats.out" "stats: memory"

step "kill + wait: SIGTERM gives 143"
# c3's init handles TERM (a pid namespace's init ignores signals it has no handler for).
hv create-c3 create pod1 c3 -- sh -c 'trap "exit 143" TERM; sleep 1000 & wait'
hv start-c3 start pod1 c3
sleep 1
hv kill-c3 kill pod1 c3
EXPECT=143 hv wait-c3 wait pod1 c3
assert_eq "wait prints the code" 143 "$(out wait-c3)"
hv kill-c2 kill pod1 c2 KILL
EXPECT=137 hv wait-c2 wait pod1 c2

step "delete: gone from ps"
hv delete-c2 delete pod1 c2
hv ps3 ps pod1
cat "$RESULTS/ps3.out"
if grep -q '^c2 ' "$RESULTS/ps3.out"; then fail "c2 still listed after delete"; fi
assert_grep '^c3 +stopped ' "$RESULTS/ps3.out" "c3 listed as stopped"
EXPECT=1 hv stats-gone stats pod1 c2
assert_grep 'c2' "$RESULTS/stats-gone.err" "stats of a deleted container names it"

step "create --rootfs / --bundle in a running sandbox: erofs disks hot-added"
command -v mkfs.erofs >/dev/null || fail "mkfs.erofs is not on PATH (Debian erofs-utils): --rootfs needs it"
bundle="/tmp/bundle-$$"
root="$bundle/rootfs"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc"
cp /bin/busybox "$root/bin/busybox"
for applet in sh echo cat hostname; do ln -s busybox "$root/bin/$applet"; done
echo disk-marker >"$root/etc/marker"
hv create-d1 create pod1 d1 --rootfs "$root" -- sh -c 'cat /etc/marker; hostname'
hv start-d1 start --attach pod1 d1
assert_eq "d1 (--rootfs, hot-added disk)" "disk-marker
d1" "$(out start-d1)"
cat >"$bundle/config.json" <<'JSON'
{"ociVersion": "1.0.2",
 "process": {"args": ["sh", "-c", "echo from-bundle; cat /etc/marker"], "cwd": "/",
             "env": ["PATH=/bin"]},
 "root": {"path": "rootfs"},
 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
 "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                          {"type": "uts"}, {"type": "mount"}]}}
JSON
hv create-d2 create pod1 d2 --bundle "$bundle"
hv start-d2 start --attach pod1 d2
assert_eq "d2 (--bundle, hot-added disk)" "from-bundle
disk-marker" "$(out start-d2)"
rm -rf "$bundle"

stop_pod

step "sandbox pod2 with --pid pod: one pid namespace"
start_pod pod2 --pid pod
hv p-create-a create pod2 a -- sleep 1000
hv p-create-b create pod2 b -- sleep 1000
hv p-start-a start pod2 a
hv p-start-b start pod2 b
hv p-see exec pod2 b -- sh -c 'for p in /proc/[0-9]*; do cat $p/comm; done'
assert_eq "b sees both sleeps" 2 "$(grep -c '^sleep$' "$RESULTS/p-see.out")"
a=$(hv p-ns-a exec pod2 a -- readlink /proc/self/ns/pid && out p-ns-a)
b=$(hv p-ns-b exec pod2 b -- readlink /proc/self/ns/pid && out p-ns-b)
assert_eq "pid namespace shared with --pid pod" "$a" "$b"
# Not a namespace's init: SIGTERM kills it for real.
hv p-kill kill pod2 a TERM
EXPECT=143 hv p-wait wait pod2 a
stop_pod

rmdir "$HOST_VMM_RUNTIME_DIR" 2>/dev/null || true
assert_no_leftover host-vmm
step "PASS"
