"""What the webhook dispatcher and the policies share: the request's warnings, the
conversion of an object to an equivalent resource's API, and the request's options."""
from __future__ import annotations

import contextvars
import copy
from typing import Any

from aiohttp import web

from kubelite.api import conversion
from kubelite.api.resources import ResourceInfo
from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiserver.handlers import warning_headers
from kubelite.apiserver.registry import AdmissionAttributes
from kubelite.apiserver.webhooks.conversion import ConversionWebhooks

Obj = dict[str, Any]

# The warnings webhooks returned during the current request (None outside a request).
WARNINGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("kubelite_admission_warnings",
                                                                            default=None)


def begin_request() -> contextvars.Token[list[str] | None]:
    """Start collecting warnings for the request being served."""
    return WARNINGS.set([])


def finish_request(token: contextvars.Token[list[str] | None], response: web.StreamResponse | None) -> None:
    """Add the collected warnings to a response that has not been sent yet."""
    found = WARNINGS.get()
    WARNINGS.reset(token)
    if found and response is not None and not response.prepared:
        for k, v in warning_headers(found).items():
            response.headers.add(k, v)


def warn(text: str) -> None:
    """Send a warning to the client of the current request."""
    found = WARNINGS.get()
    if found is not None:
        found.append(text)


async def convert(obj: Obj, source: ResourceInfo, target: ResourceInfo,
                  webhooks: ConversionWebhooks | None = None) -> Obj:
    """An object of ``source``'s API in ``target``'s (an equivalent resource): another
    version of a custom resource as its CRD's conversion webhook makes it, or differing in
    apiVersion only (``None`` conversion); the two Event APIs differ in field names."""
    if source is target:
        return obj
    if webhooks is not None and webhooks.converts(source):
        return (await webhooks.convert(target, [copy.deepcopy(obj)], target.api_version))[0]
    if source.plural == "events" and not isinstance(source, CustomResourceInfo):
        if target.group == "events.k8s.io":
            return conversion.event_from_core(copy.deepcopy(obj))
        return conversion.event_to_core(copy.deepcopy(obj))
    out = copy.deepcopy(obj)
    out["apiVersion"] = target.api_version
    return out


def request_options(attrs: AdmissionAttributes, operation: str) -> Obj:
    """The request's options as an AdmissionRequest carries them (Create/Update/DeleteOptions)."""
    if operation == "DELETE":
        options = dict(attrs.options or {}, apiVersion="meta.k8s.io/v1", kind="DeleteOptions")
    else:
        options = {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions"}
    if attrs.dry_run:
        options["dryRun"] = ["All"]
    return options
