# Devices and seccomp inside the guest. A sandbox with containers whose root filesystems
# are disks (`create --rootfs`, so each has a virtio-blk node): from one, `mknod` every
# virtio disk's node (the sibling's included, major:minor from /sys/block) in /tmp and in
# /dev and read it: refused (nodev: EACCES). A container given CAP_SYS_ADMIN and no seccomp
# mounts a tmpfs *with* devices allowed and does the same: a node of an allowed device
# opens there, the sibling's disk does not (the device cgroup program: EPERM). Allowed
# devices (/dev/null, zero, full, urandom, /dev/tty under -t) work. A default container
# shows `Seccomp: 2` and cannot read the kernel log (syslog: Docker's profile refuses it
# without CAP_SYSLOG), while a bundle without `linux.seccomp`, with the same capabilities,
# can: seccomp refused it, not capabilities. A bundle's own profile is applied as given;
# `linux.devices` gets its node; unsupported and unknown spec fields are refused by name.
# scenario-cost: 100 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
# shellcheck disable=SC2016 # single-quoted commands are expanded by the container's shell
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/pod.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
command -v mkfs.erofs >/dev/null || fail "mkfs.erofs is not on PATH (Debian erofs-utils): --rootfs needs it"
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" ""
work="/tmp/devices-$$"

# tree DIR MARKER: a busybox root filesystem with /etc/marker.
tree() {
    mkdir -p "$1/bin" "$1/proc" "$1/sys" "$1/dev" "$1/tmp" "$1/etc" "$1/mnt"
    cp /bin/busybox "$1/bin/busybox"
    for applet in sh echo cat head ls mknod mount grep dmesg unshare od stat mkdir true sleep; do
        ln -s busybox "$1/bin/$applet"
    done
    echo "$2" >"$1/etc/marker"
}

# bundle DIR MARKER CONFIG_JSON: a bundle with its own busybox tree.
bundle() {
    tree "$1/rootfs" "$2"
    printf '%s\n' "$3" >"$1/config.json"
}

NAMESPACES='[{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]'
MOUNTS='[{"destination": "/proc", "type": "proc", "source": "proc"},
         {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro", "nosuid", "noexec"]},
         {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}]'

step "sandbox with two containers on disks (create --rootfs)"
start_pod dev1
tree "$work/a" disk-a
tree "$work/b" disk-b
hv create-a create dev1 a --rootfs "$work/a" -- sleep 1000
hv create-b create dev1 b --rootfs "$work/b" -- sleep 1000
hv start-a start dev1 a
hv start-b start dev1 b
hv marker-b exec dev1 b -- cat /etc/marker
assert_eq "b runs on its own disk" disk-b "$(out marker-b)"
hv disks exec dev1 b -- sh -c 'for d in /sys/block/vd*; do echo "${d##*/} $(cat "$d/dev")"; done'
cat "$RESULTS/disks.out"
[ "$(wc -l <"$RESULTS/disks.out")" -ge 2 ] || fail "fewer than two virtio disks seen in /sys/block"

