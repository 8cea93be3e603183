"""secret volumes: the Secret's keys (or the listed items) as files."""
from __future__ import annotations

import base64

from .atomic import FileProjection
from .base import DEFAULT_MODE, Obj, SetupError, mode_of
from .configmap import key_payload


def secret_data(secret: Obj) -> dict[str, bytes]:
    """data (base64 in the API) and any stringData of a Secret, as bytes."""
    out = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    out.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return out


def payload(source: Obj, secret: Obj | None, *, name_key: str = "secretName",
            default_mode: int | None = None) -> dict[str, FileProjection]:
    """The files of a secret volume (name in `secretName`) or projected source (`name`)."""
    name = str(source.get(name_key, ""))
    optional = bool(source.get("optional"))
    if secret is None:
        if optional:
            return {}
        raise SetupError(f'secret "{name}" not found')
    mode = default_mode if default_mode is not None else mode_of(source.get("defaultMode"), DEFAULT_MODE)
    return key_payload(secret_data(secret), source.get("items"), mode, optional=optional,
                       missing_key="references non-existent secret key")
