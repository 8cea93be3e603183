"""How every long-running ``kubelite`` sub-command runs: one asyncio entry point, its end
turned into an exit code and a one-line message instead of a traceback.

Shared by cli.py (``server``) and cli_extra.py (``agent``), which otherwise do not
depend on each other's insides.
"""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from kubelite.server import StartupError, os_problem


def run_main(coro: Coroutine[Any, Any, None]) -> int:
    """Run ``coro`` on uvloop when available; 0, or 1 on a start-up or OS failure, 130 on Ctrl-C."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(coro)
    except StartupError as e:
        print(f"kubelite: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the machine said no (disk, permissions, ports) after start-up checks
        print(f"kubelite: {os_problem(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
