"""What both launchers do in a forked child and before forking: the server's imports, the child's set-up."""
from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this process when its parent exits."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def child(args: list[str], log: str, env: dict[str, str] | None = None, cwd: str | None = None,
           close: tuple[int, ...] = ()) -> None:
    """In the forked child: become ``kubelite <args>`` (never returns).  ``env``/``cwd``: the
    requesting test process's, when it is not this launcher's parent; ``close``: descriptors
    of the launcher's that the server must not keep open."""
    code = 1
    try:
        for fd in close:
            os.close(fd)
        os.setsid()
        die_with_parent()
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd:
            os.chdir(cwd)
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


def import_server() -> None:
    """Import everything a server imports, so that forked children start warm."""
    import queue  # noqa: F401

    import uvloop  # noqa: F401

    import kubelite.api.printers  # the server imports these on the first request for them: children get them warm
    import kubelite.apiserver.openapi
    import kubelite.apiserver.reset
    import kubelite.cli
    import kubelite.server  # noqa: F401
