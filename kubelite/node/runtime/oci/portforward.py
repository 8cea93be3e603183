"""port-forward into a pod: a TCP connection to 127.0.0.1:PORT made inside the pod's
network namespace, as the kubelet's runtime does it, so a server bound to the pod's
loopback is reachable too.

setns(2) changes the namespace of the calling thread only, and a socket stays in the
namespace it was created in. So a short-lived thread of our own enters the pod's
namespace, creates and connects the socket, and ends; the event loop then adopts the
connected socket. No thread of the pool is ever left in a pod's namespace.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import socket
import threading

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def _connect_in(netns_path: str, port: int, timeout: float) -> socket.socket:
    result: list[socket.socket | BaseException] = []

    def run() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.settimeout(timeout)
                s.connect(("127.0.0.1", port))
                s.setblocking(False)
            except BaseException:
                s.close()
                raise
            result.append(s)
        except BaseException as e:  # handed to the caller
            result.append(e)

    # A thread that entered a pod's namespace ends with it; it never runs anything else.
    t = threading.Thread(target=run, name="netns-connect", daemon=True)
    t.start()
    t.join()
    got = result[0] if result else OSError("connect in pod network failed")
    if isinstance(got, BaseException):
        raise got
    return got


async def open_in_netns(netns_path: str, port: int, timeout: float = 10.0
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams of a connection to 127.0.0.1:`port` in the network namespace at `netns_path`."""
    sock = await asyncio.to_thread(_connect_in, netns_path, port, timeout)
    return await asyncio.open_connection(sock=sock)
