#!/usr/bin/env python3
"""The boot benchmark report: `tests/bench/report.py BENCH_DIR` (run by `make bench`).

Reads the raw samples the two halves of the benchmark left in BENCH_DIR (default
target/bench):

- native/native.tsv (+ native/smaps/): `cargo bench -p host-vmm --bench boot`, host-vmm
  and the bare KVM floor to their first vCPU entry on this machine's /dev/kvm;
- testhost/testhost.tsv (+ testhost/smaps/): tests/bench/boot-in-testhost.sh, host-vmm
  and QEMU microvm to the agent's ready line inside the nested-KVM test host;
- hotplug/hotplug.tsv: tests/bench/hotplug.py, memory hot-add (1 GiB, 4 x 256 MiB) to the
  last block online, host-vmm against QEMU q35 pc-dimm inside the test host;
- containers/containers.tsv: tests/bench/containers.py, `run -- true`, create+start in a
  running sandbox and exec, each against a boot in the same run, inside the test host.

Every figure is the median of the runs, next to the baseline's median from the same
command, and their ratio (host-vmm / baseline: below 1 means host-vmm is cheaper).
"RSS beyond guest RAM" is the process's Rss minus the Rss of its guest RAM mapping(s):
the anonymous mappings whose size is the configured RAM. Prints the table and writes
BENCH_DIR/boot.md and BENCH_DIR/boot.json. Exits 1, saying why, when a sample set is
missing or empty, or a guest RAM mapping cannot be found: never a table of zeros.
"""

import csv
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) (\S+) (\S+) (\d+)\s*(.*)$")
KIB_FIELD = re.compile(r"^(\w+):\s+(\d+) kB$")
MERGE_SLACK_KIB = 1024
NATIVE = "native: this machine's /dev/kvm (KVM-PVM)"
NESTED = "test host: nested KVM under QEMU TCG"


class ReportError(Exception):
    pass


def parse_smaps(text):
    """The mappings of a /proc/PID/smaps text: dicts with name, anon, size_kib, rss_kib."""
    maps = []
    for line in text.splitlines():
        m = MAPPING.match(line)
        if m:
            name = m.group(7).strip()
            maps.append({"name": name, "anon": m.group(6) == "0" and name == "",
                         "size_kib": 0, "rss_kib": 0})
            continue
        f = KIB_FIELD.match(line)
        if f and maps:
            if f.group(1) == "Size":
                maps[-1]["size_kib"] = int(f.group(2))
            elif f.group(1) == "Rss":
                maps[-1]["rss_kib"] = int(f.group(2))
    return maps


def rss_beyond_guest(text, guest_mib):
    """(total Rss, guest RAM Rss, the rest) in KiB, for a guest of `guest_mib` in one region.

    The guest RAM is the anonymous mapping(s) of exactly `guest_mib`; ReportError if
    there is none (the figure would silently include the guest). The kernel sometimes
    merges a small neighbouring anonymous mapping (a thread's stack) into the guest RAM's;
    such a mapping, at most MERGE_SLACK_KIB larger, counts as the guest's, its Rss capped
    at the guest's size (the neighbour's few pages may then count as guest RAM).
    """
    maps = parse_smaps(text)
    if not maps:
        raise ReportError("empty smaps")
    want = guest_mib * 1024
    guest = [m for m in maps if m["anon"] and m["size_kib"] == want]
    if not guest:
        guest = [m for m in maps
                 if m["anon"] and want < m["size_kib"] <= want + MERGE_SLACK_KIB][:1]
    if not guest:
        raise ReportError(f"no anonymous mapping of {guest_mib} MiB (the guest RAM) in smaps")
    total = sum(m["rss_kib"] for m in maps)
    guest_rss = sum(min(m["rss_kib"], want) for m in guest)
    return total, guest_rss, total - guest_rss


def read_tsv(path):
    if not path.is_file():
        raise ReportError(f"{path} is missing: that half of the benchmark did not run")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        raise ReportError(f"{path} holds no samples")
    return rows


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values), "samples": values}


