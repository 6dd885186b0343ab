"""The test host's kernel: Debian's packaged one, with its modules loaded from the initramfs.

Building a test-host kernel took 12-15 minutes on a fresh 2-core machine. Debian's
`linux-image-amd64` already has everything the test host needs (KVM_AMD, virtio-9p,
virtio-pci, tun/veth/ingress/mirred for networking) as modules, so the harness downloads the
package (`apt-get download`, no install: nothing on this machine changes), unpacks it once
into the cache and puts the modules it needs, with their dependencies, into the test host's
initramfs, where init.sh loads them in order.

    python3 -m tests.harness.debian_kernel     # fetch (or find cached) and print the kernel path

The cache is ${XDG_CACHE_HOME:-~/.cache}/host-vmm/testhost-debian/<package>_<version>/. When
apt cannot be reached, the newest cached kernel is used.

The ARM64 test host (tests/testhost --arch aarch64) runs `linux-image-arm64:arm64` the same
way (cache testhost-debian-arm64/): KVM is built in there, 9p and virtio-pci are modules.
`linux-image-cloud-arm64` would be a third of the download but has no 9p at all. The arm64
test host's userland, `busybox-static:arm64`, is fetched the same way (`fetch_package`).

    python3 -m tests.harness.debian_kernel --arch arm64
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import HarnessError

META_PACKAGE = "linux-image-amd64"
# What the test host loads, in addition to their dependencies: nested KVM, the host's files
# over virtio-9p (virtio-pci transport), and what network and disk tests need.
MODULES = ("kvm-amd", "virtio_pci", "9pnet_virtio", "9p", "tun", "veth", "sch_ingress",
           "act_mirred", "loop")


class Flavor:
    """Which Debian kernel package, for which test host, and the modules it loads."""

    def __init__(self, meta, modules, cache_dir, arch_suffix=""):
        self.meta = meta
        self.modules = modules
        self.cache_dir = cache_dir
        self.arch_suffix = arch_suffix  # ":arm64" for a foreign architecture


FLAVORS = {
    "amd64": Flavor(META_PACKAGE, MODULES, "testhost-debian"),
    # KVM is built into Debian's arm64 kernel; the rest as on amd64.
    "arm64": Flavor("linux-image-arm64:arm64", ("virtio_pci", "9pnet_virtio", "9p", "tun", "veth",
                                                "sch_ingress", "act_mirred", "loop"),
                    "testhost-debian-arm64", ":arm64"),
}


def cache_base():
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "host-vmm"


def cache_root(arch="amd64"):
    return cache_base() / FLAVORS[arch].cache_dir


def log(msg):
    print(f"testhost: {msg}", file=sys.stderr, flush=True)


def _run(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise HarnessError(f"{cmd[0]}: {e}") from e


def _resolve_package(meta=META_PACKAGE):
    """(package, version) that the meta package (linux-image-amd64) currently depends on, or
    None offline."""
    out = _run(["apt-cache", "depends", meta])
    if out.returncode != 0:
        return None
    names = [line.split(":", 1)[1].strip() for line in out.stdout.splitlines()
             if line.strip().startswith("Depends:") and "linux-image-" in line]
    if not names:
        return None
    return package_version(names[0])


# apt-cache takes 2-10 s on a loaded machine; its answer is kept this long (per cache dir).
RESOLVE_MEMO_SECS = 6 * 3600


def memo_resolve(root, key, resolve):
    """resolve() (a (package, version) or None), remembered in root/.resolved-KEY for
    RESOLVE_MEMO_SECS so that every run does not ask apt-cache again; TESTHOST_APT_REFRESH=1
    asks anyway."""
    memo = root / f".resolved-{key.replace(':', '_')}"
    try:
        if (os.environ.get("TESTHOST_APT_REFRESH") != "1"
                and time.time() - memo.stat().st_mtime < RESOLVE_MEMO_SECS):
            package, version = memo.read_text().split()
            return package, version
    except (OSError, ValueError):
        pass
    resolved = resolve()
    if resolved is not None:
        root.mkdir(parents=True, exist_ok=True)
        memo.write_text(" ".join(resolved) + "\n")
    return resolved


def package_version(package):
    """(package, candidate version) from apt-cache policy, or None."""
    out = _run(["apt-cache", "policy", package])
    version = None
    for line in out.stdout.splitlines():
        if line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
    if not version or version == "(none)":
        return None
    return package, version


class Kernel:
    """An unpacked kernel package: the bzImage and the modules tree."""

    def __init__(self, root, modules=MODULES):
        self.root = root
        self.modules = modules
        images = sorted(root.glob("boot/vmlinuz-*"))
        if not images:
            raise HarnessError(f"{root}: no boot/vmlinuz-* in the unpacked kernel package")
        self.image = images[-1]
        self.release = self.image.name.removeprefix("vmlinuz-")
        self.modules_dir = root / "lib" / "modules" / self.release

    def module_index(self):
        """Module name (with '_' for '-') -> path of its .ko."""
        index = {}
        for path in self.modules_dir.rglob("*.ko"):
            index[path.name[:-3].replace("-", "_")] = path
        return index

    def load_order(self, wanted=None):
        """The .ko files to load for `wanted` (default: the flavor's list), dependencies first."""
        wanted = self.modules if wanted is None else wanted
        index = self.module_index()
        order, seen = [], set()

        def visit(name, chain):
            key = name.replace("-", "_")
            if key in seen:
                return
            if key in chain:
                raise HarnessError(f"module dependency cycle: {' -> '.join(chain + [key])}")
            path = index.get(key)
            if path is None:
                raise HarnessError(f"{self.release} has no module {name} "
                                   f"(built in, or not in this kernel?)")
            for dep in modinfo_depends(path.read_bytes()):
                visit(dep, chain + [key])
            seen.add(key)
            order.append(path)

        for name in wanted:
            visit(name, [])
        return order


def modinfo_depends(elf):
    """The `depends=` list from a module's .modinfo section (64-bit little-endian ELF)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise HarnessError("not a 64-bit little-endian ELF module")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i):
        base = shoff + i * shentsize
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", elf, base)
        return name, offset, size

    _, str_off, str_size = section(shstrndx)
    names = elf[str_off:str_off + str_size]
    for i in range(shnum):
        name_off, offset, size = section(i)
        name = names[name_off:names.index(b"\0", name_off)]
        if name == b".modinfo":
            for field in elf[offset:offset + size].split(b"\0"):
                if field.startswith(b"depends="):
                    value = field[len(b"depends="):].decode()
                    return [d for d in value.split(",") if d]
            return []
    return []


def fetch_package(package, version, out, keep):
    """Download package=version with `apt-get download` (no install), unpack it and move what
    keep(unpacked_root, keep_root) selects to `out` (replaced atomically; .unpacked marks it
    complete)."""
    root = out.parent
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        got = _run(["apt-get", "download", f"{package}={version}"], cwd=tmp)
        debs = list(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or not debs:
            hint = ""
            if package.endswith(":arm64"):
                hint = (" (apt needs the arm64 architecture: dpkg --add-architecture arm64 && "
                        "apt-get update; .ci/install-deps does it)")
            raise HarnessError(f"apt-get download {package}={version} failed{hint}: "
                               f"{(got.stderr or got.stdout).strip()[-400:]}")
        unpacked = Path(tmp) / "root"
        x = _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
        if x.returncode != 0:
            raise HarnessError(f"dpkg-deb -x {debs[0].name}: {x.stderr.strip()}")
        kept = Path(tmp) / "keep"
        kept.mkdir()
        keep(unpacked, kept)
        (kept / ".unpacked").write_text(f"{package} {version}\n")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(kept, out)
    return out


def _keep_kernel(unpacked, keep):
    # Only what the test host uses: the image and the modules (not firmware or docs).
    (keep / "boot").mkdir(parents=True)
    for image in unpacked.glob("boot/vmlinuz-*"):
        shutil.copy2(image, keep / "boot" / image.name)
    shutil.move(str(unpacked / "lib"), str(keep / "lib"))


def _dir_name(package, version):
    return f"{package.split(':')[0]}_{version}".replace(":", "%")


def ensure(arch="amd64"):
    """The unpacked Debian kernel for the test host, downloading it when needed."""
    flavor = FLAVORS[arch]
    root = cache_root(arch)
    resolved = memo_resolve(root, flavor.meta, lambda: _resolve_package(flavor.meta))
    if resolved is None:
        cached = sorted(p for p in root.glob("*_*") if (p / ".unpacked").exists()) if root.exists() else []
        if not cached:
            raise HarnessError(f"cannot resolve {flavor.meta} with apt-cache and no kernel is "
                               f"cached in {root}: the test host needs Debian's kernel package"
                               + (" (for arm64: dpkg --add-architecture arm64 && apt-get update)"
                                  if flavor.arch_suffix else ""))
        log(f"apt-cache cannot resolve {flavor.meta}; using the cached {cached[-1].name}")
        return Kernel(cached[-1], flavor.modules)
    package, version = resolved
    out = root / _dir_name(package, version)
    if (out / ".unpacked").exists():
        return Kernel(out, flavor.modules)
    size = "about 60 MB" if flavor.arch_suffix else "about 70 MB"
    log(f"fetching {package} {version} (Debian's kernel for the test host, {size})")
    fetch_package(package, version, out, _keep_kernel)
    for old in root.glob("*_*"):
        if old != out and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return Kernel(out, flavor.modules)


def main():
    arch = sys.argv[2] if sys.argv[1:2] == ["--arch"] and len(sys.argv) > 2 else "amd64"
    if arch not in FLAVORS:
        raise HarnessError(f"--arch {arch}: not one of {', '.join(FLAVORS)}")
    kernel = ensure(arch)
    for path in kernel.load_order():
        log(f"module {path.relative_to(kernel.modules_dir)}")
    print(kernel.image)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
