#!/usr/bin/env python3
"""Memory hot-add benchmark, run inside the test host (tests/bench/hotplug-in-testhost.sh).

Subjects, both booting the same guest kernel and initramfs (the agent onlines new blocks
from uevents) with 512 MiB and 1 vCPU, both driven over their control socket by this script:
- host-vmm: `{"op":"memory-add"}` on its control socket (ACPI DIMM slot + GED interrupt);
- qemu-q35: QMP `object-add memory-backend-ram` + `device_add pc-dimm` (QEMU's ACPI memory
  hotplug on q35).
"vmm" is until the control socket answers.

Cases: one 1 GiB add, and four 256 MiB adds in a row. For both subjects "total" is from the
first request to the console line of the agent onlining the last new block (`memory: memoryN
online`, an info line), the same clock for both; it is the figure the ratio uses.

Then host-vmm's own split, as a user sees it: on the same VM, `host-vmm memory ID --add 1G`
prints vmm_ms (until the VMM has mapped the RAM, registered the KVM slot and raised the
interrupt) and guest_ms (until OnlineCPUMem says the blocks cover the new total, all
online); cli_wall_ms is the whole command, process start and agent connection included. The guests
log at the default level (info): the nested console costs about 0.4 ms a byte, so chatter
before the last block line would delay it.

Writes RESULTS/bench/hotplug.tsv: subject, case, round, vmm_ms, total_ms, cli_vmm_ms,
cli_guest_ms, cli_wall_ms (nan for QEMU).
Fails (exit 1, saying why) when a boot or a hot-add does not complete.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BOOT_MIB = 512
MAX_MIB = 3072
SLOTS = 8
BLOCK_MIB = 128
CASES = {"1x1G": [1024], "4x256M": [256, 256, 256, 256]}
TIMEOUT = float(os.environ.get("BOOT_TIMEOUT", "120"))
ONLINE_RE = re.compile(r"memory: memory(\d+) online")


def fail(msg):
    print(f"bench hotplug: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def now_ms():
    return time.monotonic() * 1000.0


class Console:
    """Reads a VMM's console (a pipe) on a thread; keeps every line and its arrival time."""

    def __init__(self, stream, log_path):
        self.lines = []
        self.cond = threading.Condition()
        self.log = open(log_path, "w", encoding="utf-8", errors="replace")
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            t = now_ms()
            self.log.write(line + "\n")
            self.log.flush()
            with self.cond:
                self.lines.append((t, line))
                self.cond.notify_all()
        with self.cond:
            self.lines.append((now_ms(), None))
            self.cond.notify_all()

    def wait_for(self, pred, start_index, timeout, what):
        """The (index, time, line) of the first line at or after start_index matching pred."""
        deadline = time.monotonic() + timeout
        i = start_index
        with self.cond:
            while True:
                while i < len(self.lines):
                    t, line = self.lines[i]
                    if line is None:
                        fail(f"{what}: the console ended (the VMM exited)")
                    if pred(line):
                        return i, t, line
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"{what}: not seen within {timeout:.0f} s")
                self.cond.wait(left)

    def mark(self):
        with self.cond:
            return len(self.lines)


def wait_blocks(console, start, count, what):
    """Waits for `count` distinct `memoryN online` lines after index `start`; their time."""
    seen = set()
    i = start
    t = None
    while len(seen) < count:
        i, t, line = console.wait_for(lambda l: ONLINE_RE.search(l), i, TIMEOUT, what)
        seen.add(ONLINE_RE.search(line).group(1))
        i += 1
    return t


