"""Run one script in the chosen mode and turn what happened into an exit status.

Nested mode boots QEMU (TCG, an AMD CPU with SVM and nested paging) on the test host
kernel and initramfs; the serial console is QEMU's stdout. The test host's /init
prints "@@testhost ..." marker lines; everything between script-start and script-end
is the script's output and goes to stdout, the rest (kernel, QEMU) to stderr.
Direct mode runs the same launch.sh on this machine with the same environment.
"""

import os
import re
import shlex
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import time

from . import aarch64, artifacts, initramfs, stream
from .artifacts import log
from .errors import EXIT_HARNESS, EXIT_TIMEOUT, HarnessError

MARKER = re.compile(r"@@testhost (\S+)(?: (.*))?$")
TAIL = 50
# Seconds without a line from the test host (it prints a heartbeat every 30 s while the
# script runs) after which it is frozen: its state is kept and it is killed.
STALL = float(os.environ.get("TESTHOST_STALL", "300"))
# An AMD CPU with SVM and nested paging, without the ERMS that makes TCG's memset slow.
CPU = "qemu64,+svm,+npt"


class Console:
    """Routes console lines and records the test host's markers.

    The script's output goes to stdout. In nested mode, the test host's own console
    lines (firmware, kernel, poweroff) only go to console.log; the tail printed on a
    failure shows them. QEMU's stderr goes to stderr.
    """

    def __init__(self, t0, nested):
        self.t0 = t0
        self.in_script = not nested
        self.times = {}
        self.uptimes = {}
        self.errors = []

    def line(self, source, line):
        if source == stream.STDERR:
            print(line if self.in_script else f"qemu: {line}", file=sys.stderr, flush=True)
            return
        m = MARKER.search(line)
        if m:
            self._marker(m.group(1), m.group(2) or "")
        elif self.in_script:
            print(line, flush=True)

    def _marker(self, name, rest):
        now = time.monotonic() - self.t0
        self.times[name] = now
        up = re.search(r"uptime=([\d.]+)", rest)
        if up:
            self.uptimes[name] = float(up.group(1))
        if name == "init":
            log(f"test host up: init running {now:.2f} s after QEMU launch "
                f"(kernel uptime {self.uptimes.get(name, 0):.2f} s)")
        elif name == "script-start":
            self.in_script = True
        elif name == "script-end":
            self.in_script = False
        elif name == "error":
            self.errors.append(rest)
            log(f"error in the test host: {rest}")


def find_qemu():
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        raise HarnessError("qemu-system-x86_64 not found (apt-get install qemu-system-x86): "
                           "the nested-KVM test host needs it")
    return qemu


def qemu_command(qemu, kernel, initrd, run, mem, smp):
    # A periodic tick (nohz=off highres=off): the test host once froze with no timer armed
    # (ARCHITECTURE.md, "The hang of issue 10"); a periodic LAPIC timer is never left unarmed.
    append = "console=ttyS0 quiet panic=-1 nohz=off highres=off"
    return [
        qemu, "-accel", "tcg", "-cpu", os.environ.get("TESTHOST_CPU", CPU), "-smp", str(smp), "-m", f"{mem}M",
        "-M", "pc", "-nographic", "-vga", "none", "-nic", "none", "-no-reboot",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", append,
        "-fsdev", "local,path=/,security_model=none,readonly=on,multidevs=remap,id=hostroot",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-fsdev", f"local,path={run},security_model=none,id=results",
        "-device", "virtio-9p-pci,fsdev=results,mount_tag=results",
    ]


def prepare(mode, script, args, mem, smp, arch="x86_64"):
    """Gather the inputs and write the run directory.

    Returns (run, command): the script's command line in direct mode, QEMU's in nested.
    """
    if arch == aarch64.ARCH:
        return prepare_aarch64(mode, script, args, mem, smp)
    qemu = find_qemu() if mode == "nested" else None
    guest_kernel = artifacts.kernel("guest", "GUEST_KERNEL")
    testhost_kernel, modules = artifacts.testhost_kernel() if mode == "nested" else (None, [])
    run = artifacts.new_run_dir()
    log(f"logs: {run}")
    vmm = artifacts.host_vmm()
    initrd = artifacts.guest_initrd()
    busybox = initramfs.find_busybox()
    env = artifacts.script_env(run, mode, guest_kernel, initrd, vmm)
    launch = artifacts.write_launch(run, script, args, mode, env, busybox)
    if mode == "direct":
        return run, [str(busybox), "env", "-i", str(busybox), "sh", str(launch)]
    cpio, built = initramfs.build(artifacts.WORK, modules)
    log(f"test host initramfs: {cpio}{' (rebuilt)' if built else ''}")
    # Paths under /tmp stay visible in the test host only if named here (its /tmp is a tmpfs).
    keep = sorted({str(p) for p in (artifacts.REPO, Path(guest_kernel).parent, Path(initrd).parent,
                                    Path(vmm).parent) if str(p).startswith("/tmp/")})
    control = {"RUN_DIR": run, "BUSYBOX": busybox, "KEEP": " ".join(keep)}
    (run / "control").write_text("".join(f"{k}={shlex.quote(str(v))}\n" for k, v in control.items()))
    return run, qemu_command(qemu, testhost_kernel, cpio, run, mem, smp)


