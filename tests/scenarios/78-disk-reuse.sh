# Disk reuse in one sandbox (issue 10, finding 4): a re-created container never mounts
# the old rootfs, and deleted containers give their disks back.
# - `create c --rootfs A` (marker A), `delete c`, `create c --rootfs B`: c reads B.
# - every hot-added disk gets a serial from the VMM no other live disk has; a hot-add
#   with a serial already in use is refused, naming it.
# - `disk --remove` refuses a disk a container still uses, naming the container.
# - `delete` removes the container's disk: `disk --list` is empty again, the guest's
#   /sys/block is back to its start, the ACPI slot reads absent, host-vmm holds no image
#   file open.
# - CYCLES (the first argument, default 100) create/delete cycles with alternating images
#   all succeed (the 7 hot slots are reused ~14 times each); every 10th container is also
#   started and reads its own image's marker.
# scenario-cost: 280 (seconds on an idle 2-core machine: tests/run-all deals by it)
# shellcheck shell=sh
# shellcheck disable=SC2016 # single-quoted commands are expanded by the container's shell
# scenario-timeout: 1200 (100 create/delete cycles take over 600 s nested on a loaded 2-core machine)
set -eu
. "$REPO/tests/lib/assert.sh"
. "$REPO/tests/lib/vmm.sh"
. "$REPO/tests/lib/pod.sh"

need_file GUEST_KERNEL
need_file GUEST_INITRD
command -v host-vmm >/dev/null || fail "host-vmm is not on PATH (cargo build -p host-vmm)"
command -v mkfs.erofs >/dev/null || fail "mkfs.erofs is not on PATH (Debian erofs-utils): --rootfs needs it"
CYCLES=${1:-100}
export HOST_VMM_RUNTIME_DIR="/tmp/host-vmm-runtime-$$"
config="$RESULTS/configuration.toml"
write_config "$config" ""

# image NAME: a busybox tree whose /etc/marker says NAME.
image() {
    root="/tmp/image-$1-$$"
    mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc"
    cp /bin/busybox "$root/bin/busybox"
    for applet in sh cat ls; do ln -s busybox "$root/bin/$applet"; done
    echo "$1" >"$root/etc/marker"
    echo "$root"
}
A=$(image A)
B=$(image B)

