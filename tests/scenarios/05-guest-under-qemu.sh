# Reference: the same guest kernel and initramfs boot to the agent under QEMU with KVM.
# This checks the guest artifacts and nested KVM independently of host-vmm (when
# 10-boot-default fails and this passes, look at host-vmm), and gives a baseline time.
# scenario-cost: 26 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v qemu-system-x86_64 >/dev/null ||
    fail "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"

# qemu_boot NAME CPUS MEM_MIB
qemu_boot() {
    name=$1 cpus=$2 mem_mib=$3
    BOOT_CONSOLE="$RESULTS/$name.console"
    BOOT_STDERR="$RESULTS/$name.stderr"
    start=$(now_ms)
    if timeout -k 10 120 qemu-system-x86_64 -accel kvm -cpu host -smp "$cpus" -m "$mem_mib" \
        -M pc -bios qboot.rom -nographic -nodefaults -serial stdio -no-reboot \
        -kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
        -append "console=ttyS0 quiet panic=-1 agent.poweroff=1" \
        </dev/null >"$BOOT_CONSOLE" 2>"$BOOT_STDERR"; then
        status=0
    else
        status=$?
    fi
    BOOT_MS=$(($(now_ms) - start))
    [ "$status" -eq 0 ] || { show_boot; fail "qemu $name: exit status $status"; }
    assert_ready "qemu $name" "$BOOT_CONSOLE" "$cpus" "$mem_mib"
    step "qemu $name: ok: cpus=$cpus mem_total_kib=$(ready_field mem_total_kib); agent ready ${READY_SINCE_MS} ms after kernel start; QEMU wall ${BOOT_MS} ms"
}

qemu_boot default 1 1024
qemu_boot small 2 512
