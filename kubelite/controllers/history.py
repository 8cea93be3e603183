"""ControllerRevision history shared by the StatefulSet and DaemonSet controllers.

A revision is a snapshot of the owner's pod template, stored as the patch that puts it
back: ``{"spec": {"template": {…, "$patch": "replace"}}}`` (``kubectl rollout undo``
reads it and sends it, as a strategic merge patch, to the owner).  Upstream's recipe:

- the patch is serialised as Go's ``json.Marshal`` of a generic map does (sorted keys,
  no spaces, ``<``, ``>``, ``&`` escaped), so the bytes - and thus the hash - follow the
  template's JSON form;
- the hash is FNV-1 (32 bit; not the FNV-1a of pod-template hashes) of those bytes, then
  of the collisionCount written in decimal, printed in decimal and re-spelled in the
  vowel-free alphabet; the revision is named ``<owner>-<hash>`` (owner name cut to 223
  characters) and labelled ``controller.kubernetes.io/hash``;
- a name taken by a revision with other data bumps the owner's collisionCount.

Revisions are ordered by revision number, then creation time, then name.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import orjson

from kubelite.api import meta
from kubelite.api.resources import CONTROLLERREVISIONS
from kubelite.client.errors import AlreadyExists, Conflict, NotFound
from kubelite.client.protocols import APIClient
from kubelite.controllers.deployment.history import safe_encode

Obj = dict[str, Any]

HASH_LABEL = "controller.kubernetes.io/hash"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
NAME_PREFIX_MAX = 223
API_VERSION = "apps/v1"


# --- the snapshot --------------------------------------------------------------------------

def _go_template(template: Obj) -> Obj:
    """The template as Go would encode it: zero structs that JSON never omits filled in."""
    t = copy.deepcopy(template or {})
    md = t.setdefault("metadata", {})
    md.setdefault("creationTimestamp", None)
    spec = t.setdefault("spec", {})
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            if isinstance(c, dict):
                c.setdefault("resources", {})
    return t


def template_patch(obj: Obj) -> Obj:
    """The revision data of a StatefulSet or DaemonSet: a patch replacing its template."""
    template = _go_template((obj.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def go_json(value: Any) -> bytes:
    """Go's json.Marshal of a decoded map: sorted keys, compact, HTML characters escaped."""
    out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    # Outside strings JSON never holds these characters, so a plain replace is exact.
    return (out.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
            .replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029"))


def fnv32(data: bytes, h: int = _FNV_OFFSET) -> int:
    """32-bit FNV-1 (multiply, then xor)."""
    for b in data:
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
        h ^= b
    return h


def hash_revision(data: Obj, collision_count: int | None) -> str:
    """HashControllerRevision: FNV-1 of the data bytes, then of the collisionCount's decimal
    digits when given, safe-encoded."""
    h = fnv32(go_json(data))
    if collision_count is not None:
        h = fnv32(str(collision_count).encode(), h)
    return safe_encode(str(h))


def revision_name(prefix: str, hash_: str) -> str:
    """ControllerRevisionName: ``<prefix>-<hash>`` with the prefix cut to 223 characters."""
    return f"{prefix[:NAME_PREFIX_MAX]}-{hash_}"


def new_revision(parent: Obj, kind: str, template_labels: dict[str, str] | None, data: Obj,
                 revision: int, collision_count: int | None) -> Obj:
    """NewControllerRevision: labels from the template plus the hash, owned by ``parent``."""
    h = hash_revision(data, collision_count)
    labels = dict(template_labels or {})
    labels[HASH_LABEL] = h
    return {
        "apiVersion": API_VERSION, "kind": "ControllerRevision",
        "metadata": {"name": revision_name(meta.name(parent), h), "namespace": meta.namespace(parent),
                     "labels": labels, "ownerReferences": [meta.new_controller_ref(parent, API_VERSION, kind)]},
        "data": data, "revision": revision,
    }


def template_of(rev: Obj) -> Obj:
    """The pod template a revision stores (ApplyRevision for a template-replacing patch)."""
    t = copy.deepcopy(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    t.pop("$patch", None)
    md = t.get("metadata")
    if isinstance(md, dict) and md.get("creationTimestamp") is None:
        md.pop("creationTimestamp", None)
    return t


# --- ordering and comparison -------------------------------------------------------------

def _cmp(a: Obj, b: Obj) -> int:
    ra, rb = int(a.get("revision") or 0), int(b.get("revision") or 0)
    if ra != rb:
        return -1 if ra < rb else 1
    ta, tb = a["metadata"].get("creationTimestamp") or "", b["metadata"].get("creationTimestamp") or ""
    if ta != tb:
        return -1 if ta < tb else 1
    na, nb = meta.name(a), meta.name(b)
    return (na > nb) - (na < nb)


def sort_revisions(revs: list[Obj]) -> list[Obj]:
    """Oldest first: by revision, then creation time, then name."""
    return sorted(revs, key=functools.cmp_to_key(_cmp))


def next_revision(revs: list[Obj]) -> int:
    """One more than the highest revision number (1 for an empty history)."""
    return max((int(r.get("revision") or 0) for r in revs), default=0) + 1


def equal_revision(a: Obj | None, b: Obj | None) -> bool:
    """EqualRevision: same data (the hash labels are only a shortcut upstream)."""
    if a is None or b is None:
        return a is b
    return go_json(a.get("data")) == go_json(b.get("data"))


def find_equal_revisions(revs: list[Obj], needle: Obj) -> list[Obj]:
    """Every revision whose data equals ``needle``'s, in the given order."""
    return [r for r in revs if equal_revision(r, needle)]


# --- writes --------------------------------------------------------------------------------

class History:
    """Creates, renumbers and deletes ControllerRevisions through the API."""

    def __init__(self, client: APIClient):
        self.revisions = client.resource(CONTROLLERREVISIONS)

    async def create(self, parent: Obj, rev: Obj, collision_count: int) -> tuple[Obj, int]:
        """Create ``rev``; on a name clash with different data, bump collisionCount and retry.

        Returns the stored revision and the (possibly increased) collisionCount."""
        data = rev.get("data")
        while True:
            h = hash_revision(data or {}, collision_count)
            body = copy.deepcopy(rev)
            body["metadata"]["name"] = revision_name(meta.name(parent), h)
            try:
                return await self.revisions.create(body, meta.namespace(parent)), collision_count
            except AlreadyExists:
                existing = await self.revisions.get(body["metadata"]["name"], meta.namespace(parent))
                if go_json(existing.get("data")) == go_json(data):
                    return existing, collision_count
                collision_count += 1

    async def update_revision(self, rev: Obj, revision: int) -> Obj:
        """Give an old revision a new number (a rollback makes it the newest)."""
        cur = rev
        for _ in range(5):
            if int(cur.get("revision") or 0) == revision:
                return cur
            body = copy.deepcopy(cur)
            body["revision"] = revision
            try:
                return await self.revisions.update(body)
            except Conflict:
                cur = await self.revisions.get(meta.name(rev), meta.namespace(rev))
        raise Conflict(409, "Conflict", f"could not renumber ControllerRevision {meta.key(rev)}")

    async def delete(self, rev: Obj) -> None:
        """Delete one revision; one already gone is fine."""
        try:
            await self.revisions.delete(meta.name(rev), meta.namespace(rev))
        except NotFound:
            pass

    async def patch_owner_refs(self, rev: Obj, body: Obj) -> Obj:
        """Adopt or release a revision (used by the claim of the owning controller)."""
        return await self.revisions.patch(meta.name(rev), body, meta.namespace(rev))


def revisions_to_truncate(revs: list[Obj], live: set[str], limit: int) -> list[Obj]:
    """The oldest revisions beyond ``limit`` that neither a pod nor the owner still uses."""
    history = [r for r in sort_revisions(revs) if meta.name(r) not in live]
    if len(history) <= limit:
        return []
    return history[:len(history) - limit]


RevisionFilter = Callable[[Obj], bool]
