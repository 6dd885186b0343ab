"""Command line of tests/testhost."""

import argparse
import os
import signal
import sys
from pathlib import Path

from . import aarch64, artifacts, initramfs, mode, runner
from .artifacts import log
from .errors import EXIT_HARNESS, EXIT_INTERRUPTED, HarnessError

USAGE = """\
tests/testhost [--arch aarch64] run SCRIPT [ARGS...] [--timeout SECS] [--mem MiB] [--smp N]
tests/testhost [--arch aarch64] run-all [PATTERN...]  [--timeout SECS] [--mem MiB] [--smp N]
tests/testhost [--arch aarch64] shell [--mem MiB] [--smp N]
tests/testhost [--arch aarch64] mode | initramfs"""

DESCRIPTION = """\
Run a test script where a guest can really boot: directly on this machine if it has
hardware KVM, otherwise inside the nested-KVM test host (QEMU TCG with an SVM CPU).
The script runs with an empty environment plus PATH (host-vmm's directory first, then
the system's, busybox included), REPO, HOST_VMM, GUEST_KERNEL, GUEST_INITRD, RESULTS (a
writable directory kept under target/testhost/logs/), HOME=TMPDIR=/tmp and
TESTHOST_MODE. Its output goes to stdout, the harness's own lines to stderr; the exit
status is the script's (124: timeout, 125: the harness or the test host failed).

Environment: TESTHOST_MODE=direct|nested forces the mode; TESTHOST_CPU (QEMU's -cpu); GUEST_KERNEL
(a bzImage path) skips guest-kernel-config/build.sh; the test host runs Debian's packaged kernel
(fetched once, cached) unless TESTHOST_KERNEL names a bzImage with everything built in or
TESTHOST_KERNEL_SOURCE=build builds one from guest-kernel-config; HOST_VMM (default
target/debug/host-vmm); GUEST_INITRD (default target/rootfs/initramfs.cpio);
SCENARIO_TIMEOUT (run-all: seconds per scenario, default 600); SCENARIOS_DIR (run-all:
default tests/scenarios); RUST_LOG, RUST_BACKTRACE, BOOT_TIMEOUT are passed through.

--arch aarch64 (or TESTHOST_ARCH=aarch64): the ARM64 test host, qemu-system-aarch64 -M
virt,virtualization=on,gic-version=3 -cpu max (TCG) with Debian's arm64 kernel and busybox,
or directly on an arm64 machine with /dev/kvm. The script gets the arm64 GUEST_KERNEL (an
Image, guest-kernel-config/build.sh guest-arm64), GUEST_INITRD (target/rootfs-aarch64/),
GUEST_FIRMWARE (default /usr/share/qemu-efi-aarch64/QEMU_EFI.fd), HOST_VMM (default
target/aarch64-unknown-linux-gnu/debug/host-vmm) and only busybox's tools; run-all's
SCENARIOS_DIR defaults to tests/scenarios-aarch64. TESTHOST_KERNEL_ARM64 (an Image with
everything built in), TESTHOST_BUSYBOX_ARM64, TESTHOST_CPU_ARM64 and TESTHOST_MACHINE_ARM64
(QEMU's -cpu and -M) replace its parts."""


def _parser():
    p = argparse.ArgumentParser(prog="tests/testhost", usage=USAGE, description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["run", "run-all", "shell", "mode", "initramfs"])
    p.add_argument("args", nargs="*",
                   help="run: SCRIPT [ARGS...]; run-all: scenario name patterns")
    p.add_argument("--timeout", type=int, default=None,
                   help="seconds for the whole run (default 600; run-all 3600)")
    p.add_argument("--mem", type=int, default=4096, help="test host RAM in MiB (default 4096)")
    p.add_argument("--smp", type=int, default=1, help="test host vCPUs (default 1)")
    p.add_argument("--arch", choices=["x86_64", "aarch64"],
                   default=os.environ.get("TESTHOST_ARCH") or "x86_64",
                   help="the test host's architecture (default x86_64, or $TESTHOST_ARCH)")
    return p


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    opts = _parser().parse_intermixed_args(argv)
    # Also when started in the background (where a shell leaves SIGINT ignored).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    try:
        return _dispatch(opts)
    except HarnessError as e:
        log(f"error: {e}")
        return EXIT_HARNESS
    except KeyboardInterrupt:
        log("interrupted; QEMU and the script were killed")
        return EXIT_INTERRUPTED


def _dispatch(opts):
    arm = opts.arch == aarch64.ARCH
    if opts.command == "initramfs":
        if arm:
            path, built = initramfs.build(aarch64.WORK, aarch64.testhost_kernel()[1],
                                          busybox=aarch64.busybox(), init_script=aarch64.INIT)
        else:
            path, built = initramfs.build(artifacts.WORK, artifacts.testhost_kernel()[1])
        print(path)
        log("built" if built else "cached")
        return 0
    chosen, reason = aarch64.decide_mode() if arm else mode.decide()
    if opts.command == "mode":
        print(chosen)
        log(reason)
        return 0
    log(f"mode {chosen}: {reason}")
    if opts.command == "shell":
        if chosen != mode.NESTED:
            raise HarnessError("`shell` boots the test host; on hardware KVM just use your shell")
        return runner.shell(opts.mem, opts.smp, opts.arch)
    if opts.command == "run":
        if not opts.args:
            raise HarnessError("run needs a SCRIPT")
        script = Path(opts.args[0])
        if not script.is_file():
            raise HarnessError(f"{script}: no such script")
        timeout = opts.timeout or 600
        return runner.run_script(chosen, script, opts.args[1:], timeout, opts.mem, opts.smp,
                                 opts.arch)
    driver = artifacts.REPO / "tests" / "harness" / "run-scenarios.sh"
    timeout = opts.timeout or 3600
    return runner.run_script(chosen, driver, opts.args, timeout, opts.mem, opts.smp, opts.arch)


if __name__ == "__main__":
    sys.exit(main())
