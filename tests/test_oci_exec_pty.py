"""The pty kubelite holds for a `runc exec --tty` only carries bytes: the container's own terminal
already turned each "\\n" into "\\r\\n", and a second translation on our side (before runc makes its
terminal raw) showed up as "\\r\\r\\n" at the start of `kubectl exec -ti` sessions."""
from __future__ import annotations

import asyncio
import shutil

from kubelite.node.runtime.oci.exec import TtyExec


def test_the_relay_pty_passes_output_unchanged(tmp_path):
    async def run() -> bytes:
        # printf stands in for runc: it writes at once, before anything could make the pty raw.
        ex = await TtyExec.start([shutil.which("printf") or "/usr/bin/printf", "one\\ntwo\\r\\n"],
                                 str(tmp_path / "pid"), ())
        out = await asyncio.wait_for(ex.stdout.read(), 30)
        assert await ex.wait() == 0
        return out
    assert asyncio.run(run()) == b"one\ntwo\r\n"
