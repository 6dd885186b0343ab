# Memory hot-add benchmark inside the test host (`tests/testhost run
# tests/bench/hotplug-in-testhost.sh [RUNS]`, part of `make bench`): host-vmm's ACPI DIMM
# slots against QEMU q35 pc-dimm, same kernel and initramfs. See tests/bench/hotplug.py.
# shellcheck shell=sh
set -eu
. "$REPO/tests/lib/assert.sh"
need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v qemu-system-x86_64 >/dev/null ||
    fail "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86): it is the baseline"
exec python3 "$REPO/tests/bench/hotplug.py" "${1:-3}"
