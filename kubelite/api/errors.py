"""metav1.Status errors, shaped like apimachinery's pkg/api/errors.

Every failure the API server reports is a ``StatusError``; its ``status`` dict is the
exact body sent to the client, and ``code`` the HTTP status.  Constructors mirror
upstream's ``NewNotFound``, ``NewConflict`` … so messages read the same in kubectl.
"""
from __future__ import annotations

from typing import Any, Iterable, NamedTuple


class Cause(NamedTuple):
    """One field-level cause of an Invalid error (``details.causes[]``)."""

    reason: str  # FieldValueInvalid, FieldValueRequired, …
    message: str
    field: str


class StatusError(Exception):
    """An error that the API server returns as a metav1.Status."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    @property
    def status(self) -> dict[str, Any]:
        """The metav1.Status body for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(resource: str, group: str) -> str:
    """``deployments.apps`` for grouped resources, ``pods`` for the core group."""
    return f"{resource}.{group}" if group else resource


def _details(name: str | None, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    d.update(extra)
    return d


def not_found(resource: str, group: str, name: str) -> StatusError:
    """404 NotFound: ``deployments.apps "x" not found``."""
    return StatusError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                       _details(name, group, resource))


def no_such_path() -> StatusError:
    """404 for an unknown path or resource."""
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, group: str, name: str) -> StatusError:
    """409 AlreadyExists."""
    return StatusError(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                       _details(name, group, resource))


def conflict(resource: str, group: str, name: str, why: str | None = None) -> StatusError:
    """409 Conflict for optimistic-concurrency failures."""
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                       _details(name, group, resource))


def invalid(kind: str, group: str, name: str, causes: Iterable[Cause]) -> StatusError:
    """422 Invalid with field causes; ``details.kind`` is the Kind, as upstream."""
    causes = list(causes)
    qual = f"{kind}.{group}" if group else kind
    summary = ", ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    if len(causes) > 1:
        summary = "[" + summary + "]"
    return StatusError(422, "Invalid", f'{qual} "{name}" is invalid: {summary}',
                       _details(name, group, kind, causes=[c._asdict() for c in causes]))


def bad_request(message: str) -> StatusError:
    """400 BadRequest with free text."""
    return StatusError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> StatusError:
    """405 MethodNotAllowed."""
    return StatusError(405, "MethodNotAllowed", message, {})


def unsupported_media_type(ctype: str, accepted: Iterable[str]) -> StatusError:
    """415 UnsupportedMediaType."""
    return StatusError(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}")


def not_acceptable(accepted: Iterable[str]) -> StatusError:
    """406 NotAcceptable."""
    return StatusError(406, "NotAcceptable",
                       f"only the following media types are accepted: {', '.join(accepted)}")


def gone(message: str) -> StatusError:
    """410 Expired (too old resource version / continue token)."""
    return StatusError(410, "Expired", message)


def too_large(message: str = "Request entity too large: limit is 3145728") -> StatusError:
    """413 RequestEntityTooLarge."""
    return StatusError(413, "RequestEntityTooLarge", message)


def unauthorized() -> StatusError:
    """401 Unauthorized."""
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> StatusError:
    """403 Forbidden."""
    return StatusError(403, "Forbidden", message)


def internal(message: str) -> StatusError:
    """500 InternalError."""
    return StatusError(500, "InternalError", f"Internal error occurred: {message}",
                       {"causes": [{"message": message}]})


def timeout(message: str) -> StatusError:
    """504 Timeout."""
    return StatusError(504, "Timeout", message)


def service_unavailable(message: str) -> StatusError:
    """503 ServiceUnavailable."""
    return StatusError(503, "ServiceUnavailable", message)


def too_many_requests(message: str, retry_after: int = 1) -> StatusError:
    """429 TooManyRequests."""
    return StatusError(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after})
