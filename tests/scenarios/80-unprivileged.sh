# host-vmm as an unprivileged user (uid 1000, no groups, no capabilities): with access
# to /dev/kvm (the test host's own /dev) and a runtime directory of its own
# ($XDG_RUNTIME_DIR, 0700; the runtime root defaults to $XDG_RUNTIME_DIR/host-vmm for a
# user), `run -- echo hi` works, and so do `run --id` + `create`/`start`/`exec` and a
# stop by SIGTERM (exit 143, nothing left behind). Without access to /dev/kvm the error
# names it. The sandbox's host-vmm runs as uid 1000 with no capabilities, no_new_privs,
# and every thread in seccomp filter mode.
# scenario-cost: 50 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
# util-linux's setpriv: busybox's (first on the test host's PATH) has no --reuid.
setpriv=/usr/bin/setpriv
[ -x "$setpriv" ] || fail "$setpriv is missing (util-linux)"
[ "$(id -u)" = 0 ] || fail "this scenario sets up the user as root"

user=1000
base="/tmp/unprivileged-$$"
home="$base/home"
xdg="$base/xdg"
kvm_owner=$(stat -c %u:%g /dev/kvm)
kvm_mode=$(stat -c %a /dev/kvm)
restore() {
    chown "$kvm_owner" /dev/kvm
    chmod "$kvm_mode" /dev/kvm
    rm -rf "$base"
}
trap restore EXIT

step "uid $user: home, runtime directory (0700) and the guest artifacts it can read"
mkdir -p "$home" "$xdg" "$base/bin"
chmod 0755 "$base"
chown "$user:$user" "$home" "$xdg"
chmod 0700 "$xdg"
# The artifacts may live where uid 1000 cannot look (root's cache): copies it can read.
cp "$GUEST_KERNEL" "$base/kernel"
cp "$GUEST_INITRD" "$base/initrd"
cp "$(command -v host-vmm)" "$base/bin/host-vmm"
chmod 0644 "$base/kernel" "$base/initrd"
chmod 0755 "$base/bin/host-vmm"
GUEST_KERNEL="$base/kernel"
GUEST_INITRD="$base/initrd"
write_config "$base/configuration.toml" ""
chmod 0644 "$base/configuration.toml"

# as_user NAME ARGS...: `host-vmm ARGS` as uid 1000 with a clean environment; output in
# $RESULTS/NAME.{out,err}, exit status in $status.
as_user() {
    as_name=$1
    shift
    status=0
    timeout -k 5 120 "$setpriv" --reuid="$user" --regid="$user" --clear-groups \
        env -i PATH="$base/bin:$PATH" HOME="$home" XDG_RUNTIME_DIR="$xdg" \
        host-vmm "$@" </dev/null >"$RESULTS/$as_name.out" 2>"$RESULTS/$as_name.err" || status=$?
}

# ok NAME ARGS...: as_user, and it must exit 0.
ok() {
    as_user "$@"
    [ "$status" -eq 0 ] || { cat "$RESULTS/$1.err" >&2; fail "$1: exit status $status, want 0"; }
}

step "no access to /dev/kvm: a clear error naming it"
chown 0:0 /dev/kvm
chmod 0600 /dev/kvm
as_user nokvm run --config "$base/configuration.toml" -- echo hi
[ "$status" -ne 0 ] || fail "run without access to /dev/kvm succeeded"
assert_grep '/dev/kvm' "$RESULTS/nokvm.err" "the error names /dev/kvm"
assert_grep '[Pp]ermission denied' "$RESULTS/nokvm.err" "the error says why"
[ -z "$(ls -A "$xdg/host-vmm" 2>/dev/null)" ] || fail "a runtime directory was left: $(ls "$xdg/host-vmm")"

step "/dev/kvm for uid $user (as a kvm group would give it)"
chown "$user" /dev/kvm
chmod 0600 /dev/kvm

step "run -- echo hi"
ok run run --config "$base/configuration.toml" -- echo hi
assert_eq "container output" "hi" "$(cat "$RESULTS/run.out")"
[ -z "$(ls -A "$xdg/host-vmm" 2>/dev/null)" ] || fail "runtime directory left after run: $(ls "$xdg/host-vmm")"

step "run --id upod (kept running), as uid $user"
"$setpriv" --reuid="$user" --regid="$user" --clear-groups \
    env -i PATH="$base/bin:$PATH" HOME="$home" XDG_RUNTIME_DIR="$xdg" \
    host-vmm run --id upod --config "$base/configuration.toml" \
    </dev/null >"$RESULTS/upod.out" 2>"$RESULTS/upod.err" &
pod_pid=$!
deadline=$(($(now_ms) + 120000))
until as_user ps0 ps upod && [ "$status" -eq 0 ]; do
    kill -0 "$pod_pid" 2>/dev/null || { cat "$RESULTS/upod.err" >&2; fail "host-vmm run --id upod exited"; }
    [ "$(now_ms)" -lt "$deadline" ] || { kill -9 "$pod_pid"; fail "upod: no answer to ps within 120 s"; }
    sleep 0.2
done
[ -d "$xdg/host-vmm/upod" ] || fail "the runtime directory is not under \$XDG_RUNTIME_DIR/host-vmm"
assert_eq "runtime directory owner" "$user" "$(stat -c %u "$xdg/host-vmm/upod")"

step "the sandbox's host-vmm: uid $user, no capabilities, no_new_privs, every thread filtered"
status_file="/proc/$pod_pid/status"
assert_eq "host-vmm's uids" "$user $user $user $user" "$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "$status_file")"
assert_eq "host-vmm's effective capabilities" "0000000000000000" "$(awk '/^CapEff:/ { print $2 }' "$status_file")"
assert_eq "host-vmm's no_new_privs" "1" "$(awk '/^NoNewPrivs:/ { print $2 }' "$status_file")"
threads=0
for task in "/proc/$pod_pid"/task/*; do
    mode=$(awk '/^Seccomp:/ { print $2 }' "$task/status")
    [ "$mode" = 2 ] || fail "thread $(cat "$task/comm") of host-vmm is not filtered (Seccomp: $mode)"
    threads=$((threads + 1))
done
step "$threads threads, all in seccomp filter mode"

step "create + start + exec in upod"
ok create create upod c1 -- sleep 1000
ok start start upod c1
ok exec exec upod c1 -- echo hi-from-exec
assert_eq "exec output" "hi-from-exec" "$(cat "$RESULTS/exec.out")"
as_user exec-code exec upod c1 -- sh -c 'exit 3'
assert_eq "exec exit status" 3 "$status"

step "SIGTERM stops upod: exit 143, nothing left"
kill -TERM "$pod_pid"
status=0
wait "$pod_pid" || status=$?
assert_eq "exit status after SIGTERM" 143 "$status"
[ ! -e "$xdg/host-vmm/upod" ] || fail "runtime directory left after SIGTERM"
assert_no_leftover host-vmm
step "unprivileged run: ok"
