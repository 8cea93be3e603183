"""A metav1.Status error as an HTTP response.

Both HTTP servers of the cluster answer errors this way: the API server and the node
agent's API (which the API server forwards logs, exec and port-forward to). Keeping the
one helper here lets the agent answer like the API server without depending on it.
"""
from __future__ import annotations

import orjson
from aiohttp import web

from kubelite.api.errors import StatusError


def respond_error(e: StatusError) -> web.Response:
    """The error's metav1.Status as a JSON response with its HTTP code (and Retry-After when
    the details carry retryAfterSeconds, as upstream's response writer adds it)."""
    retry = (e.details or {}).get("retryAfterSeconds")
    headers = {"Retry-After": str(retry)} if isinstance(retry, int) and retry > 0 else None
    return web.Response(status=e.code, body=orjson.dumps(e.status), content_type="application/json",
                        headers=headers)
