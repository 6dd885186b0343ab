"""The ARM64 test host (tests/testhost --arch aarch64).

On this x86_64 machine the script runs inside `qemu-system-aarch64 -M
virt,virtualization=on,gic-version=3 -cpu max` (TCG), whose guest kernel (Debian's
linux-image-arm64) has real ARM64 KVM at EL2: /dev/kvm there is what an arm64 server
offers. The host's x86_64 programs cannot run there, so the test host brings its own
userland (Debian's busybox-static:arm64, fetched with `apt-get download` and cached) and
init-aarch64.sh builds a view of the host's tree instead of a chroot into it. On an arm64
machine with /dev/kvm the script runs directly, as on x86_64 with hardware KVM.

What the script gets (on top of the x86_64 contract): GUEST_KERNEL is the arm64 guest's
Image (guest-kernel-config/build.sh guest-arm64), GUEST_INITRD target/rootfs-aarch64/
initramfs.cpio (make rootfs-aarch64), GUEST_FIRMWARE Debian's UEFI ROM
(/usr/share/qemu-efi-aarch64/QEMU_EFI.fd, package qemu-efi-aarch64), HOST_VMM
target/aarch64-unknown-linux-gnu/debug/host-vmm (make build-aarch64).
"""

import os
import platform
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

from . import artifacts, debian_kernel
from .artifacts import REPO, TARGET, log
from .errors import HarnessError

ARCH = "aarch64"
WORK = artifacts.WORK / "aarch64"
BUSYBOX_PACKAGE = "busybox-static:arm64"
FIRMWARE = Path("/usr/share/qemu-efi-aarch64/QEMU_EFI.fd")
HOST_VMM = TARGET / "aarch64-unknown-linux-gnu" / "debug" / "host-vmm"
INITRD = TARGET / "rootfs-aarch64" / "initramfs.cpio"
INIT = Path(__file__).resolve().parent / "init-aarch64.sh"
# The emulated CPU: everything ARMv8/9 QEMU has, with the cheap QARMA stand-in for pointer
# authentication (the architected one costs TCG dearly on every function return).
CPU = "max,pauth-impdef=on"
MACHINE = "virt,virtualization=on,gic-version=3"
# Host top-level directories the view does not take from the host: the test host's own
# userland and kernel interfaces are there.
SYSTEM_DIRS = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "boot", "proc", "sys",
               "dev", "tmp", "run", "lost+found"}
# ...but these under /usr are data an arm64 program may need: the UEFI ROM, and the arm64
# shared libraries of Debian's multiarch libc6:arm64 (a dynamically linked host-vmm).
SHARED_USR = ("/usr/share", "/usr/lib/aarch64-linux-gnu")
EM_AARCH64 = 183


