#!/bin/busybox sh
# /init of the nested-KVM test host (runs under QEMU TCG, see tests/testhost).
#
# 1. mounts proc, sys, devtmpfs; the host's / read-only over virtio-9p (tag hostroot) at
#    /host and the per-run directory writable over virtio-9p (tag results) at /share;
# 2. reads /share/control (written by the harness: RUN_DIR, the run directory's host
#    path, and BUSYBOX, the host's busybox) and prepares a chroot into /host with /proc,
#    /sys, /dev, a tmpfs /tmp and the writable run directory bound at its host path, so
#    every host binary and path works unchanged inside;
# 3. checks /dev/kvm, runs $RUN_DIR/launch.sh (written by the harness: the script's
#    environment, then exec of the script; direct mode runs the same file) in the chroot
#    with an empty environment and its output on the console, writes its exit status to
#    /share/status (and the kernel log to /share/dmesg.txt) and powers off.
# Lines starting with "@@testhost " are markers for the harness, not script output.
# shellcheck shell=sh

/bin/busybox mkdir -p /proc /sys /dev /tmp /host /share /run
/bin/busybox mount -t proc proc /proc
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

# Debian's kernel keeps virtio-pci, 9p and KVM in modules: load them (dependencies first).
if [ -r /etc/testhost-modules ]; then
    while read -r module; do
        case "$module" in
        # Without the CPU's virtualization (an emulated CPU without svm) kvm-amd refuses to
        # load: the /dev/kvm check below says so in plain words.
        *kvm-amd.ko | *kvm-intel.ko) insmod "$module" 2>/dev/null || echo "@@testhost note $module did not load" ;;
        *) insmod "$module" || die "cannot load $module into the test host kernel" ;;
        esac
    done </etc/testhost-modules
    echo "@@testhost modules-loaded uptime=$(cut -d' ' -f1 /proc/uptime)"
fi

ninep="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$ninep,ro,cache=loose" hostroot /host ||
    die "cannot mount the host root (virtio-9p tag hostroot): is CONFIG_9P_FS in the test host kernel?"
mount -t 9p -o "$ninep" results /share ||
    die "cannot mount the run directory (virtio-9p tag results)"
[ -r /share/control ] || die "no /share/control from the harness"
# shellcheck disable=SC1091
. /share/control
[ -n "${RUN_DIR:-}" ] || die "/share/control lacks RUN_DIR"
[ -n "${BUSYBOX:-}" ] || die "/share/control lacks BUSYBOX"
[ -r /share/launch.sh ] || die "no /share/launch.sh from the harness"

# cgroup2 for the VMM (optional: the test host kernel may lack a controller).
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null

# The chroot: the host's tree, with this machine's kernel interfaces and writable places.
mount -t proc proc /host/proc || die "cannot mount /host/proc"
mount -o rbind /sys /host/sys || die "cannot bind /host/sys"
mount -o rbind /dev /host/dev || die "cannot bind /host/dev"
# The chroot's /tmp is a writable tmpfs; the paths the harness names in KEEP that live
# under the host's /tmp (a CI clone, a kernel cache) stay visible through a view of the
# host's /tmp kept aside first.
mkdir -p /hosttmp
mount -o bind /host/tmp /hosttmp || die "cannot keep a view of the host's /tmp"
mount -t tmpfs -o mode=1777 tmpfs /host/tmp || die "cannot mount a tmpfs on /host/tmp"
mount -t tmpfs tmpfs /host/run 2>/dev/null
for keep in ${KEEP:-}; do
    case "$keep" in
    /tmp/*)
        mkdir -p "/host$keep"
        mount -o bind "/hosttmp/${keep#/tmp/}" "/host$keep" || die "cannot bind $keep from the host's /tmp"
        ;;
    esac
done
mkdir -p "/host$RUN_DIR" 2>/dev/null
mount -o bind /share "/host$RUN_DIR" || die "cannot bind the run directory at $RUN_DIR"

if [ ! -c /dev/kvm ]; then
    die "no /dev/kvm in the test host: the emulated CPU lacks svm, or the kernel lacks CONFIG_KVM_AMD ($(grep -o -w -m1 svm /proc/cpuinfo || echo 'no svm flag'))"
fi

# A heartbeat while the script runs: the harness gives up on a test host that prints nothing
# for TESTHOST_STALL seconds (frozen) rather than waiting for the whole run's timeout.
(while sleep 30; do echo "@@testhost heartbeat uptime=$(cut -d' ' -f1 /proc/uptime)"; done) &
heartbeat=$!
echo "@@testhost script-start uptime=$(cut -d' ' -f1 /proc/uptime)"
chroot /host "$BUSYBOX" env -i "$BUSYBOX" sh "$RUN_DIR/launch.sh"
status=$?
kill "$heartbeat" 2>/dev/null
echo "@@testhost script-end status=$status uptime=$(cut -d' ' -f1 /proc/uptime)"
dmesg >/share/dmesg.txt 2>/dev/null
echo "$status" >/share/status.tmp && mv /share/status.tmp /share/status
sync
umount /host/"$RUN_DIR" /share 2>/dev/null
poweroff -f
sleep 5
