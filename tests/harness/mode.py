"""Where a script runs: directly on this machine, or inside the nested-KVM test host."""

import os
from pathlib import Path

from .errors import HarnessError

DIRECT = "direct"
NESTED = "nested"


def _cpu_flags(cpuinfo):
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def decide(environ=None, root="/"):
    """Return (mode, reason). TESTHOST_MODE=direct|nested forces the mode."""
    environ = os.environ if environ is None else environ
    forced = environ.get("TESTHOST_MODE", "")
    if forced in (DIRECT, NESTED):
        return forced, f"forced by TESTHOST_MODE={forced}"
    if forced:
        raise HarnessError(f"TESTHOST_MODE={forced!r} is not one of: direct, nested")

    r = Path(root)
    flags = _cpu_flags(_read(r / "proc/cpuinfo"))
    hw = sorted(flags & {"vmx", "svm"})
    modules = _read(r / "proc/modules").split()
    if (r / "sys/module/kvm_pvm").exists() or "kvm_pvm" in modules:
        return NESTED, "kvm_pvm is loaded: /dev/kvm is KVM-PVM, which cannot boot a stock guest kernel"
    if not hw:
        return NESTED, "the CPU has no vmx/svm flag, so no hardware KVM"
    if not (r / "dev/kvm").exists():
        return NESTED, f"the CPU has {hw[0]} but there is no /dev/kvm (kvm_intel/kvm_amd not loaded?)"
    return DIRECT, f"hardware KVM: the CPU has {hw[0]}, /dev/kvm exists and kvm_pvm is not loaded"
