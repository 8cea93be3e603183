"""configMap volumes: the ConfigMap's keys (or the listed items) as files."""
from __future__ import annotations

import base64

from .atomic import FileProjection
from .base import DEFAULT_MODE, Obj, SetupError, mode_of


def key_payload(data: dict[str, bytes], items: list[Obj] | None, default_mode: int, *, optional: bool,
                missing_key: str) -> dict[str, FileProjection]:
    """Files from `data`: every key, or only `items` (key → path, own mode); a missing key
    fails unless the source is optional. `missing_key` is the error's wording."""
    if not items:
        return {k: FileProjection(v, default_mode) for k, v in data.items()}
    out: dict[str, FileProjection] = {}
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            if optional:
                continue
            raise SetupError(f"{missing_key}: {key}")
        out[str(item.get("path") or key)] = FileProjection(data[key], mode_of(item.get("mode"), default_mode))
    return out


def configmap_data(cm: Obj) -> dict[str, bytes]:
    """data (text) and binaryData (base64 in the API) of a ConfigMap, as bytes."""
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return out


def payload(source: Obj, cm: Obj | None, *, default_mode: int | None = None) -> dict[str, FileProjection]:
    """The files of a configMap volume (or projected source) for ConfigMap `cm` (None: absent)."""
    name = str(source.get("name", ""))
    optional = bool(source.get("optional"))
    if cm is None:
        if optional:
            return {}
        raise SetupError(f'configmap "{name}" not found')
    mode = default_mode if default_mode is not None else mode_of(source.get("defaultMode"), DEFAULT_MODE)
    return key_payload(configmap_data(cm), source.get("items"), mode, optional=optional,
                       missing_key="configmap references non-existent config key")
