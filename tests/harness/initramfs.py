"""The test host's initramfs: static busybox, its applet links, tests/harness/init.sh and the
kernel modules the test host loads (Debian's kernel, see debian_kernel.py), in load order.

Written as a newc cpio by hand (no fakeroot, no root-owned staging tree) with fixed
timestamps, so the same inputs give the same bytes. Cached in target/testhost/ under a
key hashed from the inputs; a changed init.sh, busybox or this file gives a new key.

The ARM64 test host's initramfs is built the same way from Debian's arm64 busybox and
init-aarch64.sh, in target/testhost/aarch64/; its applet links are made at boot
(`busybox --install -s`), since an arm64 busybox cannot list them here.
"""

import hashlib
import os
import stat
import subprocess
from pathlib import Path

from .errors import HarnessError

HERE = Path(__file__).resolve().parent
INIT = HERE / "init.sh"
DIRS = ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run",
        "host", "share", "root", "etc"]


class Cpio:
    """A minimal newc ("070701") archive writer."""

    def __init__(self):
        self.parts = []
        self.ino = 1

    def _add(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0]
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.parts.append(header + name_b)
        self._pad()
        self.parts.append(data)
        self._pad()

    def _pad(self):
        size = sum(len(p) for p in self.parts)
        self.parts.append(b"\0" * (-size % 4))

    def dir(self, name):
        self._add(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, perm=0o755):
        self._add(name, stat.S_IFREG | perm, data)

    def symlink(self, name, target):
        self._add(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor, perm=0o600):
        self._add(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def bytes(self):
        self._add("TRAILER!!!", 0)
        data = b"".join(self.parts)
        return data + b"\0" * (-len(data) % 512)


def find_busybox():
    for candidate in (os.environ.get("TESTHOST_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise HarnessError("no busybox found (install busybox-static: apt-get install busybox-static)")


def _is_static(path):
    try:
        out = subprocess.run(["file", "-bL", str(path)], capture_output=True, text=True,
                             check=False)
    except OSError:
        return True  # no `file`: a dynamic busybox fails loudly at boot anyway
    return out.returncode != 0 or "statically linked" in out.stdout or "static-pie" in out.stdout


def _applets(busybox):
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise HarnessError(f"{busybox} --list-full failed: {out.stderr.strip()}")
    return [line.strip().lstrip("/") for line in out.stdout.splitlines() if line.strip()]


def build(cache_dir, modules=(), busybox=None, init_script=INIT):
    """Return the path of the initramfs, building it when its inputs changed.

    `modules` is a list of .ko paths in load order: they go to /lib/modules/ and their
    archive paths to /etc/testhost-modules, which init.sh loads line by line. `busybox`
    given (the arm64 one) means a foreign busybox: no applet links in the archive.
    """
    foreign = busybox is not None
    if not foreign:
        busybox = find_busybox()
        if not _is_static(busybox):
            raise HarnessError(f"{busybox} is not statically linked (install busybox-static)")
    bb = busybox.read_bytes()
    init = Path(init_script).read_bytes()
    mods = [(f"lib/modules/{i:02d}-{Path(m).name}", Path(m).read_bytes()) for i, m in enumerate(modules)]
    digest = hashlib.sha256(bb + init + Path(__file__).read_bytes())
    for name, data in mods:
        digest.update(name.encode() + data)
    key = digest.hexdigest()[:16]
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = cache_dir / f"initramfs-{key}.cpio"
    if out.exists():
        return out, False

    cpio = Cpio()
    for d in DIRS:
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    cpio.file("bin/busybox", bb)
    cpio.file("init", init)
    if mods:
        cpio.dir("lib")
        cpio.dir("lib/modules")
        for name, data in mods:
            cpio.file(name, data, 0o644)
        cpio.file("etc/testhost-modules", "".join(f"/{n}\n" for n, _ in mods).encode(), 0o644)
    for applet in ([] if foreign else _applets(busybox)):
        if applet != "bin/busybox" and applet.split("/")[0] in ("bin", "sbin", "usr"):
            cpio.symlink(applet, "/bin/busybox")
    tmp = out.with_suffix(f".tmp.{os.getpid()}")
    try:
        tmp.write_bytes(cpio.bytes())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    for old in cache_dir.glob("initramfs-*.cpio"):
        if old != out:
            old.unlink(missing_ok=True)
    return out, True
