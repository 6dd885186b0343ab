#!/usr/bin/env python3
"""Unit tests of tests/bench/report.py: `python3 tests/bench/test_report.py` (make bench runs them)."""
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
sys.dont_write_bytecode = True

import report  # noqa: E402

SMAPS = """\
55d0c0a00000-55d0c0b00000 r-xp 00001000 08:01 1234                       /usr/bin/host-vmm
Size:               1024 kB
Rss:                 800 kB
Pss:                 800 kB
7f0000000000-7f0040000000 rw-p 00000000 00:00 0 
Size:            1048576 kB
Rss:               49152 kB
7f0040000000-7f0040200000 rw-p 00000000 00:00 0 
Size:               2048 kB
Rss:                 300 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  20 kB
"""


def tsv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))


class ReportTest(unittest.TestCase):
    def test_parse_smaps_marks_only_unnamed_inode0_mappings_anonymous(self):
        maps = report.parse_smaps(SMAPS)
        self.assertEqual([m["anon"] for m in maps], [False, True, True, False])
        self.assertEqual(maps[1]["size_kib"], 1048576)
        self.assertEqual(maps[3]["name"], "[stack]")

    def test_rss_beyond_guest_subtracts_the_guest_sized_anonymous_mapping(self):
        self.assertEqual(report.rss_beyond_guest(SMAPS, 1024), (50272, 49152, 1120))

    def test_rss_beyond_guest_takes_a_guest_mapping_merged_with_a_neighbour(self):
        merged = SMAPS.replace("7f0000000000-7f0040000000", "7f0000000000-7f0040021000").replace(
            "Size:            1048576 kB", "Size:            1048708 kB")
        self.assertEqual(report.rss_beyond_guest(merged, 1024), (50272, 49152, 1120))

    def test_rss_beyond_guest_without_a_guest_mapping_fails(self):
        with self.assertRaises(report.ReportError):
            report.rss_beyond_guest(SMAPS, 128)
        with self.assertRaises(report.ReportError):
            report.rss_beyond_guest("", 1024)

    def test_compare_gives_medians_and_the_ratio(self):
        rows = [{"subject": s, "mem_mib": "128", "v": v}
                for s, v in [("a", 3), ("a", 1), ("a", 2), ("b", 4), ("b", 4)]]
        ln = report.compare("x", "t", "w", 128, "ms", rows, "a", "b", lambda r: float(r["v"]))
        self.assertEqual(ln["subject_stats"]["median"], 2)
        self.assertEqual(ln["baseline_stats"]["n"], 2)
        self.assertEqual(ln["ratio"], 0.5)

    def test_compare_refuses_missing_or_zero_samples(self):
        rows = [{"subject": "a", "mem_mib": "128", "v": "1"}, {"subject": "b", "mem_mib": "128", "v": "0"}]
        with self.assertRaises(report.ReportError):
            report.compare("x", "t", "w", 1024, "ms", rows, "a", "b", lambda r: float(r["v"]))
        with self.assertRaises(report.ReportError):
            report.compare("x", "t", "w", 128, "ms", rows, "a", "b", lambda r: float(r["v"]))

    def test_build_fails_when_a_half_did_not_run(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(report.ReportError):
                report.build(Path(d))

    def test_build_reads_both_halves(self):
        with tempfile.TemporaryDirectory() as d:
            bench = Path(d)
            native, rows = bench / "native", []
            for mib in (1024, 128):
                for subject in ("host-vmm", "kvm-floor"):
                    name = f"smaps/{subject}-{mib}.smaps"
                    (native / "smaps").mkdir(parents=True, exist_ok=True)
                    (native / name).write_text(SMAPS.replace("1048576 kB", f"{mib * 1024} kB"))
                    rows.append([subject, mib, 1, 5000, 4000, 6000, 4500, name])
            tsv(native / "native.tsv", ["subject", "mem_mib", "round", "entry_wall_us", "entry_cpu_us",
                                        "stop_wall_us", "stop_cpu_us", "smaps"], rows)
            th, rows = bench / "testhost", []
            for mib in (1024, 128):
                for subject in ("host-vmm", "qemu-microvm"):
                    name = f"smaps/{subject}-{mib}.smaps"
                    (th / "smaps").mkdir(parents=True, exist_ok=True)
                    (th / name).write_text(SMAPS.replace("1048576 kB", f"{mib * 1024} kB"))
                    rows.append([subject, mib, 1, 2000, 800, name])
            tsv(th / "testhost.tsv", ["subject", "mem_mib", "round", "ready_ms", "since_kernel_ms", "smaps"], rows)
            rows = [[subject, case, 1, 10, 400, 10, 300, 500]
                    for case in ("1x1G", "4x256M") for subject in ("host-vmm", "qemu-q35")]
            tsv(bench / "hotplug" / "hotplug.tsv",
                ["subject", "case", "round", "vmm_ms", "total_ms", "cli_vmm_ms", "cli_guest_ms",
                 "cli_wall_ms"], rows)
            rows = [[subject, "containers", 1, 1000]
                    for subject in ("boot", "run-true", "create-start", "exec")]
            tsv(bench / "containers" / "containers.tsv", ["subject", "case", "round", "ms"], rows)
            lines, meta = report.build(bench)
            self.assertEqual(len(lines), 23)
            self.assertTrue(all(ln["ratio"] == 1.0 for ln in lines))
            md = report.markdown(lines, meta)
            self.assertIn("| launch → AGENT_READY, wall (ms) |", md)
            self.assertIn("| 1x1G |", md)
            self.assertIn("VMM part 10.0 ms, guest part until OnlineCPUMem returns 300.0 ms", md)


if __name__ == "__main__":
    unittest.main()
