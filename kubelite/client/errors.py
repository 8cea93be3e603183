"""The errors an API client sees, layered so a caller catches only what it cares about.

Every failed request raises a ``StatusError`` (its ``status`` is the server's
metav1.Status).  Narrower classes name the cases callers branch on: ``NotFound``,
``AlreadyExists`` (itself a ``Conflict``), ``Conflict``, ``Gone`` (list again),
``Forbidden``, ``Invalid``, ``ServerError`` …  Write ``except NotFound:`` rather than
comparing ``e.code``.  The classes are defined beside ``StatusError`` in
``kubelite.api.errors`` because the API server raises the same ones; this module is the
client's public name for them.
"""
from __future__ import annotations

from kubelite.api.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    RequestEntityTooLarge,
    ServerError,
    ServerTimeout,
    ServiceUnavailable,
    StatusError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    status_error,
)

__all__ = [
    "AlreadyExists",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "RequestEntityTooLarge",
    "ServerError",
    "ServerTimeout",
    "ServiceUnavailable",
    "StatusError",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "status_error",
]
