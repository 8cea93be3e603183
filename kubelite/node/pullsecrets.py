"""The pod's imagePullSecrets, read through the API before a pull (as the kubelet does)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.api import meta
from kubelite.client.errors import StatusError

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Awaitable[Obj | None]]

MISSING_REASON = "FailedToRetrieveImagePullSecret"


async def fetch(pod: Obj, lookup: Lookup) -> tuple[list[Obj], list[str]]:
    """(the Secrets named by spec.imagePullSecrets that could be read, the names that could not)."""
    found: list[Obj] = []
    missing: list[str] = []
    for item in pod.get("spec", {}).get("imagePullSecrets") or []:
        name = (item or {}).get("name")
        if not name:
            continue
        try:
            secret = await lookup("Secret", meta.namespace(pod), name)
        except StatusError:
            secret = None
        if secret is None:
            missing.append(name)
        else:
            found.append(secret)
    return found, missing


def missing_message(names: list[str]) -> str:
    """The kubelet's warning when some pull secrets are missing (the pull is still tried)."""
    return (f"Unable to retrieve some image pull secrets ({', '.join(names)}); attempting to pull the image "
            f"may not succeed.")
