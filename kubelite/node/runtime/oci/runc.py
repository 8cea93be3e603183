"""A thin asyncio wrapper over the `runc` command line, one state root per node.

Only what the runtime needs: run (the pause container), start, state, kill, delete,
list, and the argv of an exec. Errors carry runc's own message (the `msg="…"` of its
log line), which is what the kubelet shows for a container that cannot start.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


class RuncError(Exception):
    """runc failed; the message is runc's."""


def runc_message(stderr: str) -> str:
    """runc's error text without its log decoration (`time=… level=error msg="…"`)."""
    found = _MSG.findall(stderr)
    if not found:
        return stderr.strip()
    text: str = found[-1]
    return text.encode().decode("unicode_escape") if "\\" in text else text


def start_detail(message: str) -> str:
    """The part of a runc create/start failure the kubelet puts in its StartError message."""
    marker = "unable to start container process: "
    return message.split(marker, 1)[1] if marker in message else message


class Runc:
    """`runc --root ROOT …` as coroutines."""

    def __init__(self, root: str, binary: str | None = None):
        self.root = root
        self.binary = binary or shutil.which("runc") or "runc"

    def argv(self, *args: str) -> list[str]:
        """The full command line of a runc sub-command."""
        return [self.binary, "--root", self.root, *args]

    async def _run(self, *args: str, check: bool = True, timeout: float = 60.0) -> str:
        proc = await asyncio.create_subprocess_exec(*self.argv(*args), stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuncError(f"runc {args[0]} timed out") from None
        if check and proc.returncode != 0:
            raise RuncError(runc_message(err.decode(errors="replace")))
        return out.decode(errors="replace")

    async def run_detached(self, cid: str, bundle: str, pid_file: str) -> None:
        """Create and start a container whose stdio is /dev/null (the pause container)."""
        # The container inherits runc's stdio: pipes would stay open for its whole life.
        err_path = os.path.join(bundle, "runc.err")
        err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv("run", "--detach", "--bundle", bundle, "--pid-file", pid_file, cid),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_fd)
        finally:
            os.close(err_fd)
        try:
            await asyncio.wait_for(proc.wait(), 60.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuncError("runc run timed out") from None
        if proc.returncode != 0:
            raise RuncError(runc_message(Path(err_path).read_bytes().decode(errors="replace")))

    async def start(self, cid: str) -> None:
        """Let a created container run its process."""
        await self._run("start", cid)

    async def state(self, cid: str) -> dict | None:
        """runc's view of a container (status, pid, bundle), or None if it does not know it."""
        try:
            out = await self._run("state", cid)
        except RuncError:
            return None
        try:
            data: dict = json.loads(out)
        except ValueError:
            return None
        return data

    async def kill(self, cid: str, sig: str = "KILL", *, all_processes: bool = False) -> bool:
        """Signal the container's process (or all of them); False when it is not running."""
        args = ["kill", *(["--all"] if all_processes else []), cid, sig]
        try:
            await self._run(*args)
        except RuncError:
            return False
        return True

    async def delete(self, cid: str) -> None:
        """Forget the container (killing whatever is left of it)."""
        await self._run("delete", "--force", cid, check=False)

    async def containers(self) -> list[dict]:
        """Every container in this root."""
        try:
            out = await self._run("list", "--format", "json")
        except RuncError:
            return []
        try:
            data = json.loads(out or "null")
        except ValueError:
            return []
        return list(data or [])

    def exec_argv(self, cid: str, process_file: str, pid_file: str, *, tty: bool) -> list[str]:
        """argv of `runc exec` running the process described in `process_file`."""
        return self.argv("exec", "--process", process_file, "--pid-file", pid_file, *(["--tty"] if tty else []), cid)


def list_sync(root: str, binary: str | None = None) -> list[dict]:
    """`runc --root ROOT list` without an event loop (for killall and tests)."""
    cmd = [binary or shutil.which("runc") or "runc", "--root", root, "list", "--format", "json"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
        return list(json.loads(out or "null") or [])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
