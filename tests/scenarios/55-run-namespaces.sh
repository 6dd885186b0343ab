# Namespaces of `host-vmm run`: a container runs inside a VM, so it can never join a
# namespace of the host. `--net host`, `--ipc host`, `--pid host` and `--uts host` are each
# refused with exit status 1, a message naming the flag and why, and no VM started (no
# runtime directory, no host-vmm process). A bundle whose config.json joins a host
# namespace by path, or leaves one out (OCI's "share the host's"), is refused by field.
# The modes that are allowed work: the container's hostname is its own (--uts container),
# its pid namespace its own (its init is pid 1) or the pod's (--pid pod: the init is not).
# scenario-cost: 60 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" ""

# refused NAME PATTERN ARGS...: `host-vmm run ARGS` exits 1 at once with PATTERN on
# stderr, and starts nothing.
refused() {
    name=$1 pattern=$2
    shift 2
    start=$(now_ms)
    status=0
    timeout 30 host-vmm run --config "$config" "$@" >"$RESULTS/$name.out" 2>"$RESULTS/$name.err" ||
        status=$?
    took=$(($(now_ms) - start))
    assert_eq "$name: exit status" 1 "$status"
    assert_grep "$pattern" "$RESULTS/$name.err" "$name: the reason"
    [ ! -e "$HOST_VMM_RUNTIME_DIR" ] || fail "$name: $HOST_VMM_RUNTIME_DIR was created: a VM was started"
    assert_no_leftover host-vmm
    step "$name refused in $took ms: $(head -n 1 "$RESULTS/$name.err")"
}

refused net-host "^host-vmm: error: --net: host is refused: the container runs inside a VM, so it cannot join the host's network namespace \(allowed: pod\)$" --net host -- true
refused ipc-host "^host-vmm: error: --ipc: host is refused: .*cannot join the host's IPC namespace \(allowed: pod\)$" --ipc host -- true
refused pid-host "^host-vmm: error: --pid: host is refused: .*cannot join the host's pid namespace \(allowed: container, pod\)$" --pid host -- true
refused uts-host "^host-vmm: error: --uts: host is refused: .*cannot join the host's uts namespace \(allowed: container\)$" --uts host -- true
refused net-unknown '--net: unknown mode "bridge" \(allowed: pod\)' --net bridge -- true

step "a bundle joining the host's network namespace by path"
bundle="/tmp/bundle-$$"
mkdir -p "$bundle/rootfs"
cat >"$bundle/config.json" <<'JSON'
{"ociVersion": "1.0.2",
 "process": {"args": ["true"], "cwd": "/"},
 "root": {"path": "rootfs"},
 "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"},
                          {"type": "mount"}]}}
JSON
refused bundle-path 'linux\.namespaces\[1\]\.path: /proc/1/ns/net is refused' --bundle "$bundle"
assert_grep 'linux\.namespaces: no ipc entry, which in OCI means sharing the host' "$RESULTS/bundle-path.err" "bundle: missing ipc"
assert_grep 'linux\.namespaces: no uts entry' "$RESULTS/bundle-path.err" "bundle: missing uts"
rm -rf "$bundle"

# run_ok NAME ARGS...: a container that must succeed; its stdout in $RESULTS/NAME.out.
run_ok() {
    name=$1
    shift
    status=0
    timeout -k 10 180 host-vmm run --config "$config" --console "$RESULTS/$name.console" "$@" \
        </dev/null >"$RESULTS/$name.out" 2>"$RESULTS/$name.err" || status=$?
    [ "$status" -eq 0 ] || { cat "$RESULTS/$name.err" >&2; fail "$name: exit status $status"; }
}

step "--uts container: the hostname is the container's"
run_ok uts --id web1 -- hostname
assert_eq "hostname" "web1" "$(cat "$RESULTS/uts.out")"

step "--pid container (default): the init is pid 1 of its own namespace"
run_ok pid-own -- sh -c 'echo $$; ls -d /proc/[0-9]* | wc -l'
assert_eq "own pid ns: init pid" 1 "$(sed -n 1p "$RESULTS/pid-own.out")"

step "--pid pod: the init shares the pod's pid namespace"
run_ok pid-pod --pid pod -- sh -c 'echo $$'
pod_pid=$(cat "$RESULTS/pid-pod.out")
[ "$pod_pid" -gt 1 ] || fail "--pid pod: the init is pid $pod_pid, want another than 1"

rmdir "$HOST_VMM_RUNTIME_DIR" 2>/dev/null || true
assert_no_leftover host-vmm
step "PASS"
