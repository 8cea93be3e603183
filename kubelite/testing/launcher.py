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
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this process when its parent exits."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _child(args: list[str], log: str) -> None:
    """In the forked child: become ``kubelite <args>`` (never returns)."""
    code = 1
    try:
        os.setsid()
        die_with_parent()
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        from kubelite.cli import main
        code = main(args)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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
    # Everything a server imports, now, so that children start warm.
    import queue  # noqa: F401

    import uvloop  # noqa: F401

    import kubelite.apiserver.reset
    import kubelite.cli
    import kubelite.server  # noqa: F401
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
                    _child([str(a) for a in req["start"]], str(req["log"]))
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


if __name__ == "__main__":
    sys.exit(serve())
