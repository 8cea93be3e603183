"""A warm process that forks ``kubelite server`` processes on request (a zygote).

Importing the server's modules takes most of a cold start (about a second); this
process pays it once, then each server is a ``fork()`` away.  It speaks JSON lines on
stdin/stdout with the one test process that started it:

- ``{"start": [args…], "log": PATH}`` → ``{"pid": N}``: a child runs
  ``kubelite <args…>`` in its own session with stdout and stderr in PATH;
- ``{"wait": N, "timeout": T}`` → ``{"code": C}`` (``null`` if still running after T s);
- end of input: every child still running gets SIGTERM, and the launcher exits.

Children get SIGTERM when the launcher dies, which dies with the test process: a
crashed test run leaves no server behind.  Run as ``python -m kubelite.testing.launcher``.
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
    die_with_parent()
    # Everything a server imports, now, so that children start warm.
    import queue  # noqa: F401

    import uvloop  # noqa: F401

    import kubelite.apiserver.reset
    import kubelite.cli
    import kubelite.server  # noqa: F401
    children: set[int] = set()
    codes: dict[int, int] = {}
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        if "start" in req:
            out.flush()
            pid = os.fork()
            if pid == 0:
                _child([str(a) for a in req["start"]], str(req["log"]))
            children.add(pid)
            answer: dict[str, int | None] = {"pid": pid}
        elif "wait" in req:
            pid = int(req["wait"])
            answer = {"code": _wait(pid, float(req.get("timeout", 0)), codes)}
            if answer["code"] is not None:
                children.discard(pid)
        else:
            answer = {}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in children:
        _wait(pid, 30, codes)
    return 0


if __name__ == "__main__":
    sys.exit(serve())
