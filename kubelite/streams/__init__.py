"""Streaming subresources served by the node agent: exec, attach and port-forward.

kubectl speaks SPDY/3.1 (``spdy.py``, hijacked by ``upgrade.py``) or the WebSocket
channel protocol (``channels.py``); ``remotecommand.py`` and ``portforward.py`` put the
Kubernetes stream semantics on top.  The node agent only calls the three entry points.
"""
from kubelite.streams.portforward import serve_portforward
from kubelite.streams.remotecommand import ExecSession, serve_attach, serve_exec

__all__ = ["ExecSession", "serve_attach", "serve_exec", "serve_portforward"]
