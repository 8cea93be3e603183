"""Server-side cost for the benchmarks: CPU seconds of a process from /proc, and an optional
py-spy recording of it.

Wall-clock times on a shared 2-core machine move with whatever else runs; the CPU time the
server process spent per pod does much less, so the benchmarks print both.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name ([] once the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    # The command name may hold spaces: the fields that follow start after its ')'.
    return stat[stat.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far (0.0 once it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / _TICKS if fields else 0.0


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds of the process, of its live children (`--separate-processes`) and of those it reaped."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    total = (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / _TICKS
    for entry in os.listdir("/proc"):
        child = _stat(int(entry)) if entry.isdigit() else []
        if child and int(child[1]) == pid:
            total += (int(child[11]) + int(child[12])) / _TICKS
    return total


def load_average() -> str:
    """The 1/5/15-minute load averages, as /proc/loadavg gives them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Spy:
    """`py-spy record` attached to pid until stop(); writes collapsed stacks (one line per
    stack with its sample count) to path, for `flamegraph.pl` or a quick sort."""

    def __init__(self, pid: int, path: Path, rate: int = 50) -> None:
        exe = shutil.which("py-spy")
        if exe is None:
            raise SystemExit("--profile needs py-spy (pip install py-spy)")
        self.path = path
        self.proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                                      "--nonblocking", "-o", str(path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        """Ends the recording and waits for py-spy to write its file."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def top_frames(path: Path, n: int = 15) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From a collapsed-stack file: the n frames with most self samples and the n with most
    cumulative samples (a frame counted once per stack), each as (frame, share of samples)."""
    own: dict[str, int] = {}
    cum: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + k
        for f in set(frames):
            cum[f] = cum.get(f, 0) + k
    total = total or 1

    def top(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(f, c / total) for f, c in sorted(d.items(), key=lambda kv: -kv[1])[:n]]
    return top(own), top(cum)
