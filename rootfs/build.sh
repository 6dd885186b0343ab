#!/usr/bin/env bash
# Build the guest initramfs: an uncompressed cpio (newc) archive whose /init is the static
# guest-agent, plus the mount-point directories it needs and a /dev/console node so the
# kernel has a console before the agent mounts devtmpfs. Also an erofs image of the same tree.
#
# Also the default container image, /images/busybox: Debian's static busybox (busybox-static,
# /bin/busybox; BUSYBOX overrides) as a minimal root tree, for containers started without a
# bundle. And /.container-root, the empty directory the engine parks a container's root on.
#
# Outputs: target/rootfs/initramfs.cpio, target/rootfs/rootfs.erofs
# Needs root (mknod for dev/console), GNU cpio, readelf, a static busybox; mkfs.erofs for the
# erofs image.
# Usage: rootfs/build.sh [--arch aarch64] [--test-hooks] [path/to/guest-agent]   (default: build it with rootfs/build-agent.sh)
#   --test-hooks: a TEST initramfs whose agent has the crash hook (AGENT_TEST_HOOKS=1), in
#   target/rootfs-test/ (only the soak's agent-death scenario uses it; never shipped).
#   --arch aarch64: the arm64 initramfs in target/rootfs-aarch64/ (target/rootfs-test-aarch64/
#   with --test-hooks): the agent cross-built for aarch64-unknown-linux-gnu with Debian's Rust
#   (rootfs/build-agent.sh --arch aarch64) and Debian's busybox-static:arm64 (fetched with
#   apt-get download and cached, as the ARM64 test host does; BUSYBOX overrides) as the image.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=x86_64
if [ "${1:-}" = --arch ]; then
  arch=${2:-}
  shift 2 || true
fi
case "$arch" in
  x86_64) suffix="" ;;
  aarch64) suffix=-aarch64 ;;
  *) echo "error: --arch $arch: not one of x86_64, aarch64" >&2; exit 2 ;;
esac
out=target/rootfs$suffix
if [ "${1:-}" = --test-hooks ]; then
  shift
  out=target/rootfs-test$suffix
  export AGENT_TEST_HOOKS=1
fi
mkdir -p "$out"
stage=$out/staging

if [ "$(id -u)" -ne 0 ]; then
  echo "error: rootfs/build.sh needs root to create the dev/console device node" >&2
  exit 1
fi
for tool in cpio readelf; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (run .ci/install-deps)" >&2; exit 1; }
done

if [ $# -ge 1 ]; then
  agent=$1
else
  agent=$(rootfs/build-agent.sh --arch "$arch" | tail -n1)
fi
[ -f "$agent" ] || { echo "error: agent binary $agent not found" >&2; exit 1; }

rm -rf "$stage"
mkdir -p "$stage"/{proc,sys,dev,run,tmp}
chmod 0755 "$stage" "$stage"/{proc,sys,dev,run}
chmod 1777 "$stage/tmp"
install -m 0755 "$agent" "$stage/init"
mknod -m 0600 "$stage/dev/console" c 5 1
mkdir -m 0755 "$stage/.container-root"

# The default container image: busybox with its applet links where --list-full puts them,
# root (and nobody) in etc/passwd and etc/group, and the usual empty directories.
# The applet list comes from running busybox --list-full; an arm64 one runs under qemu-user.
run_busybox() { "$busybox" "$@"; }
if [ "$arch" = aarch64 ]; then
  if [ -z "${BUSYBOX:-}" ]; then
    BUSYBOX=$(python3 -B -m tests.harness.aarch64 busybox) ||
      { echo "error: cannot get Debian's busybox-static:arm64 (see above)" >&2; exit 1; }
  fi
  command -v qemu-aarch64-static >/dev/null ||
    { echo "error: qemu-aarch64-static not found (Debian package qemu-user-static): it lists the arm64 busybox's applets" >&2; exit 1; }
  run_busybox() { qemu-aarch64-static "$busybox" "$@"; }
fi
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "error: $busybox not found (Debian package busybox-static)" >&2; exit 1; }
if readelf -lW "$busybox" | grep -q 'Requesting program interpreter'; then
  echo "error: $busybox is dynamically linked; the image needs a static busybox (busybox-static)" >&2
  exit 1
fi
want_machine=$([ "$arch" = aarch64 ] && echo AArch64 || echo X86-64)
readelf -hW "$busybox" | grep -q "Machine: *.*$want_machine" ||
  { echo "error: $busybox is not an $arch binary ($(readelf -hW "$busybox" | grep Machine:))" >&2; exit 1; }
image=$stage/images/busybox
mkdir -p "$image"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,run,var}
install -m 0755 "$busybox" "$image/bin/busybox"
run_busybox --list-full | while read -r applet; do
  case $applet in bin/busybox | linuxrc) continue ;; esac
  ln -s /bin/busybox "$image/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$image/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$image/etc/group"
chmod 0755 "$stage/images" "$image" "$image"/{bin,sbin,usr,usr/bin,usr/sbin,etc,dev,proc,sys,run,var}
chmod 1777 "$image/tmp"
chmod 0700 "$image/root"
chmod 0644 "$image/etc/passwd" "$image/etc/group"
echo "[rootfs] /images/busybox: $(run_busybox --list-full | wc -l) entries, busybox $(stat -c %s "$busybox") bytes" >&2
# Fixed times and owners: the same agent gives the same archive bytes.
find "$stage" -exec touch -h -d @0 {} +

# Uncompressed: under emulation decompressing costs more boot time than copying the bytes.
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort \
  | cpio --quiet -o -H newc --owner=0:0 --reproducible) > "$out/initramfs.cpio.tmp"
mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
echo "[rootfs] $out/initramfs.cpio: $(stat -c %s "$out/initramfs.cpio") bytes" >&2

if command -v mkfs.erofs >/dev/null; then
  rm -f "$out/rootfs.erofs"
  mkfs.erofs --quiet --all-root -T0 -U 00000000-0000-0000-0000-000000000001 "$out/rootfs.erofs" "$stage" >&2
  echo "[rootfs] $out/rootfs.erofs: $(stat -c %s "$out/rootfs.erofs") bytes" >&2
else
  echo "[rootfs] mkfs.erofs not found: no erofs image (Debian package erofs-utils)" >&2
fi
echo "$out/initramfs.cpio"