def elf_machine(path):
    """(e_machine, is static) of an ELF file, or None if it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return None
            machine, = struct.unpack_from("<H", head, 18)
            phoff, = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return None
    interp = any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(phnum))
    return machine, not interp


def native():
    """True on an arm64 machine: there the script can run directly."""
    return platform.machine() in ("aarch64", "arm64")


def decide_mode(environ=None):
    environ = os.environ if environ is None else environ
    forced = environ.get("TESTHOST_MODE", "")
    if forced in ("direct", "nested"):
        return forced, f"forced by TESTHOST_MODE={forced}"
    if forced:
        raise HarnessError(f"TESTHOST_MODE={forced!r} is not one of: direct, nested")
    if native() and Path("/dev/kvm").exists():
        return "direct", "an arm64 machine with /dev/kvm"
    if native():
        return "nested", "an arm64 machine without /dev/kvm"
    return "nested", (f"this is {platform.machine()}: ARM64 KVM comes from "
                      "qemu-system-aarch64 -M virt,virtualization=on (TCG)")


def find_qemu():
    qemu = shutil.which("qemu-system-aarch64")
    if not qemu:
        raise HarnessError("qemu-system-aarch64 not found (apt-get install qemu-system-arm; "
                           ".ci/install-deps): the ARM64 test host needs it")
    return qemu


def busybox():
    """Debian's static arm64 busybox (TESTHOST_BUSYBOX_ARM64 names another one)."""
    given = os.environ.get("TESTHOST_BUSYBOX_ARM64")
    if given:
        path = Path(given)
    else:
        root = debian_kernel.cache_base() / "testhost-arm64-busybox"
        resolved = debian_kernel.memo_resolve(
            root, BUSYBOX_PACKAGE, lambda: debian_kernel.package_version(BUSYBOX_PACKAGE))
        if resolved is None:
            cached = sorted(p for p in root.glob("*_*") if (p / ".unpacked").exists()) if root.exists() else []
            if not cached:
                raise HarnessError(
                    f"apt-cache knows no {BUSYBOX_PACKAGE} and none is cached in {root}: the ARM64 "
                    "test host needs Debian's arm64 busybox (dpkg --add-architecture arm64 && "
                    "apt-get update; .ci/install-deps does it)")
            path = cached[-1] / "busybox"
        else:
            package, version = resolved
            out = root / debian_kernel._dir_name(package, version)
            if not (out / ".unpacked").exists():
                log(f"fetching {package} {version} (the ARM64 test host's userland, 0.8 MB)")

                def keep(unpacked, kept):
                    shutil.copy2(unpacked / "bin" / "busybox", kept / "busybox")

                debian_kernel.fetch_package(package, version, out, keep)
                for old in root.glob("*_*"):
                    if old != out and old.is_dir():
                        shutil.rmtree(old, ignore_errors=True)
            path = out / "busybox"
    info = elf_machine(path)
    if info is None:
        raise HarnessError(f"{path}: not an ELF file (the ARM64 test host needs an arm64 busybox)")
    if info != (EM_AARCH64, True):
        raise HarnessError(f"{path}: not a static arm64 busybox (ELF machine {info[0]}, "
                           f"{'static' if info[1] else 'dynamic'})")
    return path


def firmware():
    path = Path(os.environ.get("GUEST_FIRMWARE", FIRMWARE))
    if not path.is_file():
        log(f"note: {path} does not exist (apt-get install qemu-efi-aarch64); scripts that "
            "need the UEFI ROM will fail")
    return path


def guest_kernel():
    return artifacts.kernel("guest-arm64", "GUEST_KERNEL", image="Image")


def testhost_kernel():
    """(Image, modules in load order): Debian's linux-image-arm64, or $TESTHOST_KERNEL_ARM64
    (an Image with 9p, virtio-pci and KVM built in)."""
    given = os.environ.get("TESTHOST_KERNEL_ARM64")
    if given:
        if not Path(given).is_file():
            raise HarnessError(f"TESTHOST_KERNEL_ARM64={given}: no such file")
        return Path(given).resolve(), []
    t0 = time.monotonic()
    debian = debian_kernel.ensure("arm64")
    modules = debian.load_order()
    log(f"testhost kernel: {debian.image} with {len(modules)} modules ({time.monotonic() - t0:.1f} s)")
    return debian.image, modules


TOOLS = WORK / "tools"
TOOL_SOURCES = {"kvm-probe": REPO / "tests" / "tools" / "kvm-probe-arm64.c"}


def build_tools():
    """Static arm64 helpers for the scenarios (target/testhost/aarch64/tools/): the arm64
    view has no compiler. Rebuilt when the source is newer; a note, not an error, when no
    aarch64 gcc is here (the scenario that needs one says so)."""
    gcc = "gcc" if native() else "aarch64-linux-gnu-gcc"
    if not shutil.which(gcc):
        log(f"note: {gcc} not found (apt-get install gcc-aarch64-linux-gnu): no {', '.join(TOOL_SOURCES)}")
        return
    TOOLS.mkdir(parents=True, exist_ok=True)
    for name, src in TOOL_SOURCES.items():
        out = TOOLS / name
        if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
            continue
        tmp = out.with_suffix(f".tmp.{os.getpid()}")
        got = subprocess.run([gcc, "-static", "-O2", "-Wall", "-Wextra", "-o", str(tmp), str(src)],
                             capture_output=True, text=True, check=False)
        if got.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise HarnessError(f"{gcc} {src.name} failed: {got.stderr.strip()[-400:]}")
        os.replace(tmp, out)


