#!/usr/bin/env bash
# Boot check: boot the guest kernel with the guest initramfs under plain QEMU TCG (no KVM),
# with agent.poweroff=1, and check that the agent prints its AGENT_READY line and the VM
# powers off cleanly. Prints the boot time to the ready line.
#
# Env: KERNEL (default target/kernel/guest/bzImage, from `make kernel`),
#      INITRD (default target/rootfs/initramfs.cpio, from `make rootfs`),
#      SMP (default 2), MEM_MIB (default 512), TIMEOUT (seconds, default 90),
#      LOG (the console log, default target/rootfs/smoke-qemu.log)
set -euo pipefail
cd "$(dirname "$0")/.."

kernel=${KERNEL:-target/kernel/guest/bzImage}
initrd=${INITRD:-target/rootfs/initramfs.cpio}
smp=${SMP:-2}
mem=${MEM_MIB:-512}
timeout_s=${TIMEOUT:-90}
log=${LOG:-target/rootfs/smoke-qemu.log}

fail() { echo "FAIL smoke-qemu: $*" >&2; exit 1; }
[ -f "$kernel" ] || fail "kernel $kernel not found: run \`make kernel\` first (or set KERNEL)"
[ -f "$initrd" ] || fail "initramfs $initrd not found: run \`make rootfs\` first (or set INITRD)"
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not found (run .ci/install-deps)"
mkdir -p "$(dirname "$log")"

# panic=-1 and -no-reboot: a kernel panic ends QEMU at once instead of hanging to the timeout.
append="console=ttyS0 quiet panic=-1 agent.poweroff=1"
cmd=(qemu-system-x86_64 -accel tcg -cpu qemu64 -smp "$smp" -m "$mem" -M pc
     -nographic -nodefaults -serial stdio -no-reboot
     -kernel "$kernel" -initrd "$initrd" -append "$append")
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
