"""Service-account tokens for projected volumes, as the kubelet's token manager keeps them.

A token is asked for through the TokenRequest API (bound to the pod, with the source's
audience and expirationSeconds) and kept until it needs a refresh: past 80 % of its
lifetime, or older than 24 hours, or expired, each less a small random jitter so the
tokens of many pods do not all renew in the same second.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime

from .base import Obj, SetupError, VolumeAPI

DEFAULT_EXPIRATION = 3600
MAX_TTL = 24 * 3600
MAX_JITTER = 10.0


@dataclass
class Token:
    """A token and the times that decide when it is renewed."""

    value: str
    issued: float      # seconds since the epoch
    expires: float

    def refresh_at(self, jitter: float) -> float:
        """When this token must be replaced."""
        ttl = self.expires - self.issued
        return min(self.expires, self.issued + MAX_TTL - jitter, self.expires - ttl * 0.2 - jitter)


def _epoch(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


class TokenManager:
    """Tokens of one pod, keyed by (ServiceAccount, audience, expiration)."""

    def __init__(self, api: VolumeAPI):
        self.api = api
        self._tokens: dict[tuple[str, str, int], Token] = {}
        self._jitter = random.uniform(0, MAX_JITTER)

    async def token(self, pod: Obj, source: Obj) -> Token:
        """The pod's token for a serviceAccountToken source, requested anew when due."""
        md, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        sa = str(spec.get("serviceAccountName") or "default")
        audience = str(source.get("audience") or "")
        expiration = int(source.get("expirationSeconds") or DEFAULT_EXPIRATION)
        key = (sa, audience, expiration)
        have = self._tokens.get(key)
        now = time.time()
        if have is not None and now < have.refresh_at(self._jitter):
            return have
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"audiences": [audience] if audience else [], "expirationSeconds": expiration,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md.get("name", ""),
                                               "uid": md.get("uid", "")}}}
        try:
            answer = await self.api.request_token(str(md.get("namespace") or "default"), sa, request)
        except Exception as e:  # any API failure is a mount failure, retried by the worker
            raise SetupError(f'failed to fetch token: {getattr(e, "message", None) or e}') from None
        status = answer.get("status") or {}
        value = str(status.get("token") or "")
        if not value:
            raise SetupError("failed to fetch token: the TokenRequest returned no token")
        expires = _epoch(str(status.get("expirationTimestamp") or "")) or now + expiration
        # The lifetime the server granted (it may shorten or lengthen what was asked).
        granted = int((answer.get("spec") or {}).get("expirationSeconds") or expiration)
        tok = Token(value, expires - granted, expires)
        self._tokens[key] = tok
        return tok

    def next_refresh(self) -> float | None:
        """The earliest time one of the kept tokens is due (None: none kept)."""
        if not self._tokens:
            return None
        return min(t.refresh_at(self._jitter) for t in self._tokens.values())
