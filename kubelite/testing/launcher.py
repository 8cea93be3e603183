"""A warm process that forks ``kubelite server`` processes on request (a zygote).

Importing the server's modules takes most of a cold start (about a second); this
process pays it once, then each server is a ``fork()`` away.  It speaks JSON lines on
stdin/stdout with the one test process that started it:

- ``{"start": [args…], "log": PATH, "cleanup": DIR}`` → ``{"pid": N}``: a child runs
  ``kubelite <args…>`` in its own session with stdout and stderr in PATH;
- ``{"wait": N, "timeout": T}`` → ``{"code": C}`` (``null`` if still running after T s);
- end of input (or SIGTERM): every child not waited for gets SIGTERM, its DIR is
  removed, and the launcher exits.

The launcher's input ends when the test process dies, and children get SIGTERM when
the launcher dies: a crashed test run leaves no server and no directory behind.  Run as ``python -m kubelite.testing.launcher``.

``--socket PATH`` runs the same launcher as a *persistent* one (see ``persistent.py``): it
outlives the test processes, serves any number of them on a Unix socket, each connection
owning the servers it started (stopped when that connection ends), and exits after
``--idle`` seconds with no connection and no server.  A test process then finds it warm
even for its first cluster.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

from kubelite.testing.zygote import child, import_server


def _wait(pid: int, timeout: float, codes: dict[int, int]) -> int | None:
    """The exit code of child ``pid`` once it exits within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        if pid in codes:
            return codes[pid]
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return codes.get(pid, -1)
        if got == pid:
            codes[pid] = os.waitstatus_to_exitcode(status)
            return codes[pid]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def serve() -> int:
    """Read requests until end of input (see the module docstring)."""
    # No parent-death signal here: Linux sends it when the *thread* that started this
    # process ends (asyncio.to_thread's workers do), not the test process. The end of
    # stdin is the reliable sign: the kernel closes the pipe when the test process dies.
    import_server()
    children: dict[int, str] = {}  # pid -> the directory to remove if the test process cannot
    codes: dict[int, int] = {}
    # Stopped from outside: clean up as at the end of input.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    try:
        for line in sys.stdin:
            req = json.loads(line)
            if "start" in req:
                out.flush()
                pid = os.fork()
                if pid == 0:
                    child([str(a) for a in req["start"]], str(req["log"]))
                children[pid] = str(req.get("cleanup") or "")
                answer: dict[str, int | None] = {"pid": pid}
            elif "wait" in req:
                pid = int(req["wait"])
                answer = {"code": _wait(pid, float(req.get("timeout", 0)), codes)}
                if answer["code"] is not None:
                    children.pop(pid, None)
            else:
                answer = {}
            out.write(json.dumps(answer) + "\n")
            out.flush()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_all(children, codes)
    return 0


def _stop_all(children: dict[int, str], codes: dict[int, int]) -> None:
    """Stop the servers still running and remove their directories (the test process is gone)."""
    import shutil
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid, directory in children.items():
        if _wait(pid, 30, codes) is None:
            os.kill(pid, signal.SIGKILL)
            _wait(pid, 30, codes)
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``launcher`` (pipe mode), ``launcher --socket PATH [--idle S]`` or ``launcher --stop``."""
    if not argv:
        return serve()
    from kubelite.testing import persistent
    if argv == ["--stop"]:
        return persistent.stop_all()
    if argv[0] == "--socket" and len(argv) in (2, 4) and (len(argv) == 2 or argv[2] == "--idle"):
        return persistent.serve_socket(argv[1], float(argv[3]) if len(argv) == 4 else persistent.IDLE_SECONDS)
    print("usage: python -m kubelite.testing.launcher [--socket PATH [--idle SECONDS] | --stop]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
