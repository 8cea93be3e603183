"""metadata.managedFields bookkeeping for create/update/patch (operation "Update").

Mirrors apimachinery's ``pkg/util/managedfields`` field manager chain:

* managers are keyed by manager + operation + apiVersion (Update only) + subresource;
* an update compares the old object (a create: the kind's zero value) with the new
  one; every added or modified path becomes the updater's and is taken away from every
  other manager, removed paths are dropped from everyone;
* the updater's entry gets ``time`` = now only when it took some field; object
  identity fields (name, uid, resourceVersion, …) are never owned;
* an object that exists without managedFields stays untracked (upstream's
  skip-non-applied rule); ``managedFields: []`` or ``[{}]`` in a request resets them;
* at most 10 Update managers are kept; the oldest merge into "ancient-changes".

Either managedFields is correct or absent: on any decoding problem the live object's
entries are kept, as upstream's ``UpdateNoErrors`` does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubelite.api.patch import fieldset as fs
from kubelite.api.patch.patchmeta import Node, schema_for, zero_object

MAX_UPDATE_MANAGERS = 10

# Paths nobody owns (upstream's stripMetaManager).
STRIPPED: frozenset = frozenset({
    (("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"),),
    *((("f", "metadata"), ("f", n)) for n in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
        "generation", "managedFields", "resourceVersion")),
})


@dataclass
class Entry:
    """One decoded managedFields entry."""

    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    time: str | None = None
    fields: set = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Upstream's manager identifier: appliers are not split by apiVersion."""
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def to_json(self) -> dict:
        """The metav1.ManagedFieldsEntry dict."""
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                               "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = encode_fields(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


Managed = dict  # key -> Entry


# Field sets repeat: every pod of a ReplicaSet has the same entries for its controller and
# its kubelet, and most writes leave most entries as they were. Both directions are kept
# for recent sets, so an unchanged entry costs a lookup instead of a parse or a re-encode.
# The cached FieldsV1 dicts end up inside stored objects, which nobody changes in place.
_CACHE_MAX = 4096
_DECODED: dict[bytes, frozenset] = {}
_ENCODED: dict[frozenset, dict] = {}


def decode_fields(raw: Any) -> set:
    """fs.decode_fields, remembered by the entry's JSON text."""
    if not isinstance(raw, dict):
        return fs.decode_fields(raw)
    try:
        k = orjson.dumps(raw)
    except (TypeError, orjson.JSONEncodeError):
        return fs.decode_fields(raw)
    hit = _DECODED.get(k)
    if hit is None:
        hit = frozenset(fs.decode_fields(raw))
        if len(_DECODED) >= _CACHE_MAX:
            _DECODED.clear()
        _DECODED[k] = hit
    return set(hit)


def encode_fields(fields: set) -> dict:
    """fs.encode_fields, remembered by the set (the result must not be changed in place)."""
    k = frozenset(fields)
    hit = _ENCODED.get(k)
    if hit is None:
        hit = fs.encode_fields(k)
        if len(_ENCODED) >= _CACHE_MAX:
            _ENCODED.clear()
        _ENCODED[k] = hit
    return hit


def decode(entries: Any) -> Managed:
    """Decode metadata.managedFields; raises ValueError when malformed."""
    out: Managed = {}
    for e in entries or []:
        if not isinstance(e, dict) or e.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise ValueError("unsupported managedFields entry")
        entry = Entry(e.get("manager", ""), e.get("operation", ""), e.get("apiVersion", ""),
                      e.get("subresource", ""), e.get("time"),
                      decode_fields(e.get("fieldsV1") or {}))
        if entry.operation not in ("Apply", "Update"):
            raise ValueError(f"invalid operation {entry.operation!r}")
        if entry.key in out:
            raise ValueError("duplicate managedFields entry")
        out[entry.key] = entry
    return out


def decode_or_empty(entries: Any) -> Managed:
    """decode(), but an unreadable list counts as no managers."""
    try:
        return decode(entries)
    except (ValueError, TypeError, AttributeError):
        return {}


def encode(managed: Managed) -> list[dict]:
    """Entries sorted as upstream: Apply first, then by time, manager, apiVersion, subresource."""
    entries = [e for e in managed.values() if e.fields]
    entries.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    return [e.to_json() for e in entries]


def store(obj: dict, managed: Managed) -> None:
    """Write managers into obj.metadata.managedFields (absent when there are none)."""
    meta = obj.setdefault("metadata", {})
    encoded = encode(managed)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)


def is_reset(entries: Any) -> bool:
    """``[]`` or ``[{}]`` in a request clears managedFields."""
    return isinstance(entries, list) and (entries == [] or entries == [{}])


