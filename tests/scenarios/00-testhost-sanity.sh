# Sanity of the place the scenarios run in: a usable /dev/kvm on a CPU with hardware
# virtualization, and the inputs the harness promises (guest kernel, guest initramfs,
# a writable $RESULTS, a writable /tmp, busybox).
# scenario-cost: 2 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"

step "mode: $TESTHOST_MODE, kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu(s)"
[ -c /dev/kvm ] || fail "/dev/kvm is missing or not a character device"
[ -r /dev/kvm ] || fail "/dev/kvm is not readable"
[ -w /dev/kvm ] || fail "/dev/kvm is not writable"
# Opening it proves the driver is bound (an unbound node gives ENXIO/ENODEV).
( : <>/dev/kvm ) 2>/dev/null || fail "cannot open /dev/kvm"
grep -Eqw 'svm|vmx' /proc/cpuinfo || fail "the CPU has no svm/vmx flag"
if [ -d /sys/module/kvm_pvm ]; then
    fail "kvm_pvm is loaded: this /dev/kvm cannot boot a guest (run through tests/testhost)"
fi
step "/dev/kvm: $(ls -l /dev/kvm)"

need_file GUEST_KERNEL
need_file GUEST_INITRD
step "guest kernel: $GUEST_KERNEL ($(wc -c <"$GUEST_KERNEL") bytes)"
step "guest initrd: $GUEST_INITRD ($(wc -c <"$GUEST_INITRD") bytes)"

command -v busybox >/dev/null || fail "busybox is not on PATH"
echo probe >"$RESULTS/probe" || fail "\$RESULTS=$RESULTS is not writable"
echo probe >"/tmp/probe.$$" || fail "/tmp is not writable"
rm "/tmp/probe.$$"
[ -x "$HOST_VMM" ] || step "note: \$HOST_VMM=$HOST_VMM is not built yet"
step "sane"
