"""How every long-running ``kubelite`` sub-command runs: one asyncio entry point, its end
turned into an exit code and a one-line message instead of a traceback.

Shared by cli.py (``server``) and cli_extra.py (``agent``), which otherwise do not
depend on each other's insides.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from kubelite.startup import StartupError, os_problem


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


RUNTIMES = ["auto", "oci", "process", "fake"]
RUNTIME_HELP = ("auto (default): oci when root with runc, conmon and catatonit, else process; "
                "oci: containers under runc and conmon; process: host processes; fake: none")


def pick_runtime(requested: str, network: str, data_dir: str) -> str:
    """The runtime `--runtime requested` means on this machine; `auto` says in the log what it chose and why."""
    if requested != "auto":
        return requested
    log = logging.getLogger("kubelite.node")
    from kubelite.node.runtime.oci.runtime import missing
    why = "--network host was asked for, and the oci runtime gives every pod its own network namespace" \
        if network == "host" else missing()
    if why is None:
        log.info("runtime: oci (auto: root, runc, conmon and catatonit are here): pods are containers, and they "
                 "keep running when kubelite stops; `kubelite killall --data-dir %s` stops them", data_dir)
        return "oci"
    log.warning("runtime: process (auto: %s). Containers are host processes: they see the host's files, run as "
                "this user, and have no cgroups, limits or volumes (README: \"What the process runtime does and "
                "does not isolate\"); as root with runc, conmon and catatonit installed, pods are containers", why)
    return "process"