def schema_of(obj: dict) -> Node:
    """The merge schema of an object (untyped for unknown kinds)."""
    return schema_for(obj.get("kind", ""), obj.get("apiVersion", ""))


def without_meta(obj: dict) -> dict:
    """A shallow copy without metadata.managedFields, for comparing."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def take_ownership(managed: Managed, taker_key: tuple, cmp: fs.Comparison,
                   conflicts_ok: bool = True) -> dict[tuple, set]:
    """Remove changed paths from every other manager; returns the conflicting paths by manager."""
    changed = cmp.modified | cmp.added
    conflicts: dict[tuple, set] = {}
    for key, entry in managed.items():
        if key == taker_key:
            continue
        clash = entry.fields & changed
        if clash:
            conflicts[key] = clash
    if conflicts and not conflicts_ok:
        return conflicts
    for key, entry in managed.items():
        if key == taker_key:
            continue
        entry.fields -= conflicts.get(key, set())
        entry.fields -= cmp.removed
    for key in [k for k, e in managed.items() if not e.fields]:
        del managed[key]
    return conflicts


def record_update(managed: Managed, old: dict, new: dict, *, manager: str, api_version: str,
                  now: str | None, subresource: str = "", reset: frozenset[str] = frozenset()) -> None:
    """Give ``manager`` (operation Update) the paths that changed from old to new, except under
    the top-level fields in ``reset`` (written by the server's strategy, not by this writer)."""
    schema = schema_of(new)
    cmp = fs.compare(without_meta(old), without_meta(new), schema)
    current = ("", "current-operation", "", "")
    take_ownership(managed, current, cmp)
    taken = {p for p in (cmp.modified | cmp.added) - STRIPPED if not (p and p[0][0] == "f" and p[0][1] in reset)}
    if not taken:
        return
    entry = Entry(manager or "unknown", "Update", api_version, subresource)
    previous = managed.get(entry.key)
    if previous is not None:
        taken |= previous.fields
    entry.fields = taken
    # Upstream's scale handler rebuilds the parent's entry without a timestamp.
    entry.time = None if subresource == "scale" else now
    managed[entry.key] = entry


def cap_update_managers(managed: Managed, limit: int = MAX_UPDATE_MANAGERS) -> None:
    """Fold the oldest Update managers into "ancient-changes" beyond ``limit``."""
    updaters = sorted((k for k, e in managed.items() if e.operation == "Update"),
                      key=lambda k: (managed[k].time or "", json.dumps(k)))
    length = len(updaters)
    first_by_version: dict[str, tuple] = {}
    for key in updaters:
        if length <= limit:
            break
        entry = managed[key]
        bucket = ("ancient-changes", "Update", entry.api_version, "")
        if entry.api_version not in first_by_version:
            first_by_version[entry.api_version] = key
            continue
        if bucket not in managed:
            first = managed.pop(first_by_version[entry.api_version])
            managed[bucket] = Entry("ancient-changes", "Update", entry.api_version,
                                    fields=set(first.fields), time=first.time)
        managed[bucket].fields |= entry.fields
        managed[bucket].time = entry.time
        del managed[key]
        length -= 1


def update_managed_fields(old: dict | None, new: dict, *, manager: str, operation: str = "Update",
                          api_version: str, now: str, subresource: str = "",
                          reset: frozenset[str] = frozenset()) -> None:
    """Record an Update (create/update/patch) in ``new``'s metadata.managedFields, in place."""
    if operation != "Update":
        raise ValueError("update_managed_fields records Update operations; use apply_patch for Apply")
    meta = new.setdefault("metadata", {})
    requested = meta.get("managedFields")
    old_entries = (old or {}).get("metadata", {}).get("managedFields")
    if subresource:
        managed = decode_or_empty(old_entries)
    elif is_reset(requested):
        managed = {}
    else:
        try:
            managed = decode(requested)
        except (ValueError, TypeError, AttributeError):
            managed = {}
        if not managed:
            managed = decode_or_empty(old_entries)
    meta.pop("managedFields", None)
    if not managed and old is not None and (old.get("metadata") or {}).get("uid"):
        return  # an existing object nobody tracks stays untracked
    base = old if old is not None else zero_object(new.get("kind", ""), new.get("apiVersion", ""))
    try:
        record_update(managed, base, new, manager=manager, api_version=api_version, now=now,
                      subresource=subresource, reset=reset)
    except fs.KeyError_:
        if old_entries:  # keep the live entries rather than write wrong ones
            meta["managedFields"] = old_entries
        return
    cap_update_managers(managed)
    store(new, managed)
