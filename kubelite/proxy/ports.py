"""NodePorts held on the host, so two servers (or any other program) never share one.

The kernel path forwards NodePorts with DNAT and listens nowhere, so nothing on the machine
would show that a port is taken. The proxy therefore binds (without listening) a socket on
every NodePort it routes, as kube-proxy once did; the DNAT happens before any socket is
looked up, so the held socket never sees the traffic. The API server's allocator asks
``port_free`` before it hands out a port, and skips one that something on this host holds.
"""
from __future__ import annotations

import logging
import socket

log = logging.getLogger("kubelite.proxy")


def _socket(protocol: str) -> socket.socket:
    kind = socket.SOCK_DGRAM if protocol.upper() == "UDP" else socket.SOCK_STREAM
    return socket.socket(socket.AF_INET, kind)


def port_free(port: int, protocol: str = "TCP") -> bool:
    """Whether nothing on this host has bound ``port`` for ``protocol`` (SCTP counts as free)."""
    if protocol.upper() not in ("TCP", "UDP"):
        return True
    s = _socket(protocol)
    try:
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class PortHolder:
    """The sockets that keep this node's NodePorts taken while the proxy routes them."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], socket.socket] = {}

    def hold(self, wanted: set[tuple[str, int]]) -> None:
        """Hold exactly ``wanted`` ((protocol, port) pairs)."""
        for key in set(self._held) - wanted:
            self._held.pop(key).close()
        for protocol, port in sorted(wanted - set(self._held)):
            if protocol.upper() not in ("TCP", "UDP"):
                continue
            s = _socket(protocol)
            try:
                s.bind(("0.0.0.0", port))
            except OSError as e:
                s.close()
                # The rule still forwards; only the guard against a second user is missing.
                log.warning("proxy: NodePort %s/%d is bound by another program on this host (%s)",
                            protocol, port, e.strerror or e)
                continue
            self._held[(protocol, port)] = s

    def held(self) -> set[tuple[str, int]]:
        """The (protocol, port) pairs held now."""
        return set(self._held)

    def close(self) -> None:
        """Give every port back."""
        self.hold(set())
