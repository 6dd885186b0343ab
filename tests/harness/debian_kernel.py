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
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import HarnessError

META_PACKAGE = "linux-image-amd64"
# What the test host loads, in addition to their dependencies: nested KVM, the host's files
# over virtio-9p (virtio-pci transport), and what network and disk tests need.
MODULES = ("kvm-amd", "virtio_pci", "9pnet_virtio", "9p", "tun", "veth", "sch_ingress",
           "act_mirred", "loop")


def cache_root():
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "host-vmm" / "testhost-debian"


def log(msg):
    print(f"testhost: {msg}", file=sys.stderr, flush=True)


def _run(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise HarnessError(f"{cmd[0]}: {e}") from e


def _resolve_package():
    """(package, version) that linux-image-amd64 currently depends on, or None offline."""
    out = _run(["apt-cache", "depends", META_PACKAGE])
    if out.returncode != 0:
        return None
    names = [line.split(":", 1)[1].strip() for line in out.stdout.splitlines()
             if line.strip().startswith("Depends:") and "linux-image-" in line]
    if not names:
        return None
    package = names[0]
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

    def __init__(self, root):
        self.root = root
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

    def load_order(self, wanted=MODULES):
        """The .ko files to load for `wanted`, dependencies first."""
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


def ensure():
    """The unpacked Debian kernel for the test host, downloading it when needed."""
    root = cache_root()
    resolved = _resolve_package()
    if resolved is None:
        cached = sorted(p for p in root.glob("*_*") if (p / ".unpacked").exists()) if root.exists() else []
        if not cached:
            raise HarnessError(f"cannot resolve {META_PACKAGE} with apt-cache and no kernel is "
                               f"cached in {root}: the test host needs Debian's kernel package")
        log(f"apt-cache cannot resolve {META_PACKAGE}; using the cached {cached[-1].name}")
        return Kernel(cached[-1])
    package, version = resolved
    out = root / f"{package}_{version}"
    if (out / ".unpacked").exists():
        return Kernel(out)
    root.mkdir(parents=True, exist_ok=True)
    log(f"fetching {package} {version} (Debian's kernel for the test host, about 70 MB)")
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        got = _run(["apt-get", "download", f"{package}={version}"], cwd=tmp)
        debs = list(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or not debs:
            raise HarnessError(f"apt-get download {package}={version} failed: "
                               f"{(got.stderr or got.stdout).strip()[-400:]}")
        unpacked = Path(tmp) / "root"
        x = _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)])
        if x.returncode != 0:
            raise HarnessError(f"dpkg-deb -x {debs[0].name}: {x.stderr.strip()}")
        # Only what the test host uses: the image and the modules (not firmware or docs).
        keep = Path(tmp) / "keep"
        (keep / "boot").mkdir(parents=True)
        for image in unpacked.glob("boot/vmlinuz-*"):
            shutil.copy2(image, keep / "boot" / image.name)
        shutil.move(str(unpacked / "lib"), str(keep / "lib"))
        (keep / ".unpacked").write_text(f"{package} {version}\n")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(keep, out)
    for old in root.glob("*_*"):
        if old != out and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return Kernel(out)


def main():
    kernel = ensure()
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
