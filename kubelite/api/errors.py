"""metav1.Status errors, shaped like apimachinery's pkg/api/errors.

Every failure the API server reports is a ``StatusError``; its ``status`` dict is the
exact body sent to the client, and ``code`` the HTTP status.  Constructors mirror
upstream's ``NewNotFound``, ``NewConflict`` … so messages read the same in kubectl.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple


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
        self.metadata: dict[str, Any] = {}  # ListMeta: a 410 for a paged list carries a continue token

    @property
    def status(self) -> dict[str, Any]:
        """The metav1.Status body for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.metadata),
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(StatusError):
    """400: the request itself is malformed."""


class Unauthorized(StatusError):
    """401: no valid credentials were presented."""


class Forbidden(StatusError):
    """403: the caller may not do this (also: namespace terminating)."""


class NotFound(StatusError):
    """404: the object, resource or path does not exist."""


class MethodNotAllowed(StatusError):
    """405: the verb is not served for this resource."""


class NotAcceptable(StatusError):
    """406: no representation the client accepts can be produced."""


class Conflict(StatusError):
    """409 Conflict: a stale resourceVersion or a field-manager conflict."""


class AlreadyExists(Conflict):
    """409 AlreadyExists: create found an object of that name (a kind of conflict, as upstream)."""


class Gone(StatusError):
    """410 Expired/Gone: the resourceVersion or continue token was compacted away."""


class RequestEntityTooLarge(StatusError):
    """413: the body is over the server's limit."""


class UnsupportedMediaType(StatusError):
    """415: the body's content type is not understood."""


class Invalid(StatusError):
    """422: the object fails validation; ``details.causes`` says where."""


class TooManyRequests(StatusError):
    """429: the server asks the client to slow down."""


class ServerError(StatusError):
    """5xx: the server failed; retrying later may help."""


class ServerTimeout(ServerError):
    """504 Timeout: the server gave up waiting."""


class ServiceUnavailable(ServerError):
    """503: the server is not ready to answer."""


# Reason first (409 carries two), then the HTTP code, as clients read a Status.
_BY_REASON: dict[str, type[StatusError]] = {"AlreadyExists": AlreadyExists, "Conflict": Conflict}
_BY_CODE: dict[int, type[StatusError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    406: NotAcceptable, 409: Conflict, 410: Gone, 413: RequestEntityTooLarge,
    415: UnsupportedMediaType, 422: Invalid, 429: TooManyRequests, 503: ServiceUnavailable,
    504: ServerTimeout,
}


def status_error(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> StatusError:
    """Build the most specific StatusError subclass for a code and reason."""
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or (ServerError if code >= 500 else StatusError)
    return cls(code, reason, message, details)


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
    return status_error(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                       _details(name, group, resource))


def no_such_path() -> StatusError:
    """404 for an unknown path or resource."""
    return status_error(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, group: str, name: str) -> StatusError:
    """409 AlreadyExists."""
    return status_error(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                       _details(name, group, resource))


def conflict(resource: str, group: str, name: str, why: str | None = None) -> StatusError:
    """409 Conflict for optimistic-concurrency failures."""
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return status_error(409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                       _details(name, group, resource))


def invalid(kind: str, group: str, name: str, causes: Iterable[Cause]) -> StatusError:
    """422 Invalid with field causes; ``details.kind`` is the Kind, as upstream."""
    causes = list(causes)
    qual = f"{kind}.{group}" if group else kind
    summary = ", ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    if len(causes) > 1:
        summary = "[" + summary + "]"
    return status_error(422, "Invalid", f'{qual} "{name}" is invalid: {summary}',
                       _details(name, group, kind, causes=[c._asdict() for c in causes]))


def bad_request(message: str) -> StatusError:
    """400 BadRequest with free text."""
    return status_error(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> StatusError:
    """405 MethodNotAllowed."""
    return status_error(405, "MethodNotAllowed", message, {})


def unsupported_media_type(ctype: str, accepted: Iterable[str]) -> StatusError:
    """415 UnsupportedMediaType."""
    return status_error(415, "UnsupportedMediaType",
                       f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}")


def not_acceptable(accepted: Iterable[str]) -> StatusError:
    """406 NotAcceptable."""
    return status_error(406, "NotAcceptable",
                       f"only the following media types are accepted: {', '.join(accepted)}")


def gone(message: str, continue_token: str = "") -> StatusError:
    """410 Expired (too old resource version / continue token); a paged list's 410 may
    carry a token that continues from the same key at the newest revision."""
    err = status_error(410, "Expired", message)
    if continue_token:
        err.metadata["continue"] = continue_token
    return err


def too_large(message: str = "Request entity too large: limit is 3145728") -> StatusError:
    """413 RequestEntityTooLarge."""
    return status_error(413, "RequestEntityTooLarge", message)


def unauthorized() -> StatusError:
    """401 Unauthorized."""
    return status_error(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> StatusError:
    """403 Forbidden."""
    return status_error(403, "Forbidden", message)


def internal(message: str) -> StatusError:
    """500 InternalError."""
    return status_error(500, "InternalError", f"Internal error occurred: {message}",
                       {"causes": [{"message": message}]})


def timeout(message: str) -> StatusError:
    """504 Timeout."""
    return status_error(504, "Timeout", message)


def service_unavailable(message: str) -> StatusError:
    """503 ServiceUnavailable."""
    return status_error(503, "ServiceUnavailable", message)


def too_many_requests(message: str, retry_after: int = 1) -> StatusError:
    """429 TooManyRequests."""
    return status_error(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after})
