#!/bin/busybox sh
# /init of the ARM64 test host (qemu-system-aarch64 -M virt,virtualization=on -cpu max, TCG;
# see tests/testhost --arch aarch64). The same marker protocol as init.sh (x86_64), but the
# host's programs are x86_64 and cannot run here, so instead of a chroot into the host's
# tree this builds a view in /view:
#
# - /bin, /sbin, /usr/bin, /usr/sbin: this initramfs's arm64 busybox and its applet links;
# - the host's directories named in $SHARE (every top-level one except the system ones, plus
#   /usr/share for the UEFI ROM and /usr/lib/aarch64-linux-gnu for arm64 shared libraries,
#   written by the harness into /share/control) bound read-only at their host paths, from
#   the host's / over virtio-9p (tag hostroot), so every host path of the tree works;
# - $BINDS: "SRC:DST" pairs bound over the host's tree: the arm64 guest kernel and
#   initramfs at $REPO/target/kernel and $REPO/target/rootfs, so the repository's
#   configuration.toml names the arm64 artifacts unchanged;
# - its own /proc, /sys, /dev (a working /dev/kvm: ARM64 KVM under TCG), a tmpfs /tmp and
#   /run, and the run directory writable at its host path ($RUN_DIR, tag results).
#
# Then it runs $RUN_DIR/launch.sh in /view with an empty environment, writes the exit
# status to /share/status (and the kernel log to /share/dmesg.txt) and powers off.
# Lines starting with "@@testhost " are markers for the harness, not script output.
# shellcheck shell=sh

/bin/busybox mkdir -p /proc /sys /dev /tmp /host /share /run /usr/bin /usr/sbin /sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
echo "@@testhost init uptime=$(cut -d' ' -f1 /proc/uptime)"

die() {
    echo "@@testhost error $*"
    # A missing status file tells the harness the script never finished.
    sync
    poweroff -f
    sleep 5
    exit 1
}

mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up 2>/dev/null

# Debian's arm64 kernel keeps virtio-pci and 9p in modules (KVM is built in).
if [ -r /etc/testhost-modules ]; then
    while read -r module; do
        insmod "$module" || die "cannot load $module into the test host kernel"
    done </etc/testhost-modules
    echo "@@testhost modules-loaded uptime=$(cut -d' ' -f1 /proc/uptime)"
fi

ninep="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$ninep,ro,cache=loose" hostroot /host ||
    die "cannot mount the host root (virtio-9p tag hostroot): no 9p/9pnet_virtio/virtio_pci in the test host kernel?"
mount -t 9p -o "$ninep" results /share ||
    die "cannot mount the run directory (virtio-9p tag results)"
[ -r /share/control ] || die "no /share/control from the harness"
# shellcheck disable=SC1091
. /share/control
[ -n "${RUN_DIR:-}" ] || die "/share/control lacks RUN_DIR"
[ -n "${SHARE:-}" ] || die "/share/control lacks SHARE"
[ -r /share/launch.sh ] || die "no /share/launch.sh from the harness"

mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null

# The view: a tmpfs root with this initramfs's userland and the host's data directories.
mkdir -p /view
mount -t tmpfs -o mode=0755 tmpfs /view || die "cannot mount a tmpfs on /view"
for d in bin sbin usr/bin usr/sbin; do
    mkdir -p "/view/$d"
    mount -o bind "/$d" "/view/$d" || die "cannot bind /$d into the view"
done
for d in proc sys dev tmp run lib usr/lib; do mkdir -p "/view/$d"; done
# arm64 shared libraries (the host's libc6:arm64) at the paths an aarch64 binary asks for.
ln -s /usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 /view/lib/ld-linux-aarch64.so.1
ln -s ../usr/lib/aarch64-linux-gnu /view/lib/aarch64-linux-gnu
for dir in $SHARE; do
    [ -d "/host$dir" ] || continue
    mkdir -p "/view$dir"
    mount -o bind "/host$dir" "/view$dir" || die "cannot bind the host's $dir into the view"
done
mount -t proc proc /view/proc || die "cannot mount /view/proc"
mount -o rbind /sys /view/sys || die "cannot bind /view/sys"
mount -o rbind /dev /view/dev || die "cannot bind /view/dev"
mount -t tmpfs -o mode=1777 tmpfs /view/tmp || die "cannot mount a tmpfs on /view/tmp"
mount -t tmpfs tmpfs /view/run || die "cannot mount a tmpfs on /view/run"
# Paths under the host's /tmp that the harness names in KEEP (a CI clone, a kernel cache).
for keep in ${KEEP:-}; do
    case "$keep" in
    /tmp/*)
        mkdir -p "/view$keep"
        mount -o bind "/host$keep" "/view$keep" || die "cannot bind $keep from the host's /tmp"
        ;;
    esac
done
for pair in ${BINDS:-}; do
    src=${pair%%:*} dst=${pair#*:}
    mount -o bind "/view$src" "/view$dst" || die "cannot bind $src over $dst"
done
mkdir -p "/view$RUN_DIR" 2>/dev/null
mount -o bind /share "/view$RUN_DIR" || die "cannot bind the run directory at $RUN_DIR"

if [ ! -c /dev/kvm ]; then
    die "no /dev/kvm in the test host: the kernel found no EL2 (needs -M virt,virtualization=on) or lacks CONFIG_KVM ($(dmesg | grep -i -m1 kvm || echo 'no kvm line in dmesg'))"
fi

# A heartbeat while the script runs: the harness gives up on a test host that prints nothing
# for TESTHOST_STALL seconds (frozen) rather than waiting for the whole run's timeout.
(while sleep 30; do echo "@@testhost heartbeat uptime=$(cut -d' ' -f1 /proc/uptime)"; done) &
heartbeat=$!
echo "@@testhost script-start uptime=$(cut -d' ' -f1 /proc/uptime)"
chroot /view /bin/busybox env -i /bin/busybox sh "$RUN_DIR/launch.sh"
status=$?
kill "$heartbeat" 2>/dev/null
echo "@@testhost script-end status=$status uptime=$(cut -d' ' -f1 /proc/uptime)"
dmesg >/share/dmesg.txt 2>/dev/null
echo "$status" >/share/status.tmp && mv /share/status.tmp /share/status
sync
umount "/view$RUN_DIR" /share 2>/dev/null
poweroff -f
sleep 5
