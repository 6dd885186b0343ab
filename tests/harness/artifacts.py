"""What a run needs: kernels, host-vmm, the guest initramfs, and the run directory.

The run directory (target/testhost/logs/<timestamp>-<pid>/) is kept for debugging. It
holds launch.sh (the script's environment and command, the same file in both modes),
console.log (everything the run printed), status (the script's exit status) and
results/ (the script's $RESULTS). In nested mode the test host mounts it writable at
the same path, so every path means the same thing inside and outside.
"""

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .errors import HarnessError

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "target"
WORK = TARGET / "testhost"
LOGS = WORK / "logs"
KEEP_RUNS = 30
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Variables passed from the caller's environment to the script when set.
PASSTHROUGH = ("RUST_LOG", "RUST_BACKTRACE", "SCENARIO_TIMEOUT", "SCENARIOS_DIR", "SCENARIO_SHARD",
               "SCENARIO_LIST",
               "BOOT_TIMEOUT")
# Host directories hidden inside the test host (it mounts its own there).
NOT_SHARED = ("/tmp/", "/run/", "/dev/", "/proc/", "/sys/")


def log(msg):
    print(f"testhost: {msg}", file=sys.stderr, flush=True)


def kernel(flavor, env_var, image="bzImage"):
    """Kernel image path (bzImage; Image for arm64): from $env_var if set, else from
    guest-kernel-config/build.sh FLAVOR."""
    given = os.environ.get(env_var)
    if given:
        path = Path(given).resolve()
        if not path.is_file():
            raise HarnessError(f"{env_var}={given}: no such file")
        return path
    build = REPO / "guest-kernel-config" / "build.sh"
    t0 = time.monotonic()
    out = subprocess.run([str(build), flavor], stdout=subprocess.PIPE, text=True, check=False)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise HarnessError(f"cannot get the {flavor} kernel: {build} {flavor} failed "
                           f"(exit {out.returncode}); set {env_var} to use a prebuilt {image}")
    path = Path(lines[-1]) / image
    if not path.is_file():
        raise HarnessError(f"{build} {flavor} printed {lines[-1]}, which holds no {image}")
    log(f"{flavor} kernel: {path} ({time.monotonic() - t0:.1f} s)")
    return path


def testhost_kernel():
    """(bzImage, modules in load order) for the test host.

    Debian's packaged kernel by default (debian_kernel.py: no build, its modules go into the
    test host's initramfs); $TESTHOST_KERNEL names a kernel with everything built in, and
    TESTHOST_KERNEL_SOURCE=build builds one from guest-kernel-config (flavor testhost).
    """
    if os.environ.get("TESTHOST_KERNEL") or os.environ.get("TESTHOST_KERNEL_SOURCE") == "build":
        return kernel("testhost", "TESTHOST_KERNEL"), []
    from . import debian_kernel
    t0 = time.monotonic()
    debian = debian_kernel.ensure()
    modules = debian.load_order()
    log(f"testhost kernel: {debian.image} with {len(modules)} modules ({time.monotonic() - t0:.1f} s)")
    return debian.image, modules


def host_vmm(default=TARGET / "debug" / "host-vmm", how="cargo build -p host-vmm"):
    path = Path(os.environ.get("HOST_VMM", default))
    path = path if path.is_absolute() else (REPO / path)
    if not path.is_file():
        log(f"note: {path} does not exist yet ({how}); scripts that need it will fail")
    return path


def guest_initrd(default=TARGET / "rootfs" / "initramfs.cpio", how="make rootfs"):
    path = Path(os.environ.get("GUEST_INITRD", default))
    path = path if path.is_absolute() else (REPO / path)
    if not path.is_file():
        log(f"note: {path} does not exist yet ({how}); scripts that need it will fail")
    return path


def new_run_dir():
    LOGS.mkdir(parents=True, exist_ok=True)
    runs = sorted(p for p in LOGS.iterdir() if p.is_dir())
    for old in runs[:max(0, len(runs) - KEEP_RUNS + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    run = LOGS / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    (run / "results").mkdir(parents=True)
    return run


def _interpreter(script):
    """busybox sh, unless the script's #! line names another interpreter (bash, python3)."""
    try:
        first = script.read_bytes()[:256].split(b"\n", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        first = ""
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    names = [os.path.basename(w) for w in words]
    if not words or names[-1] in ("sh", "ash") or names == ["busybox", "sh"]:
        return None
    return words


def write_launch(run, script, args, mode, env, busybox, not_shared=NOT_SHARED):
    """Write run/launch.sh: exports, cd $REPO, exec the script. Returns its path.

    A script under a path the test host does not share (not_shared) is copied into run/."""
    script = script.resolve()
    if mode == "nested" and str(script).startswith(tuple(not_shared)):
        copy = run / f"script-{script.name}"
        shutil.copy2(script, copy)
        script = copy
    interp = _interpreter(script)
    cmd = (interp or [str(busybox), "sh"]) + [str(script)] + list(args)
    lines = ["# Written by tests/testhost: the script's whole environment, then the script."]
    for name, value in env.items():
        lines.append(f"export {name}={shlex.quote(str(value))}")
    for name in PASSTHROUGH:
        if name in os.environ:
            lines.append(f"export {name}={shlex.quote(os.environ[name])}")
    lines.append('cd "$REPO" || exit 125')
    lines.append("exec " + " ".join(shlex.quote(c) for c in cmd))
    path = run / "launch.sh"
    path.write_text("\n".join(lines) + "\n")
    return path


def script_env(run, mode, guest_kernel, initrd, vmm, extra=None):
    return dict({
        "PATH": f"{vmm.parent}:{SYSTEM_PATH}",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "REPO": REPO,
        "HOST_VMM": vmm,
        "GUEST_KERNEL": guest_kernel,
        "GUEST_INITRD": initrd,
        "RESULTS": run / "results",
        "TESTHOST_MODE": mode,
    }, **(extra or {}))
