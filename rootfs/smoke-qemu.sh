#!/usr/bin/env bash
# Boot check: boot the guest kernel with the guest initramfs under plain QEMU TCG (no KVM),
# with agent.poweroff=1, and check that the agent prints its AGENT_READY line and the VM
# powers off cleanly. Prints the boot time to the ready line.
#
# Usage: rootfs/smoke-qemu.sh [--arch aarch64]
#   --arch aarch64: the arm64 guest (make kernel-aarch64, make rootfs-aarch64) under
#   qemu-system-aarch64 -M virt,gic-version=3 -cpu max, booted the way host-vmm's aarch64
#   board boots it: Debian's UEFI ROM (FIRMWARE, default
#   /usr/share/qemu-efi-aarch64/QEMU_EFI.fd) starts the kernel's EFI stub, with QEMU's ACPI
#   tables (PL011 console from the SPCR, GICv3, PSCI power-off). BOOT=direct boots the Image
#   without the ROM (device tree) instead.
#
# Env: KERNEL (default target/kernel/guest/bzImage, from `make kernel`; aarch64:
#      target/kernel/guest-aarch64/Image),
#      INITRD (default target/rootfs/initramfs.cpio, from `make rootfs`; aarch64:
#      target/rootfs-aarch64/initramfs.cpio),
#      SMP (default 2), MEM_MIB (default 512), TIMEOUT (seconds, default 90; aarch64 180),
#      LOG (the console log, default target/rootfs/smoke-qemu.log; aarch64:
#      target/rootfs-aarch64/smoke-qemu.log)
set -euo pipefail
cd "$(dirname "$0")/.."

arch=x86_64
if [ "${1:-}" = --arch ]; then arch=${2:-}; fi
case "$arch" in
  x86_64)
    kernel=${KERNEL:-target/kernel/guest/bzImage}
    initrd=${INITRD:-target/rootfs/initramfs.cpio}
    log=${LOG:-target/rootfs/smoke-qemu.log}
    timeout_s=${TIMEOUT:-90}
    kmake="make kernel" rmake="make rootfs" ;;
  aarch64)
    kernel=${KERNEL:-target/kernel/guest-aarch64/Image}
    initrd=${INITRD:-target/rootfs-aarch64/initramfs.cpio}
    log=${LOG:-target/rootfs-aarch64/smoke-qemu.log}
    timeout_s=${TIMEOUT:-180}
    kmake="make kernel-aarch64" rmake="make rootfs-aarch64" ;;
  *) echo "error: --arch $arch: not one of x86_64, aarch64" >&2; exit 2 ;;
esac
smp=${SMP:-2}
mem=${MEM_MIB:-512}

fail() { echo "FAIL smoke-qemu: $*" >&2; exit 1; }
[ -f "$kernel" ] || fail "kernel $kernel not found: run \`$kmake\` first (or set KERNEL)"
[ -f "$initrd" ] || fail "initramfs $initrd not found: run \`$rmake\` first (or set INITRD)"
mkdir -p "$(dirname "$log")"

# panic=-1 and -no-reboot: a kernel panic ends QEMU at once instead of hanging to the timeout.
if [ "$arch" = x86_64 ]; then
  command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not found (run .ci/install-deps)"
  append="console=ttyS0 quiet panic=-1 agent.poweroff=1"
  cmd=(qemu-system-x86_64 -accel tcg -cpu qemu64 -smp "$smp" -m "$mem" -M pc
       -nographic -nodefaults -serial stdio -no-reboot
       -kernel "$kernel" -initrd "$initrd" -append "$append")
else
  command -v qemu-system-aarch64 >/dev/null || fail "qemu-system-aarch64 not found (Debian package qemu-system-arm; run .ci/install-deps)"
  append="console=ttyAMA0 quiet panic=-1 agent.poweroff=1"
  cmd=(qemu-system-aarch64 -accel tcg -M "virt,gic-version=3" -cpu "max,pauth-impdef=on"
       -smp "$smp" -m "$mem" -nographic -nodefaults -serial stdio -no-reboot)
  if [ "${BOOT:-uefi}" = uefi ]; then
    firmware=${FIRMWARE:-/usr/share/qemu-efi-aarch64/QEMU_EFI.fd}
    [ -f "$firmware" ] || fail "UEFI ROM $firmware not found (Debian package qemu-efi-aarch64; or set FIRMWARE)"
    cmd+=(-bios "$firmware")
  fi
  cmd+=(-kernel "$kernel" -initrd "$initrd" -append "$append")
fi
echo "[smoke] ${cmd[*]}" >&2

start=$(date +%s%N)
ready_ms=""
rc=0
# Read the console line by line to time the ready line as the host sees it.
while IFS= read -r line; do
  line=${line%$'\r'}
  printf '%s\n' "$line" >> "$log"
  if [ -z "$ready_ms" ] && [[ $line == *AGENT_READY* ]]; then
    ready_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  fi
done < <(: > "$log"; timeout --foreground -k 5 "$timeout_s" "${cmd[@]}" </dev/null 2>&1; echo "QEMU_EXIT=$?")
total_ms=$(( ($(date +%s%N) - start) / 1000000 ))

qemu_exit=$(sed -n 's/^QEMU_EXIT=//p' "$log")
re='^AGENT_READY version=([^ ]+) since_kernel_ms=([0-9]+) cpus=([0-9]+) mem_total_kib=([0-9]+)$'
# The firmware's screen-clearing escapes may precede the line on the same console row.
ready_line=$(grep -oE 'AGENT_READY .*$' "$log" | head -n1 || true)
[[ -z $ready_line || $ready_line =~ $re ]] || { echo "error: malformed ready line: $ready_line" >&2; ready_line=""; }

status=ok
[ "$qemu_exit" = 124 ] || [ "$qemu_exit" = 137 ] && { echo "error: QEMU timed out after ${timeout_s}s" >&2; status=fail; }
[ "$qemu_exit" = 0 ] || [ "$status" = fail ] || { echo "error: QEMU exited with $qemu_exit" >&2; status=fail; }
[ -n "$ready_line" ] || { echo "error: no AGENT_READY line on the console" >&2; status=fail; }
if [[ $ready_line =~ $re ]]; then
  [ "${BASH_REMATCH[3]}" = "$smp" ] || { echo "error: cpus=${BASH_REMATCH[3]}, want $smp" >&2; status=fail; }
  kib=${BASH_REMATCH[4]}
  (( kib > mem * 1024 * 3 / 4 && kib <= mem * 1024 )) || { echo "error: mem_total_kib=$kib does not fit -m ${mem}M" >&2; status=fail; }
fi
grep -q 'reboot: Power down' "$log" || { echo "error: no clean power off ('reboot: Power down')" >&2; status=fail; }
if grep -qE 'Kernel panic|guest-agent: error' "$log"; then
  echo "error: kernel panic or agent error on the console" >&2; status=fail
fi

if [ "$status" != ok ]; then
  echo "---- console ($log) ----" >&2
  tail -n 40 "$log" >&2
  fail "see above"
fi
echo "[smoke] $ready_line"
echo "[smoke] ok: ready line ${ready_ms} ms after QEMU start (guest clock: ${BASH_REMATCH[2]} ms since kernel start); powered off, QEMU done in ${total_ms} ms"