class HostVmm:
    name = "host-vmm"

    def __init__(self, out, tag):
        self.id = f"hpbench-{os.getpid()}"
        self.cfg = Path(f"/tmp/{self.id}.toml")
        self.cfg.write_text(
            "[hypervisor.host-vmm]\n"
            f'kernel = "{os.environ["GUEST_KERNEL"]}"\n'
            f'initrd = "{os.environ["GUEST_INITRD"]}"\n'
            'kernel_params = ""\n'
            f"default_memory = {BOOT_MIB}\n"
            f"default_maxmemory = {MAX_MIB}\n"
            f"memory_slots = {SLOTS}\n"
            "default_vcpus = 1\ndefault_maxvcpus = 1\n"
        )
        env = dict(os.environ, HOST_VMM_RUNTIME_DIR="/tmp/hpbench-run")
        self.env = env
        self.proc = subprocess.Popen(
            ["host-vmm", "boot", "--id", self.id, "--config", str(self.cfg)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=open(out / f"{tag}.stderr", "w"), env=env)
        self.console = Console(self.proc.stdout, out / f"{tag}.console")

    def api(self, request):
        """One request on the control socket; the reply (a dict)."""
        path = f"/tmp/hpbench-run/{self.id}/api.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply = sock.makefile("rb").readline()
        if not reply:
            fail(f"{path}: no reply to {request}")
        msg = json.loads(reply)
        if msg.get("status") != "memory":
            fail(f"{path}: {request}: {msg}")
        return msg

    def add(self, sizes):
        """Adds each size over the control socket; returns the time the VMM took."""
        t0 = now_ms()
        for mib in sizes:
            self.api({"op": "memory-add", "bytes": mib << 20})
        return now_ms() - t0

    def cli_add(self, mib):
        """`host-vmm memory ID --add`: (vmm_ms, guest_ms, wall_ms) as the command reports."""
        args = ["host-vmm", "memory", self.id, "--add", f"{mib}M"]
        t0 = now_ms()
        r = subprocess.run(args, capture_output=True, text=True, env=self.env,
                           timeout=TIMEOUT, check=False)
        wall = now_ms() - t0
        if r.returncode != 0:
            fail(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        fields = dict(l.split("=", 1) for l in r.stdout.split() if "=" in l)
        try:
            return float(fields["vmm_ms"]), float(fields["guest_ms"]), wall
        except (KeyError, ValueError):
            fail(f"{' '.join(args)}: no vmm_ms/guest_ms in its output: {r.stdout!r}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.cfg.unlink(missing_ok=True)


class Qmp:
    def __init__(self, path):
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    fail(f"QMP socket {path} did not come up")
                time.sleep(0.05)
        self.file = self.sock.makefile("rwb")
        self._reply()  # greeting
        self.cmd("qmp_capabilities")

    def _reply(self):
        while True:
            line = self.file.readline()
            if not line:
                fail("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.file.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.file.flush()
        r = self._reply()
        if "error" in r:
            fail(f"QMP {name} {args}: {r['error']}")
        return r


class QemuQ35:
    name = "qemu-q35"

    def __init__(self, out, tag):
        self.qmp_path = f"/tmp/hpbench-qmp-{os.getpid()}.sock"
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        self.proc = subprocess.Popen(
            ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host",
             "-bios", "qboot.rom", "-smp", "1",
             "-m", f"{BOOT_MIB}M,slots={SLOTS},maxmem={MAX_MIB}M",
             "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
             "-no-reboot", "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
             "-kernel", os.environ["GUEST_KERNEL"], "-initrd", os.environ["GUEST_INITRD"],
             "-append", "console=ttyS0 quiet panic=-1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=open(out / f"{tag}.stderr", "w"))
        self.console = Console(self.proc.stdout, out / f"{tag}.console")
        self.qmp = None
        self.n = 0

    def add(self, sizes):
        if self.qmp is None:
            self.qmp = Qmp(self.qmp_path)
        t0 = now_ms()
        for mib in sizes:
            self.n += 1
            self.qmp.cmd("object-add", **{"qom-type": "memory-backend-ram",
                                          "id": f"mem{self.n}", "size": mib << 20})
            self.qmp.cmd("device_add", driver="pc-dimm", id=f"dimm{self.n}",
                         memdev=f"mem{self.n}")
        return now_ms() - t0

    def cli_add(self, mib):
        return float("nan"), float("nan"), float("nan")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)


def one_round(subject_cls, case, rnd, out, tsv):
    tag = f"{subject_cls.name}-{case}-{rnd}"
    vm = subject_cls(out, tag)
    try:
        vm.console.wait_for(lambda l: "AGENT_READY" in l, 0, TIMEOUT, f"{tag}: boot")
        sizes = CASES[case]
        blocks = sum(sizes) // BLOCK_MIB
        mark = vm.console.mark()
        t0 = now_ms()
        vmm_ms = vm.add(sizes)
        t_last = wait_blocks(vm.console, mark, blocks, f"{tag}: {blocks} blocks online")
        total = t_last - t0
        cli = vm.cli_add(1024)
        print(f"{tag}: vmm {vmm_ms:.1f} ms, request -> last block online {total:.1f} ms; "
              f"CLI --add 1G: vmm {cli[0]:.1f} ms, guest {cli[1]:.1f} ms, wall {cli[2]:.1f} ms",
              flush=True)
        if rnd > 0:
            tsv.write(f"{vm.name}\t{case}\t{rnd}\t{vmm_ms:.1f}\t{total:.1f}\t"
                      f"{cli[0]:.1f}\t{cli[1]:.1f}\t{cli[2]:.1f}\n")
            tsv.flush()
    finally:
        vm.stop()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results = Path(os.environ["RESULTS"])
    out = results / "bench" / "hotplug"
    out.mkdir(parents=True, exist_ok=True)
    for tool in ("host-vmm", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            fail(f"{tool} is not on PATH")
    if not os.path.exists("/dev/kvm"):
        fail("no /dev/kvm here")
    with open(results / "bench" / "hotplug.tsv", "w") as tsv:
        tsv.write("subject\tcase\tround\tvmm_ms\ttotal_ms\tcli_vmm_ms\tcli_guest_ms\t"
                  "cli_wall_ms\n")
        # Round 0 warms up and is not recorded; the subjects alternate who goes first.
        for rnd in range(runs + 1):
            order = [HostVmm, QemuQ35] if rnd % 2 == 0 else [QemuQ35, HostVmm]
            for case in CASES:
                for cls in order:
                    one_round(cls, case, rnd, out, tsv)
    print(f"bench results: {results / 'bench' / 'hotplug.tsv'}")


if __name__ == "__main__":
    main()