def compare(bench_id, title, where, mib, unit, rows, subject, baseline, value):
    """One line of the report: `value(row)` for `subject` against `baseline` at `mib` (a
    number of MiB, matched against the rows' mem_mib, or a hot-add case name such as
    "1x1G", matched against their case)."""
    def matches(r):
        return r["case"] == mib if isinstance(mib, str) else int(r["mem_mib"]) == mib

    def values(name):
        got = [value(r) for r in rows if r["subject"] == name and matches(r)]
        if not got:
            raise ReportError(f"{bench_id}: no samples of {name} at {mib}")
        if any(v <= 0 for v in got):
            raise ReportError(f"{bench_id}: {name} at {mib} MiB has a sample <= 0: {got}")
        return got
    s, b = spread(values(subject)), spread(values(baseline))
    return {"id": bench_id, "benchmark": title, "where": where, "ram_mib": mib, "unit": unit,
            "subject": subject, "baseline": baseline, "subject_stats": s, "baseline_stats": b,
            "ratio": s["median"] / b["median"]}


def smaps_value(base, column, mib):
    """A row -> RSS beyond guest RAM in MiB, reading the row's smaps file."""
    def value(row):
        path = base / row[column]
        try:
            text = path.read_text()
        except OSError as e:
            raise ReportError(f"cannot read {path}: {e}") from e
        try:
            return rss_beyond_guest(text, mib)[2] / 1024
        except ReportError as e:
            raise ReportError(f"{path}: {e}") from e
    return value


def native_lines(bench):
    base = bench / "native"
    rows = read_tsv(base / "native.tsv")
    out = []
    for mib in (1024, 128):
        for key, title in [
            ("entry_wall", "exec → first KVM_RUN, wall"),
            ("entry_cpu", "exec → first KVM_RUN, CPU (user+sys)"),
            ("stop_wall", "exec → first entry returned, wall"),
            ("stop_cpu", "exec → first entry returned, CPU (wait4 rusage)"),
        ]:
            out.append(compare(f"native.{key}.{mib}", title, NATIVE, mib, "ms", rows,
                               "host-vmm", "kvm-floor",
                               lambda r, k=key: float(r[f"{k}_us"]) / 1000))
        out.append(compare(f"native.rss_beyond_guest.{mib}", "RSS beyond guest RAM, at first entry",
                           NATIVE, mib, "MiB", rows, "host-vmm", "kvm-floor",
                           smaps_value(base, "smaps", mib)))
    return out


def testhost_lines(bench):
    base = bench / "testhost"
    rows = read_tsv(base / "testhost.tsv")
    out = []
    for mib in (1024, 128):
        out.append(compare(f"testhost.ready.{mib}", "launch → AGENT_READY, wall", NESTED, mib,
                           "ms", rows, "host-vmm", "qemu-microvm",
                           lambda r: float(r["ready_ms"])))
        out.append(compare(f"testhost.guest_ready.{mib}",
                           "guest kernel start → AGENT_READY (guest clock)", NESTED, mib, "ms",
                           rows, "host-vmm", "qemu-microvm",
                           lambda r: float(r["since_kernel_ms"])))
        out.append(compare(f"testhost.rss_beyond_guest.{mib}",
                           "RSS beyond guest RAM, idle at the agent", NESTED, mib, "MiB", rows,
                           "host-vmm", "qemu-microvm", smaps_value(base, "smaps", mib)))
    return out


HOTPLUG_CASES = {"1x1G": "1 GiB in one add", "4x256M": "4 × 256 MiB adds"}


def hotplug_lines(bench):
    rows = read_tsv(bench / "hotplug" / "hotplug.tsv")
    out = []
    for case, label in HOTPLUG_CASES.items():
        out.append(compare(f"hotplug.total.{case}", f"hot-add {label}: request → last block "
                           "online (console)", NESTED, case, "ms", rows, "host-vmm", "qemu-q35",
                           lambda r: float(r["total_ms"])))
        out.append(compare(f"hotplug.vmm.{case}", f"hot-add {label}: VMM part (until the "
                           "request returns)", NESTED, case, "ms", rows, "host-vmm", "qemu-q35",
                           lambda r: float(r["vmm_ms"])))
    return out


CONTAINER_MEASURES = [
    ("run-true", "`host-vmm run -- true`: boot, container, teardown"),
    ("create-start", "`create` + `start` in a running sandbox"),
    ("exec", "`exec -- true` into a running container"),
]


