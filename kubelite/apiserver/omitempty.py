"""Drop ``false`` from the boolean fields upstream's JSON encoding omits when false.

Upstream decodes a request into Go structs and encodes them again, so a non-pointer
``bool`` tagged ``omitempty`` (Node ``spec.unschedulable``, Pod ``spec.hostNetwork``,
container ``stdin``, volume mount ``readOnly`` …) never comes back as ``false``: it is
absent.  kubelite keeps objects as the JSON the client sent, so the API server strips those
zeros before storing.  Which fields qualify is read from the protobuf schema table
(``protoschema``), which records each field's pointer-ness and ``omitempty``.  Only
booleans are dropped: other zero values (``""``, ``0``) are what our own components read
back with plain indexing, and a stray ``false`` is what clients actually see differ.
"""
from __future__ import annotations

from functools import cache
from typing import Any

from kubelite.api import protoschema as schema

Obj = dict[str, Any]


@cache
def _fields(message: str) -> dict[str, schema.Field]:
    """JSON key -> field of a message, with inlined embedded structs lifted up."""
    msg = schema.message(message)
    out: dict[str, schema.Field] = {}
    for f in msg.fields if msg else ():
        if f.inline:
            out.update(_fields(f.type))
        else:
            out[f.name] = f
    return out


def drop_false_booleans(obj: Obj) -> None:
    """Remove, in place, every omitempty non-pointer boolean that is ``false`` in ``obj``."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return
    name = schema.kind_message(api_version, kind)
    if name is not None:
        _walk(obj, name)


def _droppable(f: schema.Field) -> bool:
    return f.type == "b" and not (f.pointer or f.always or f.repeated or f.map)


@cache
def _holders() -> frozenset[str]:
    """Every message that has, at some depth, a boolean this module drops (fixed point)."""
    held: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name in schema.MESSAGES:
            if name in held or name in schema.SPECIAL:
                continue
            if any(_droppable(f) or f.type in held for f in _fields(name).values()):
                held.add(name)
                changed = True
    return frozenset(held)


@cache
def _relevant(message: str) -> dict[str, schema.Field]:
    """The fields of a message worth visiting: droppable booleans and nested messages that
    can hold one (most of a pod, e.g. its metadata, holds none)."""
    holders = _holders()
    return {key: f for key, f in _fields(message).items() if _droppable(f) or f.type in holders}


def _walk(value: Any, message: str) -> None:
    if not isinstance(value, dict):
        return
    fields = _relevant(message)
    if not fields:
        return
    for key in [k for k in value if k in fields]:
        f = fields[key]
        sub = value[key]
        if sub is None:
            continue
        if f.type == "b":
            if sub is False:
                del value[key]
        elif f.map and isinstance(sub, dict):
            for item in sub.values():
                _walk(item, f.type)
        elif f.repeated and isinstance(sub, list):
            for item in sub:
                _walk(item, f.type)
        elif not f.map and not f.repeated:
            _walk(sub, f.type)
