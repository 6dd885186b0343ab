"""Run a child process in its own session, stream its output line by line, enforce a timeout.

The child (QEMU, or the script in direct mode) and everything it starts share one
process group, which is killed on every way out: normal exit, timeout, Ctrl-C,
SIGTERM. Nothing is left behind.
"""

import collections
import os
import select
import signal
import subprocess
import time

STDOUT = "out"
STDERR = "err"
# Seconds to keep reading after the child exited (output still in flight).
DRAIN = 2.0


class Outcome:
    def __init__(self):
        self.returncode = None
        self.timed_out = False
        # Seconds of silence after which the child was given up as frozen (None: it was not).
        self.stalled = None
        self.tail = collections.deque(maxlen=50)


def _kill_group(proc):
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure no member of its group survives it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


def run(cmd, timeout, on_line, log_file, env=None, stall=None, on_stall=None):
    """Run cmd; call on_line(source, line) for each output line; return an Outcome.

    With `stall` (seconds): a child that prints nothing for that long is frozen (the test
    host prints a heartbeat line every 30 s): on_stall() runs while it is still alive (to
    look at it), then it is killed and the Outcome says so."""
    outcome = Outcome()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    pending = {proc.stdout.fileno(): (STDOUT, b""), proc.stderr.fileno(): (STDERR, b"")}
    deadline = time.monotonic() + timeout
    last_output = time.monotonic()

    def emit(source, raw):
        line = raw.decode("utf-8", "replace").rstrip("\r\n").replace("\r", "")
        log_file.write(f"{line}\n" if source == STDOUT else f"[stderr] {line}\n")
        log_file.flush()
        outcome.tail.append(line)
        on_line(source, line)

    try:
        exited_at = None
        while pending:
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > DRAIN:
                break  # a straggler still holds the output open; it is killed below
            if now >= deadline:
                outcome.timed_out = True
                break
            if stall is not None and exited_at is None and now - last_output > stall:
                outcome.stalled = stall
                if on_stall is not None:
                    on_stall()
                break
            ready, _, _ = select.select(list(pending), [], [], min(deadline - now, 0.5))
            for fd in ready:
                source, buf = pending[fd]
                chunk = os.read(fd, 65536)
                last_output = time.monotonic()
                if not chunk:
                    if buf:
                        emit(source, buf)
                    del pending[fd]
                    continue
                *lines, buf = (buf + chunk).split(b"\n")
                for raw in lines:
                    emit(source, raw)
                pending[fd] = (source, buf)
        for source, buf in pending.values():
            if buf:
                emit(source, buf)
        if not outcome.timed_out and outcome.stalled is None:
            try:
                outcome.returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                outcome.timed_out = True
    finally:
        _kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    return outcome
