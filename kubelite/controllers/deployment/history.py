"""Revision history of a Deployment: the pod-template-hash and old-ReplicaSet cleanup.

Each distinct pod template gets one ReplicaSet named ``<deployment>-<hash>``.  The hash
is upstream's recipe in shape: FNV-1a (32 bit) over a deterministic printing of the
template, then the collisionCount (little-endian, 8 bytes) when set, and the decimal
sum re-spelled in the vowel-free alphabet (rand.SafeEncodeString).  Upstream prints the
Go struct with spew, which a dict cannot reproduce; we print canonical JSON instead, so
our hashes are stable but not equal to a real cluster's.  A name clash with a foreign
ReplicaSet is resolved by bumping status.collisionCount, exactly as upstream.

Old ReplicaSets are the rollback history; ``cleanup_deployment`` keeps at most
spec.revisionHistoryLimit of them, deleting the oldest revisions that are fully scaled
down and settled.
"""
from __future__ import annotations

import struct
from typing import Any

import orjson

from kubelite.api import meta
from kubelite.client.errors import NotFound
from kubelite.controllers.deployment import util
from kubelite.controllers.deployment.context import DeploymentContext

Obj = dict[str, Any]

_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv32a(data: bytes, h: int = _FNV_OFFSET) -> int:
    """32-bit FNV-1a."""
    for b in data:
        h ^= b
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """rand.SafeEncodeString: each character mapped into the vowel-free alphabet."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in s)


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """The pod-template-hash of a template (plus collisionCount when not None)."""
    data = orjson.dumps(template or {}, option=orjson.OPT_SORT_KEYS)
    h = fnv32a(data)
    if collision_count is not None:
        h = fnv32a(struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0\0\0\0", h)
    return safe_encode(str(h))


async def cleanup_deployment(dc: DeploymentContext, old_rss: list[Obj], d: Obj) -> None:
    """Delete the oldest old RSs beyond revisionHistoryLimit (only idle, settled ones)."""
    if not util.has_revision_history_limit(d):
        return
    alive = [rs for rs in old_rss if rs is not None and not meta.is_deleting(rs)]
    diff = len(alive) - int(d["spec"]["revisionHistoryLimit"])
    if diff <= 0:
        return
    for rs in util.by_revision(alive)[:diff]:
        # Still has pods, still wants pods, or its controller has not caught up: keep it.
        if (util.status_int(rs, "replicas") != 0 or util.replicas(rs) != 0
                or int(rs["metadata"].get("generation") or 0) > util.status_int(rs, "observedGeneration")):
            continue
        try:
            await dc.rs_client.delete(meta.name(rs), meta.namespace(rs))
        except NotFound:
            pass
