"""projected volumes: secrets, configMaps, downward-API fields and service-account
tokens merged into one directory (the `kube-api-access-*` volume is one of these)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from . import configmap, downwardapi, secret
from .atomic import FileProjection
from .base import DEFAULT_MODE, Obj, SetupError, aggregate, mode_of
from .token import Token, TokenManager

GetObject = Callable[[str, str, str], Awaitable[Obj | None]]


async def payload(source: Obj, pod: Obj, *, get: GetObject, tokens: TokenManager,
                  fs_user: int | None, fs_group: int | None) -> dict[str, FileProjection]:
    """The merged files of a projected volume; every source's error is reported together."""
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    mode = mode_of(source.get("defaultMode"), DEFAULT_MODE)
    out: dict[str, FileProjection] = {}
    errors: list[str] = []
    for src in source.get("sources") or []:
        try:
            if src.get("secret") is not None:
                s = src["secret"]
                obj = await get("Secret", ns, str(s.get("name", "")))
                out.update(secret.payload(s, obj, name_key="name", default_mode=mode))
            elif src.get("configMap") is not None:
                c = src["configMap"]
                obj = await get("ConfigMap", ns, str(c.get("name", "")))
                out.update(configmap.payload(c, obj, default_mode=mode))
            elif src.get("downwardAPI") is not None:
                out.update(downwardapi.payload(src["downwardAPI"], pod, default_mode=mode))
            elif src.get("serviceAccountToken") is not None:
                t = src["serviceAccountToken"]
                tok: Token = await tokens.token(pod, t)
                # With an fsGroup or fsUser the token is for its owner only, as upstream.
                tmode = 0o600 if fs_user is not None or fs_group is not None else mode
                out[str(t.get("path") or "token")] = FileProjection(tok.value.encode(), tmode, fs_user)
            else:
                kinds = ", ".join(k for k in src if src.get(k) is not None) or "empty"
                errors.append(f"unsupported projected volume source: {kinds}")
        except SetupError as e:
            errors.append(str(e))
    if errors:
        raise SetupError(aggregate(errors))
    return out