def prepare_aarch64(mode, script, args, mem, smp):
    """prepare() for the ARM64 test host (aarch64.py): the arm64 guest artifacts, the
    UEFI ROM, and in nested mode the view the test host builds of this machine's tree."""
    nested = mode == "nested"
    qemu = aarch64.find_qemu() if nested else None
    guest_kernel = aarch64.guest_kernel()
    testhost_kernel, modules = aarch64.testhost_kernel() if nested else (None, [])
    bb = aarch64.busybox() if nested else initramfs.find_busybox()
    run = artifacts.new_run_dir()
    log(f"logs: {run}")
    vmm = artifacts.host_vmm(aarch64.HOST_VMM, "make build-aarch64")
    initrd = artifacts.guest_initrd(aarch64.INITRD, "make rootfs-aarch64")
    fw = aarch64.firmware()
    aarch64.build_tools()
    env = artifacts.script_env(run, mode, guest_kernel, initrd, vmm,
                               {"GUEST_FIRMWARE": fw, "TESTHOST_ARCH": aarch64.ARCH})
    if "SCENARIOS_DIR" not in os.environ:
        env["SCENARIOS_DIR"] = artifacts.REPO / "tests" / "scenarios-aarch64"
    if not nested:
        launch = artifacts.write_launch(run, script, args, mode, env, bb)
        return run, [str(bb), "env", "-i", str(bb), "sh", str(launch)]
    launch = artifacts.write_launch(run, script, args, mode, env, Path("/bin/busybox"),
                                    aarch64.not_shared())
    cpio, built = initramfs.build(aarch64.WORK, modules, busybox=bb, init_script=aarch64.INIT)
    log(f"test host initramfs: {cpio}{' (rebuilt)' if built else ''}")
    keep = sorted({str(p) for p in (artifacts.REPO, Path(guest_kernel).parent, Path(initrd).parent,
                                    Path(vmm).parent, Path(fw).parent) if str(p).startswith("/tmp/")})
    binds = aarch64.overlays(run, guest_kernel, initrd)
    control = {"RUN_DIR": run, "SHARE": " ".join(aarch64.share_dirs()), "KEEP": " ".join(keep),
               "BINDS": " ".join(binds)}
    (run / "control").write_text("".join(f"{k}={shlex.quote(str(v))}\n" for k, v in control.items()))
    return run, aarch64.qemu_command(qemu, testhost_kernel, cpio, run, mem, smp)


def monitor_socket(run):
    """The QEMU monitor's Unix socket in the run directory (None if the path is too long)."""
    path = run / "monitor.sock"
    return path if len(str(path)) < 100 else None


def dump_frozen(run, monitor):
    """Ask a silent test host's QEMU what it is doing (run/frozen.txt)."""
    out = run / "frozen.txt"
    if monitor is None or not monitor.exists():
        out.write_text("no QEMU monitor socket\n")
        return
    replies = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(monitor))
            sock.sendall(b"info status\ninfo cpus\ninfo registers -a\ninfo lapic\ninfo irq\n")
            end = time.monotonic() + 5
            while time.monotonic() < end:
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                replies.append(chunk)
    except OSError as e:
        replies.append(f"\nmonitor: {e}\n".encode())
    # The monitor echoes each keystroke with terminal escapes: keep the text only.
    text = b"".join(replies).decode("utf-8", "replace")
    out.write_text(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text))


def run_script(mode, script, args, timeout, mem, smp, arch="x86_64"):
    run, cmd = prepare(mode, script, args, mem, smp, arch)
    nested = mode == "nested"
    monitor = monitor_socket(run) if nested else None
    if monitor is not None:
        cmd = cmd + ["-monitor", f"unix:{monitor},server=on,wait=off"]
    t0 = time.monotonic()
    console = Console(t0, nested)
    with open(run / "console.log", "w") as log_file:
        log_file.write("$ " + " ".join(cmd) + "\n")
        outcome = stream.run(cmd, timeout, console.line, log_file,
                             stall=STALL if nested else None,
                             on_stall=lambda: dump_frozen(run, monitor))
    total = time.monotonic() - t0
    return finish(run, outcome, console, nested, timeout, total)


def _tail(outcome, run):
    log(f"last {TAIL} lines of output (full log: {run / 'console.log'}):")
    for line in outcome.tail:
        print(f"  | {line}", file=sys.stderr)
    sys.stderr.flush()


def finish(run, outcome, console, nested, timeout, total):
    times = console.times
    if "script-start" in times and "script-end" in times:
        log(f"script ran {times['script-end'] - times['script-start']:.2f} s")
    log(f"total {total:.2f} s")
    if outcome.timed_out:
        _tail(outcome, run)
        log(f"timeout: the script did not finish within {timeout} s; killed")
        return EXIT_TIMEOUT
    if outcome.stalled is not None:
        _tail(outcome, run)
        log(f"the test host froze: not a line (not even its 30 s heartbeat) for "
            f"{outcome.stalled:.0f} s; QEMU's state is in {run / 'frozen.txt'}; killed")
        return EXIT_HARNESS
    if not nested:
        log(f"script exit status {outcome.returncode}")
        return outcome.returncode
    status_file = run / "status"
    try:
        status = int(status_file.read_text().strip())
    except (OSError, ValueError):
        _tail(outcome, run)
        if console.errors:
            log(f"the test host could not run the script: {'; '.join(console.errors)}")
        else:
            log(f"test host died before the script finished (QEMU exit status {outcome.returncode})")
        return EXIT_HARNESS
    log(f"script exit status {status}")
    return status


def shell(mem, smp, arch="x86_64"):
    """Boot the test host with an interactive shell in the chroot (for debugging)."""
    _, cmd = prepare("nested", artifacts.REPO / "tests/harness/shell.sh", [], mem, smp, arch)
    log("interactive test host; `exit` powers it off (Ctrl-A x kills QEMU)")
    return subprocess.run(cmd, check=False).returncode