def container_lines(bench):
    rows = read_tsv(bench / "containers" / "containers.tsv")
    return [compare(f"containers.{name}", title, NESTED, "containers", "ms", rows, name, "boot",
                    lambda r: float(r["ms"]))
            for name, title in CONTAINER_MEASURES]


def hotplug_split(bench):
    """host-vmm's own split of `host-vmm memory ID --add 1G`: medians in ms of the VMM part,
    the guest part (until OnlineCPUMem returns) and the whole command."""
    rows = read_tsv(bench / "hotplug" / "hotplug.tsv")
    mine = [r for r in rows if r["subject"] == "host-vmm"]
    if not mine:
        return None
    return {k: statistics.median(float(r[f"cli_{k}_ms"]) for r in mine)
            for k in ("vmm", "guest", "wall")}


def fmt(v):
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def markdown(lines, meta):
    out = [f"# Boot, hotplug and container benchmark ({meta['date']})", "",
           "Medians (min–max) of interleaved runs in one command; ratio = host-vmm / baseline "
           "(below 1: host-vmm is cheaper).", "",
           "| benchmark | where | RAM | host-vmm | baseline | baseline value | ratio | runs |",
           "|---|---|---|---|---|---|---|---|"]
    for ln in lines:
        s, b = ln["subject_stats"], ln["baseline_stats"]
        where = "native" if ln["where"] == NATIVE else "test host"
        ram = ln["ram_mib"] if isinstance(ln["ram_mib"], str) else f"{ln['ram_mib']} MiB"
        out.append(f"| {ln['benchmark']} ({ln['unit']}) | {where} | {ram} "
                   f"| {fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])}) | {ln['baseline']} "
                   f"| {fmt(b['median'])} ({fmt(b['min'])}–{fmt(b['max'])}) "
                   f"| **{ln['ratio']:.2f}** | {s['n']}+{b['n']} |")
    out += ["", f"- {NATIVE}; baseline kvm-floor = /dev/kvm, one VM, one memory slot of "
            "the same size, one vCPU entering a `hlt` (host-vmm/benches/boot/floor.rs).",
            f"- {NESTED}; baseline QEMU `-M microvm` with the same kernel, "
            "initramfs, RAM and 1 vCPU (tests/bench/boot-in-testhost.sh).",
            f"- {NESTED}; hot-add baseline QEMU q35 (`object-add memory-backend-ram` + "
            "`device_add pc-dimm` over QMP), both booted with 512 MiB; the guest agent onlines "
            "blocks from uevents in both (tests/bench/hotplug.py).",
            "- Containers: each command's wall time, process start included, against "
            "`host-vmm boot` to the agent and power-off in the same run "
            "(tests/bench/containers.py)."]
    split = meta.get("hotplug_split")
    if split:
        out.append(f"- `host-vmm memory ID --add 1G`, medians: VMM part {fmt(split['vmm'])} ms, "
                   f"guest part until OnlineCPUMem returns {fmt(split['guest'])} ms, whole "
                   f"command {fmt(split['wall'])} ms (process start and agent connection "
                   "included)")
    out += ["- RSS beyond guest RAM = Rss of the process minus Rss of the guest RAM mapping "
            "(/proc/PID/smaps); kernel-side KVM memory is not in either.",
            f"- host: {meta['host']}", ""]
    return "\n".join(out)


def build(bench):
    lines = (native_lines(bench) + testhost_lines(bench) + hotplug_lines(bench)
             + container_lines(bench))
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "host": f"{platform.node()} {platform.release()}, {os.cpu_count()} CPUs",
            "hotplug_split": hotplug_split(bench)}
    return lines, meta


def main(argv):
    bench = Path(argv[1] if len(argv) > 1 else "target/bench")
    try:
        lines, meta = build(bench)
    except ReportError as e:
        print(f"bench report: FAILED: {e}", file=sys.stderr)
        return 1
    md = markdown(lines, meta)
    (bench / "boot.md").write_text(md)
    (bench / "boot.json").write_text(json.dumps({"meta": meta, "results": lines}, indent=1) + "\n")
    print(md)
    print(f"written: {bench / 'boot.md'}, {bench / 'boot.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
