"""The client's error classes: the narrowest class for each Status, all under StatusError."""
from __future__ import annotations

import pytest

from kubelite.api import errors as api_errors
from kubelite.client import errors


@pytest.mark.parametrize(("code", "reason", "cls"), [
    (404, "NotFound", errors.NotFound),
    (409, "AlreadyExists", errors.AlreadyExists),
    (409, "Conflict", errors.Conflict),
    (410, "Expired", errors.Gone),
    (410, "Gone", errors.Gone),
    (403, "Forbidden", errors.Forbidden),
    (422, "Invalid", errors.Invalid),
    (400, "BadRequest", errors.BadRequest),
    (429, "TooManyRequests", errors.TooManyRequests),
    (503, "ServiceUnavailable", errors.ServiceUnavailable),
    (504, "Timeout", errors.ServerTimeout),
    (500, "InternalError", errors.ServerError),
    (418, "Unknown", errors.StatusError),
])
def test_status_error_picks_the_narrowest_class(code: int, reason: str, cls: type) -> None:
    err = errors.status_error(code, reason, "m")
    assert type(err) is cls
    assert isinstance(err, errors.StatusError)
    assert (err.code, err.reason, err.message) == (code, reason, "m")


def test_already_exists_is_a_conflict_but_not_the_reverse() -> None:
    assert isinstance(errors.status_error(409, "AlreadyExists", ""), errors.Conflict)
    assert not isinstance(errors.status_error(409, "Conflict", ""), errors.AlreadyExists)


def test_server_constructors_raise_the_layered_classes() -> None:
    assert isinstance(api_errors.not_found("pods", "", "p"), errors.NotFound)
    assert isinstance(api_errors.already_exists("pods", "", "p"), errors.AlreadyExists)
    assert isinstance(api_errors.conflict("pods", "", "p"), errors.Conflict)
    assert isinstance(api_errors.gone("too old"), errors.Gone)
    assert isinstance(api_errors.invalid("Pod", "", "p", []), errors.Invalid)
    assert api_errors.not_found("deployments", "apps", "d").status["message"] == 'deployments.apps "d" not found'
