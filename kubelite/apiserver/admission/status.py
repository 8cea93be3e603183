"""The error an admission plugin answers with when it refuses a request."""
from __future__ import annotations

from kubelite.api import errors
from kubelite.api.resources import ResourceInfo


def forbidden(info: ResourceInfo, name: str, message: str) -> errors.StatusError:
    """admission.NewForbidden: ``<resource> "<name>" is forbidden: <message>`` as 403."""
    details = {"name": name, "kind": info.plural}
    if info.group:
        details["group"] = info.group
    return errors.status_error(403, "Forbidden", f'{errors.qualified(info.plural, info.group)} "{name}" is '
                                                 f'forbidden: {message}', details)
