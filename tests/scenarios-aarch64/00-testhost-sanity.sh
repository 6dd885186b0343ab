# Sanity of the ARM64 test host (tests/testhost --arch aarch64), with nothing from host-vmm:
# an arm64 machine whose /dev/kvm is real ARM64 KVM (it runs guest code: kvm-probe), the
# inputs the harness promises (the arm64 guest kernel, initramfs and UEFI ROM, each the
# right kind of file), the repository's configuration.toml paths pointing at the arm64
# artifacts, a writable $RESULTS and /tmp, busybox on PATH.
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"

# od prints the bytes at OFFSET (COUNT of them) as hex pairs without spaces.
hex_at() { od -A n -t x1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }

step "mode: $TESTHOST_MODE, kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu(s)"
assert_eq "machine" aarch64 "$(uname -m)"
[ -c /dev/kvm ] || fail "/dev/kvm is missing or not a character device"
[ -r /dev/kvm ] || fail "/dev/kvm is not readable"
[ -w /dev/kvm ] || fail "/dev/kvm is not writable"
( : <>/dev/kvm ) 2>/dev/null || fail "cannot open /dev/kvm"
step "/dev/kvm: $(ls -l /dev/kvm)"

# Real ARM64 KVM: the API, the in-kernel GICv3 the board wants, and a vCPU that runs code.
probe=$REPO/target/testhost/aarch64/tools/kvm-probe
[ -x "$probe" ] || fail "$probe is missing (the harness builds it with aarch64-linux-gnu-gcc: apt-get install gcc-aarch64-linux-gnu)"
"$probe" >"$RESULTS/kvm-probe.txt" 2>&1 || { cat "$RESULTS/kvm-probe.txt" >&2; fail "kvm-probe failed"; }
sed 's/^/    kvm: /' "$RESULTS/kvm-probe.txt"
assert_grep '^api=12$' "$RESULTS/kvm-probe.txt" "KVM API version"
assert_grep '^gicv3=yes$' "$RESULTS/kvm-probe.txt" "in-kernel GICv3"
assert_grep '^psci_0_2=yes$' "$RESULTS/kvm-probe.txt" "PSCI 0.2"
assert_grep '^readonly_mem=yes$' "$RESULTS/kvm-probe.txt" "read-only memory slots (flash0)"
assert_grep '^guest_mmio=yes' "$RESULTS/kvm-probe.txt" "a vCPU ran guest code"

# The guest kernel: an arm64 Image ("ARMd" at 56) with the EFI stub (a PE image: "MZ" at 0).
need_file GUEST_KERNEL
assert_eq "arm64 Image magic in $GUEST_KERNEL" 41524d64 "$(hex_at "$GUEST_KERNEL" 56 4)"
assert_eq "EFI stub (PE 'MZ') in $GUEST_KERNEL" 4d5a "$(hex_at "$GUEST_KERNEL" 0 2)"
step "guest kernel: $GUEST_KERNEL ($(wc -c <"$GUEST_KERNEL") bytes): arm64 Image with EFI stub"

# The initramfs: a newc cpio whose /init is a static aarch64 ELF (e_machine 183 = 0xb7).
need_file GUEST_INITRD
assert_eq "newc cpio magic in $GUEST_INITRD" 070701 "$(head -c 6 "$GUEST_INITRD")"
unpack=/tmp/initrd.$$
mkdir -p "$unpack"
(cd "$unpack" && cpio -i -d -H newc 2>/dev/null <"$GUEST_INITRD") || true
[ -f "$unpack/init" ] || fail "$GUEST_INITRD has no /init"
assert_eq "/init is an ELF" 7f454c46 "$(hex_at "$unpack/init" 0 4)"
assert_eq "/init is aarch64 (e_machine)" b700 "$(hex_at "$unpack/init" 18 2)"
[ -f "$unpack/images/busybox/bin/busybox" ] || fail "$GUEST_INITRD has no /images/busybox"
assert_eq "the image's busybox is aarch64" b700 "$(hex_at "$unpack/images/busybox/bin/busybox" 18 2)"
rm -rf "$unpack"
step "guest initrd: $GUEST_INITRD ($(wc -c <"$GUEST_INITRD") bytes): /init and busybox are aarch64"

# The UEFI ROM: QEMU_EFI.fd begins with an AArch64 branch (b <reset>), holds a firmware volume.
need_file GUEST_FIRMWARE
first=$(hex_at "$GUEST_FIRMWARE" 3 1)
case "$first" in 14 | 15 | 16 | 17) ;; *) fail "$GUEST_FIRMWARE does not start with an AArch64 branch (byte 3 is $first)" ;; esac
grep -q _FVH "$GUEST_FIRMWARE" || fail "$GUEST_FIRMWARE holds no UEFI firmware volume (_FVH)"
step "firmware: $GUEST_FIRMWARE ($(wc -c <"$GUEST_FIRMWARE") bytes): AArch64 UEFI ROM"

# The repository's configuration.toml names target/kernel/guest/vmlinux and
# target/rootfs/initramfs.cpio: in this test host they are the arm64 artifacts.
# (The same file: the same device and inode, through the view's symlinks and bind mounts.)
same_file() { [ "$(stat -L -c %d:%i "$1" 2>/dev/null)" = "$(stat -L -c %d:%i "$2")" ]; }
if [ "$TESTHOST_MODE" = nested ]; then
    same_file "$REPO/target/kernel/guest/vmlinux" "$GUEST_KERNEL" ||
        fail "\$REPO/target/kernel/guest/vmlinux is not the arm64 guest kernel"
    same_file "$REPO/target/rootfs/initramfs.cpio" "$GUEST_INITRD" ||
        fail "\$REPO/target/rootfs/initramfs.cpio is not the arm64 initramfs"
    step "configuration.toml's kernel and initrd paths name the arm64 artifacts"
fi

command -v busybox >/dev/null || fail "busybox is not on PATH"
echo probe >"$RESULTS/probe" || fail "\$RESULTS=$RESULTS is not writable"
echo probe >"/tmp/probe.$$" || fail "/tmp is not writable"
rm "/tmp/probe.$$"
if [ -x "$HOST_VMM" ]; then
    assert_eq "host-vmm is aarch64" b700 "$(hex_at "$HOST_VMM" 18 2)"
    "$HOST_VMM" --version >"$RESULTS/host-vmm-version" 2>&1 ||
        { cat "$RESULTS/host-vmm-version" >&2; fail "$HOST_VMM does not run here"; }
    step "host-vmm: $HOST_VMM runs ($(head -n 1 "$RESULTS/host-vmm-version"))"
else
    step "note: \$HOST_VMM=$HOST_VMM is not built yet (make build-aarch64)"
fi
step "sane"
