"""What every ``kubelite`` command shares before it starts anything: where the data lives by
default, and the error a user can fix. Kept apart from ``kubelite.server`` so that commands that
are API clients (``kubelite agent``, ``kubelite rollout``) do not import the API server."""
from __future__ import annotations

import errno
import os


class StartupError(Exception):
    """A problem the user can fix; printed without a traceback."""


def default_data_dir() -> str:
    """$KUBELITE_DATA_DIR or ~/.kubelite."""
    return os.environ.get("KUBELITE_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".kubelite")


def why(e: OSError) -> str:
    """The plain reason of an OSError ("address already in use"), without wrapping text."""
    if e.errno and e.errno > 0:
        return os.strerror(e.errno).lower()
    return str(e.strerror or e)  # e.g. socket.gaierror: "Name or service not known"


def os_problem(e: OSError) -> str:
    """'PATH: what went wrong', in words (no errno numbers)."""
    what = why(e)
    if e.errno == errno.EEXIST:  # makedirs found a file where a directory belongs
        what = "a file is in the way of a directory"
    path = e.filename2 or e.filename  # a rename names its target second
    return f"{path}: {what}" if path else what