# disks NAME: `disk reuse --list` without its header line.
disks() { hv "$1" disk reuse --list && tail -n +2 "$RESULTS/$1.out"; }
# open_images: how many image files (*.erofs) the sandbox's host-vmm holds open.
open_images() {
    n=0
    for fd in /proc/"$POD_PID"/fd/*; do
        case $(readlink "$fd" 2>/dev/null) in *.erofs) n=$((n + 1)) ;; esac
    done
    echo "$n"
}
# blocks NAME: the guest's /sys/block entries, seen from the probe container.
blocks() { hv "$1" exec reuse probe -- ls /sys/block && out "$1" | wc -l; }

step "sandbox reuse; a probe container (default image) to look at the guest"
start_pod reuse
hv create-probe create reuse probe -- sleep 100000
hv start-probe start reuse probe
blocks0=$(blocks blocks0)
step "guest block devices at the start: $blocks0"

step "c with image A, deleted; c again with image B reads B"
hv create-cA create reuse c --rootfs "$A" -- cat /etc/marker
hv start-cA start --attach reuse c
assert_eq "c (image A)" "A" "$(out start-cA)"
disks list-cA >"$RESULTS/list-cA.txt"
cat "$RESULTS/list-cA.txt"
assert_eq "one disk, owned by c" 1 "$(grep -c ' c  *attached$' "$RESULTS/list-cA.txt")"
serial_a=$(awk '{print $2}' "$RESULTS/list-cA.txt")
assert_eq "blocks with c's disk" "$((blocks0 + 1))" "$(blocks blocks-cA)"
assert_eq "image files open with c" 1 "$(open_images)"
hv delete-cA delete reuse c
assert_eq "image files open after delete" 0 "$(open_images)"
assert_eq "no hot-added disk after delete" "" "$(disks list-after-cA)"
assert_eq "blocks after delete" "$blocks0" "$(blocks blocks-after-cA)"
hv create-cB create reuse c --rootfs "$B" -- cat /etc/marker
disks list-cB >"$RESULTS/list-cB.txt"
serial_b=$(awk '{print $2}' "$RESULTS/list-cB.txt")
[ "$serial_b" != "$serial_a" ] || fail "c's new disk reuses the old serial $serial_a"
hv start-cB start --attach reuse c
assert_eq "c re-created (image B)" "B" "$(out start-cB)"

step "disk --remove refuses c's disk while c exists, naming c"
EXPECT=1 hv remove-busy disk reuse --remove "$serial_b"
assert_grep 'container c' "$RESULTS/remove-busy.err" "refusal names the container"
hv delete-cB delete reuse c
assert_eq "no hot-added disk after delete" "" "$(disks list-after-cB)"
EXPECT=1 hv remove-gone disk reuse --remove "$serial_b"
assert_grep "$serial_b" "$RESULTS/remove-gone.err" "an unknown serial is named"

step "duplicate serials are refused; disk --remove of a disk nobody uses"
scratch="/tmp/scratch-$$.img"
dd if=/dev/zero of="$scratch" bs=1024 count=1024 2>/dev/null
hv add-x disk reuse --add "$scratch,ro,serial=scratch-x"
assert_grep '^serial=scratch-x$' "$RESULTS/add-x.out" "the serial asked for"
EXPECT=1 hv add-x-again disk reuse --add "$scratch,ro,serial=scratch-x"
assert_grep 'scratch-x.*already in use' "$RESULTS/add-x-again.err" "duplicate serial refused"
hv add-fresh disk reuse --add "$scratch,ro"
assert_grep '^serial=disk-[0-9]*$' "$RESULTS/add-fresh.out" "a fresh serial from the VMM"
fresh=$(sed -n 's/^serial=//p' "$RESULTS/add-fresh.out")
hv remove-x disk reuse --remove scratch-x
hv remove-fresh disk reuse --remove "$fresh"
assert_eq "no hot-added disk left" "" "$(disks list-after-x)"
rm -f "$scratch"

step "$CYCLES create/delete cycles, alternating images"
start=$(now_ms)
create_ms=0 start_ms=0 delete_ms=0 started=0
i=0
while [ "$i" -lt "$CYCLES" ]; do
    if [ $((i % 2)) -eq 0 ]; then img=$A want=A; else img=$B want=B; fi
    t0=$(now_ms)
    hv cyc-create create reuse "c$i" --rootfs "$img" -- cat /etc/marker
    t1=$(now_ms)
    # Every 10th cycle (and the first two) runs the container and reads its marker; the
    # others only create it (its rootfs mounted in the guest) and delete it.
    if [ $((i % 10)) -eq 0 ] || [ "$i" -lt 2 ]; then
        hv cyc-start start --attach reuse "c$i"
        assert_eq "cycle $i (image $want)" "$want" "$(out cyc-start)"
        started=$((started + 1))
    fi
    t2=$(now_ms)
    hv cyc-delete delete reuse "c$i"
    t3=$(now_ms)
    create_ms=$((create_ms + t1 - t0)) start_ms=$((start_ms + t2 - t1)) delete_ms=$((delete_ms + t3 - t2))
    i=$((i + 1))
done
ms=$(($(now_ms) - start))
attach_avg=0
[ "$started" -eq 0 ] || attach_avg=$((start_ms / started))
step "$CYCLES cycles in $ms ms ($((ms / CYCLES)) ms each: create $((create_ms / CYCLES)), delete $((delete_ms / CYCLES)); start --attach $attach_avg, $started times)"
assert_eq "no hot-added disk left" "" "$(disks list-end)"
assert_eq "guest block devices back to the start" "$blocks0" "$(blocks blocks-end)"
assert_eq "image files open at the end" 0 "$(open_images)"
hv acpi exec reuse probe -- sh -c 'cat /sys/bus/acpi/devices/LNRO0005:*/status 2>/dev/null; true'
if grep -qv '^0$' "$RESULTS/acpi.out"; then
    fail "a hot slot still reads present in ACPI (_STA): $(tr '\n' ' ' <"$RESULTS/acpi.out")"
fi
step "ACPI _STA of the hot slots ($(wc -l <"$RESULTS/acpi.out")): all 0"
hv still exec reuse probe -- echo still-here
assert_eq "the sandbox still answers" "still-here" "$(out still)"

stop_pod
rm -rf "$A" "$B"
rmdir "$HOST_VMM_RUNTIME_DIR" 2>/dev/null || true
assert_no_leftover host-vmm
step "PASS"
