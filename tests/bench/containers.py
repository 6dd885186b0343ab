#!/usr/bin/env python3
"""Container benchmark, run inside the test host (tests/bench/containers-in-testhost.sh).

Each figure is the wall time of the host-vmm command a user types, process start
included, and the report gives it as a ratio to the boot figure of the same run:
- boot: `host-vmm boot` with `agent.poweroff=1` (launch, boot to the agent, power off);
- run-true: `host-vmm run -- true` (boot, sandbox, container, teardown);
- create-start: `host-vmm create POD cN -- true` + `host-vmm start POD cN` in a running
  sandbox;
- exec: `host-vmm exec POD c -- true` into a running container.
All with the default configuration (1 vCPU, 1 GiB). Rounds interleave the measures; round 0
warms up and is not recorded. Writes RESULTS/bench/containers.tsv: subject, case, round, ms.
Fails (exit 1, saying why) when a command fails.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

TIMEOUT = float(os.environ.get("BOOT_TIMEOUT", "120"))
RUNTIME = "/tmp/ctbench-run"


def fail(msg):
    print(f"bench containers: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def timed(args, env, what):
    """Runs args; its wall time in ms. Fails on a non-zero exit."""
    t0 = time.monotonic()
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=env, timeout=TIMEOUT, check=False)
    ms = (time.monotonic() - t0) * 1000
    if r.returncode != 0:
        fail(f"{what}: {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
    return ms


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    results = Path(os.environ["RESULTS"])
    out = results / "bench"
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("host-vmm") is None:
        fail("host-vmm is not on PATH")
    cfg = Path("/tmp/ctbench.toml")
    cfg.write_text("[hypervisor.host-vmm]\n"
                   f'kernel = "{os.environ["GUEST_KERNEL"]}"\n'
                   f'initrd = "{os.environ["GUEST_INITRD"]}"\n')
    env = dict(os.environ, HOST_VMM_RUNTIME_DIR=RUNTIME)
    pod = subprocess.Popen(["host-vmm", "run", "--id", "pod", "--config", str(cfg)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=open(out / "containers-pod.stderr", "w"), env=env)
    try:
        deadline = time.monotonic() + TIMEOUT
        while subprocess.run(["host-vmm", "ps", "pod"], capture_output=True, env=env,
                             check=False).returncode != 0:
            if pod.poll() is not None:
                fail(f"the sandbox exited ({pod.returncode}) before it answered")
            if time.monotonic() > deadline:
                fail("the sandbox did not answer within the timeout")
            time.sleep(0.2)
        hv = ["host-vmm"]
        timed(hv + ["create", "pod", "c", "--", "sleep", "100000"], env, "create c")
        timed(hv + ["start", "pod", "c"], env, "start c")
        with open(out / "containers.tsv", "w") as tsv:
            tsv.write("subject\tcase\tround\tms\n")
            for rnd in range(runs + 1):
                figures = {
                    "boot": timed(hv + ["boot", "--config", str(cfg), "--id", f"b{rnd}",
                                        "--kernel-params", "agent.poweroff=1"], env, "boot"),
                    "run-true": timed(hv + ["run", "--config", str(cfg), "--id", f"r{rnd}",
                                            "--", "true"], env, "run"),
                    "create-start": timed(hv + ["create", "pod", f"c{rnd}", "--", "true"],
                                          env, "create") +
                    timed(hv + ["start", "pod", f"c{rnd}"], env, "start"),
                    "exec": timed(hv + ["exec", "pod", "c", "--", "true"], env, "exec"),
                }
                timed(hv + ["delete", "pod", f"c{rnd}"], env, "delete")
                print(f"round {rnd}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in figures.items()),
                      flush=True)
                if rnd > 0:
                    for k, v in figures.items():
                        tsv.write(f"{k}\tcontainers\t{rnd}\t{v:.1f}\n")
    finally:
        pod.terminate()
        try:
            pod.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pod.kill()
            pod.wait()
        cfg.unlink(missing_ok=True)
    print(f"bench results: {out / 'containers.tsv'}")


if __name__ == "__main__":
    main()