def _link(path, target):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)


def overlays(run, guest_kernel_path, initrd):
    """The BINDS for init-aarch64.sh: "SRC:DST" pairs, host paths, so that inside the test host
    $REPO/target/kernel/guest/ and $REPO/target/rootfs/ hold the arm64 kernel and initramfs and
    the repository's configuration.toml (kernel = target/kernel/guest/vmlinux, initrd =
    target/rootfs/initramfs.cpio) names them unchanged.

    target/kernel/guest/vmlinux there is the arm64 Image (what the UEFI ROM starts; an arm64
    vmlinux ELF cannot be booted through it), vmlinux.elf the ELF with symbols. The view of
    target/kernel is written into the run directory (run/view/kernel), so test hosts side by
    side do not share it.
    """
    kernel_view = run / "view" / "kernel"
    kernel_view.mkdir(parents=True)
    host_kernel = TARGET / "kernel"
    if host_kernel.is_dir():
        for entry in host_kernel.iterdir():
            _link(kernel_view / entry.name, entry.resolve())
    if (kernel_view / "guest").is_symlink():
        (kernel_view / "guest").unlink()
    guest = kernel_view / "guest"
    guest.mkdir()
    kdir = Path(guest_kernel_path).parent
    _link(guest / "Image", guest_kernel_path)
    _link(guest / "vmlinux", guest_kernel_path)
    for name, src in (("vmlinux.elf", kdir / "vmlinux"), ("config", kdir / "config")):
        if src.is_file():
            _link(guest / name, src)
    _link(kernel_view / "guest-aarch64", kdir)
    host_kernel.mkdir(parents=True, exist_ok=True)
    binds = [f"{kernel_view}:{host_kernel}"]
    rootfs = Path(initrd).parent
    host_rootfs = TARGET / "rootfs"
    if rootfs.is_dir() and rootfs.resolve() != host_rootfs.resolve():
        host_rootfs.mkdir(parents=True, exist_ok=True)
        binds.append(f"{rootfs.resolve()}:{host_rootfs}")
    return binds


def not_shared():
    """Path prefixes the view does not take from the host (a script there is copied)."""
    return artifacts.NOT_SHARED + tuple(f"/{d}/" for d in sorted(SYSTEM_DIRS) if d != "usr") + (
        "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/local/", "/usr/src/", "/usr/include/")


def share_dirs(root="/"):
    """The host directories the view binds at their own paths."""
    dirs = []
    for entry in sorted(Path(root).iterdir()):
        if entry.name in SYSTEM_DIRS or entry.is_symlink() or not entry.is_dir():
            continue
        dirs.append(str(entry))
    dirs += [d for d in SHARED_USR if Path(d).is_dir()]
    return dirs


def qemu_command(qemu, kernel, initrd, run, mem, smp):
    append = "console=ttyAMA0 quiet panic=-1"
    return [
        qemu, "-accel", "tcg", "-M", os.environ.get("TESTHOST_MACHINE_ARM64", MACHINE),
        "-cpu", os.environ.get("TESTHOST_CPU_ARM64", CPU),
        "-smp", str(smp), "-m", f"{mem}M", "-nographic", "-nic", "none", "-no-reboot",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", append,
        "-fsdev", "local,path=/,security_model=none,readonly=on,multidevs=remap,id=hostroot",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-fsdev", f"local,path={run},security_model=none,id=results",
        "-device", "virtio-9p-pci,fsdev=results,mount_tag=results",
    ]


def main(argv):
    """python3 -m tests.harness.aarch64 busybox|testhost-kernel: fetch (or find cached) and
    print the path (for rootfs/build.sh --arch aarch64 and make testhost-kernel-aarch64)."""
    what = argv[1] if len(argv) > 1 else ""
    if what == "busybox":
        print(busybox())
    elif what == "testhost-kernel":
        print(testhost_kernel()[0])
    else:
        print("usage: python3 -m tests.harness.aarch64 busybox|testhost-kernel", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