step "b makes every virtio disk's node (a's included) in /tmp and /dev: refused (nodev)"
# mknod is allowed (CAP_MKNOD, as Docker keeps it); the read is not.
EXPECT=0 hv mknod-read exec dev1 b -- sh -c '
    for d in /sys/block/vd*; do
        n=${d##*/}; mm=$(cat "$d/dev")
        for dir in /tmp /dev; do
            mknod "$dir/$n" b "${mm%:*}" "${mm#*:}" || { echo "mknod $dir/$n failed"; exit 3; }
            if head -c 512 "$dir/$n" >/dev/null 2>"/tmp/err"; then echo "READ $dir/$n"; exit 4; fi
            echo "$dir/$n: $(cat /tmp/err)"
        done
    done'
cat "$RESULTS/mknod-read.out"
assert_grep 'Permission denied' "$RESULTS/mknod-read.out" "a node on a nodev mount: EACCES"
if grep -q '^READ' "$RESULTS/mknod-read.out"; then fail "a container read a virtio disk"; fi

step "allowed devices still work; /dev/tty under -t"
hv allowed exec dev1 b -- sh -c 'echo x >/dev/null && head -c 4 /dev/zero | od -An -tx1 &&
    head -c 8 /dev/urandom >/dev/null && head -c 1 /dev/full >/dev/null && echo all-ok'
assert_grep 'all-ok' "$RESULTS/allowed.out" "null, zero, urandom, full"
EXPECT_ANY=1 hv full-write exec dev1 b -- sh -c 'echo x >/dev/full'
assert_grep 'No space left on device' "$RESULTS/full-write.err" "/dev/full opens (ENOSPC on write)"
hv tty exec -t dev1 b -- sh -c 'echo via-dev-tty >/dev/tty'
assert_grep 'via-dev-tty' "$RESULTS/tty.out" "/dev/tty under -t"

step "seccomp: a default container runs under Docker's profile"
hv status exec dev1 b -- grep Seccomp: /proc/self/status
assert_grep 'Seccomp:[[:space:]]*2$' "$RESULTS/status.out" "Seccomp: 2 (filter mode)"
EXPECT_ANY=1 hv dmesg-default exec dev1 b -- dmesg
assert_grep 'Operation not permitted' "$RESULTS/dmesg-default.err" "syslog refused by the default profile"
EXPECT_ANY=1 hv unshare-default exec dev1 b -- unshare -U true
assert_grep 'Operation not permitted' "$RESULTS/unshare-default.err" "unshare refused by the default profile"

step "a bundle without linux.seccomp, same default capabilities: syslog works (so seccomp refused it)"
bundle "$work/unconfined" unconfined "{\"ociVersion\": \"1.0.2\",
 \"process\": {\"args\": [\"sleep\", \"1000\"], \"cwd\": \"/\", \"env\": [\"PATH=/bin\"]},
 \"root\": {\"path\": \"rootfs\"}, \"mounts\": $MOUNTS,
 \"linux\": {\"namespaces\": $NAMESPACES}}"
hv create-u create dev1 u --bundle "$work/unconfined"
hv start-u start dev1 u
hv status-u exec dev1 u -- grep Seccomp: /proc/self/status
assert_grep 'Seccomp:[[:space:]]*0$' "$RESULTS/status-u.out" "no profile: Seccomp: 0"
hv dmesg-u exec dev1 u -- sh -c 'dmesg | head -n 1'
[ -s "$RESULTS/dmesg-u.out" ] || fail "dmesg printed nothing without seccomp"
hv caps-u exec dev1 u -- grep CapEff /proc/self/status
hv caps-b exec dev1 b -- grep CapEff /proc/self/status
assert_eq "same effective capabilities as the default container" "$(out caps-b)" "$(out caps-u)"

step "CAP_SYS_ADMIN, no seccomp, a tmpfs with devices allowed: the device cgroup still refuses a's disk"
# The container's own init does it (an exec gets the default capabilities, not the bundle's).
CAPS='["CAP_SYS_ADMIN", "CAP_MKNOD", "CAP_DAC_OVERRIDE", "CAP_CHOWN", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID"]'
bundle "$work/priv" priv "{\"ociVersion\": \"1.0.2\",
 \"process\": {\"args\": [\"sh\", \"/probe.sh\"], \"cwd\": \"/\", \"env\": [\"PATH=/bin\"],
   \"capabilities\": {\"bounding\": $CAPS, \"effective\": $CAPS, \"permitted\": $CAPS}},
 \"root\": {\"path\": \"rootfs\"}, \"mounts\": $MOUNTS,
 \"linux\": {\"namespaces\": $NAMESPACES}}"
cat >"$work/priv/rootfs/probe.sh" <<'EOF'
grep -E '^(CapEff|Seccomp):' /proc/self/status
mount -t tmpfs -o dev tmpfs /mnt || exit 3
mknod /mnt/null c 1 3 && echo x >/mnt/null && echo "allowed node opens"
for d in /sys/block/vd*; do
    n=${d##*/}; mm=$(cat "$d/dev")
    mknod "/mnt/$n" b "${mm%:*}" "${mm#*:}" || exit 4
    if head -c 512 "/mnt/$n" >/dev/null 2>/tmp/err; then echo "READ /mnt/$n"; exit 5; fi
    echo "/mnt/$n: $(cat /tmp/err)"
done
EOF
hv create-p create dev1 p --bundle "$work/priv"
hv cgroup-read start --attach dev1 p
cat "$RESULTS/cgroup-read.out"
assert_grep 'Seccomp:[[:space:]]*0$' "$RESULTS/cgroup-read.out" "no seccomp in the privileged container"
assert_grep 'allowed node opens' "$RESULTS/cgroup-read.out" "the tmpfs allows devices (control)"
assert_grep 'Operation not permitted' "$RESULTS/cgroup-read.out" "the device program: EPERM"
if grep -q '^READ' "$RESULTS/cgroup-read.out"; then fail "a container read a virtio disk"; fi

step "a bundle's own profile is applied as given; linux.devices gets its node"
bundle "$work/own" own "{\"ociVersion\": \"1.0.2\",
 \"process\": {\"args\": [\"sleep\", \"1000\"], \"cwd\": \"/\", \"env\": [\"PATH=/bin\"]},
 \"root\": {\"path\": \"rootfs\"}, \"mounts\": $MOUNTS,
 \"linux\": {\"namespaces\": $NAMESPACES,
   \"devices\": [{\"path\": \"/dev/myfull\", \"type\": \"c\", \"major\": 1, \"minor\": 7,
                  \"fileMode\": 416, \"uid\": 0, \"gid\": 0}],
   \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\",
     \"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13}]}}}"
hv create-o create dev1 o --bundle "$work/own"
hv start-o start dev1 o
EXPECT_ANY=1 hv mkdir-o exec dev1 o -- mkdir /tmp/x
assert_grep 'Permission denied' "$RESULTS/mkdir-o.err" "the bundle's rule: mkdir gets EACCES (13)"
hv dmesg-o exec dev1 o -- sh -c 'dmesg | head -n 1'
hv node-o exec dev1 o -- stat -c '%A %t:%T' /dev/myfull
assert_eq "linux.devices node" "crw-r----- 1:7" "$(out node-o)"
EXPECT_ANY=1 hv node-write exec dev1 o -- sh -c 'echo x >/dev/myfull'
assert_grep 'No space left on device' "$RESULTS/node-write.err" "the node opens (it is /dev/full)"

stop_pod

# Each create hot-adds its rootfs disk first and the VM has 7 slots (disks are not removed
# yet): the refusals get a sandbox of their own.
step "unsupported and unknown spec fields are refused by name"
start_pod dev2
bundle "$work/apparmor" x "{\"ociVersion\": \"1.0.2\",
 \"process\": {\"args\": [\"true\"], \"cwd\": \"/\", \"apparmorProfile\": \"docker-default\"},
 \"root\": {\"path\": \"rootfs\"}, \"linux\": {\"namespaces\": $NAMESPACES}}"
EXPECT_ANY=1 hv refuse-apparmor create dev2 r1 --bundle "$work/apparmor"
assert_grep 'process\.apparmorProfile: not supported' "$RESULTS/refuse-apparmor.err" "apparmorProfile refused by name"
bundle "$work/hooks" x "{\"ociVersion\": \"1.0.2\",
 \"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"root\": {\"path\": \"rootfs\"},
 \"hooks\": {\"prestart\": [{\"path\": \"/bin/true\"}]}, \"linux\": {\"namespaces\": $NAMESPACES}}"
EXPECT_ANY=1 hv refuse-hooks create dev2 r2 --bundle "$work/hooks"
assert_grep 'hooks: not supported' "$RESULTS/refuse-hooks.err" "hooks refused by name"
bundle "$work/unknown" x "{\"ociVersion\": \"1.0.2\",
 \"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"root\": {\"path\": \"rootfs\"},
 \"linux\": {\"namespaces\": $NAMESPACES, \"frobnicate\": 1}}"
EXPECT_ANY=1 hv refuse-unknown create dev2 r3 --bundle "$work/unknown"
assert_grep 'unknown field `frobnicate`' "$RESULTS/refuse-unknown.err" "an unknown field refused by name"
bundle "$work/notify" x "{\"ociVersion\": \"1.0.2\",
 \"process\": {\"args\": [\"true\"], \"cwd\": \"/\"}, \"root\": {\"path\": \"rootfs\"},
 \"linux\": {\"namespaces\": $NAMESPACES, \"seccomp\": {\"defaultAction\": \"SCMP_ACT_NOTIFY\"}}}"
EXPECT_ANY=1 hv refuse-notify create dev2 r4 --bundle "$work/notify"
assert_grep 'linux\.seccomp\.defaultAction: SCMP_ACT_NOTIFY is not supported' "$RESULTS/refuse-notify.err" "SCMP_ACT_NOTIFY refused by name"
hv ps ps dev2
for refused in r1 r2 r3 r4; do
    if grep -q "^$refused " "$RESULTS/ps.out"; then fail "refused container $refused is listed"; fi
done

stop_pod
rm -rf "$work"
rmdir "$HOST_VMM_RUNTIME_DIR" 2>/dev/null || true
assert_no_leftover host-vmm
step "PASS"
