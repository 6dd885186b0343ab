#!/usr/bin/env bash
# Build the guest kernel (or the test-host kernel) from Debian's linux-source-6.12.
#
#   guest-kernel-config/build.sh [guest|testhost|guest-arm64]
#
# Flavors: guest (x86_64: fragments/*.conf + fragments/x86_64/), testhost (the x86_64 guest's
# fragments + testhost/), guest-arm64 (fragments/*.conf + fragments/arm64/, cross-built with
# gcc-aarch64-linux-gnu: ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-).
#
# The result is cached under ${XDG_CACHE_HOME:-~/.cache}/host-vmm/kernel/<flavor>-<key>/,
# where <key> hashes the flavor, the fragments, the recipe version and the source package
# version, so a given config is built once. The script prints the directory holding the
# kernel (x86_64: bzImage; arm64: Image, the EFI-stub PE image the UEFI ROM starts),
# vmlinux and config on its last stdout line; progress goes to stderr.
set -euo pipefail

flavor=${1:-guest}
here=$(cd "$(dirname "$0")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/host-vmm
jobs=${JOBS:-$(nproc)}
log() { printf '[kernel %s] %s\n' "$flavor" "$*" >&2; }

case "$flavor" in
  guest) fragments=("$here"/fragments/*.conf "$here"/fragments/x86_64/*.conf) ;;
  testhost) fragments=("$here"/fragments/*.conf "$here"/fragments/x86_64/*.conf "$here"/testhost/*.conf) ;;
  guest-arm64) fragments=("$here"/fragments/*.conf "$here"/fragments/arm64/*.conf) ;;
  *) echo "error: unknown flavor '$flavor' (allowed: guest, testhost, guest-arm64)" >&2; exit 2 ;;
esac
case "$flavor" in
  *-arm64)
    karch=arm64 image=Image cross=aarch64-linux-gnu- cross_pkg=gcc-aarch64-linux-gnu ;;
  *)
    karch=x86 image=bzImage cross="" cross_pkg="" ;;
esac

ensure_packages() {
  local missing=()
  for p in linux-source-6.12 flex bison libelf-dev bc cpio ccache gcc make xz-utils libssl-dev $cross_pkg; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

ensure_packages
src_version=$(dpkg-query -W -f '${Version}' linux-source-6.12)
# Bump when the way the kernel is configured or built changes (not for cosmetic edits).
recipe=1
key=$( { cat "${fragments[@]}"; echo "$src_version recipe=$recipe flavor=$flavor"; } | sha256sum | cut -c1-16)
out="$cache/kernel/$flavor-$key"

cache_hit() {
  if [ -f "$out/$image" ] && [ -f "$out/vmlinux" ]; then
    log "cache hit: $out"
    echo "$out"
    exit 0
  fi
}
cache_hit

# One build per flavor at a time: a second caller waits, then finds the cache.
mkdir -p "$cache"
exec 9>"$cache/build-$flavor.lock"
if ! flock -n 9; then
  log "another build of this flavor is running; waiting for it"
  flock 9
fi
cache_hit

# Unpack the source once per package version.
srcdir="$cache/src/linux-source-6.12-$src_version"
if [ ! -f "$srcdir/.unpacked" ]; then
  log "unpacking /usr/src/linux-source-6.12.tar.xz (about a minute)"
  rm -rf "$srcdir" && mkdir -p "$srcdir"
  tar -xf /usr/src/linux-source-6.12.tar.xz -C "$srcdir" --strip-components=1
  touch "$srcdir/.unpacked"
fi

# Out-of-tree build directory per flavor, kept for incremental rebuilds.
build="$cache/build/$flavor"
mkdir -p "$build"
export CCACHE_DIR="$cache/ccache"
export CCACHE_MAXSIZE=2G
kmake() { make -C "$srcdir" O="$build" ARCH="$karch" CROSS_COMPILE="$cross" CC="ccache ${cross}gcc" HOSTCC="ccache gcc" "$@"; }

log "configuring: tinyconfig + ${#fragments[@]} fragments"
rm -f "$build/.config"
kmake tinyconfig >/dev/null
(cd "$build" && "$srcdir/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "${fragments[@]}" >/dev/null)
kmake olddefconfig >/dev/null

# Kconfig silently drops options whose dependencies are missing: check every request.
dropped=()
for f in "${fragments[@]}"; do
  name=${f##*/}
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=y)
        grep -qx "$line" "$build/.config" || dropped+=("${line%=y}=y wanted, not set ($name)") ;;
      "# CONFIG_"*" is not set")
        # Off means neither =y nor =m (a default-on option silently kept would be a hole).
        opt=${line#\# }; opt=${opt% is not set}
        if grep -qE "^$opt=(y|m)$" "$build/.config"; then dropped+=("$opt off wanted, still on ($name)"); fi ;;
    esac
  done < "$f"
done
if [ ${#dropped[@]} -gt 0 ]; then
  echo "error: Kconfig did not honour these requested options (missing dependencies, or a default that select forces):" >&2
  printf '  %s\n' "${dropped[@]}" >&2
  exit 1
fi
log "config verified: every requested =y is set and every requested off is off"

log "building $image with $jobs jobs (first build about 6 minutes for x86_64, 15-25 for arm64; ccache makes rebuilds fast)"
start=$(date +%s)
kmake -j"$jobs" "$image" >"$build/build.log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 15
  n=$(grep -c '^  CC' "$build/build.log" || true)
  kill -0 "$pid" 2>/dev/null && log "still building: $n files compiled, $(( $(date +%s) - start ))s"
done
if ! wait "$pid"; then
  tail -n 40 "$build/build.log" >&2
  echo "error: kernel build failed; full log: $build/build.log" >&2
  exit 1
fi
log "built in $(( $(date +%s) - start ))s"

tmp="$out.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
cp "$build/arch/$karch/boot/$image" "$tmp/$image"
cp "$build/vmlinux" "$tmp/vmlinux"
cp "$build/.config" "$tmp/config"
rm -rf "$out" && mv "$tmp" "$out"
log "$image $(du -h "$out/$image" | cut -f1), vmlinux $(du -h "$out/vmlinux" | cut -f1): $out"
echo "$out"
