"""JSON patch (RFC 6902, ``application/json-patch+json``).

Operations ``add``, ``remove``, ``replace``, ``move``, ``copy`` and ``test`` on JSON
pointers (``~1`` is ``/``, ``~0`` is ``~``; ``-`` appends to an array; negative indices
count from the end, as the evanphx/json-patch v4 library upstream uses allows).

Upstream answers a malformed patch document with 400, more than 10000 operations with
413, and *any* failure while applying (missing path, failed ``test``…) with a bare 422
whose message is the generic "the server rejected our request due to an error in our
request" — the detailed reason is kept as the exception's ``__cause__``, for logs only.
"""
from __future__ import annotations

import copy
from typing import Any

from kubelite.api import errors
from kubelite.api.errors import status_error
from kubelite.api.patch.fieldset import json_equal

MAX_OPERATIONS = 10000


class PatchApplyError(Exception):
    """Why an operation could not be applied (upstream's library message)."""


def json_patch(original: dict, ops: Any) -> dict:
    """Apply RFC 6902 operations to a copy of ``original``; raise StatusError on failure."""
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        kind = "object" if isinstance(ops, dict) else "array" if isinstance(ops, list) else "value"
        raise errors.bad_request(f"json: cannot unmarshal {kind} into Go value of type jsonpatch.Patch")
    if len(ops) > MAX_OPERATIONS:
        raise errors.too_large(f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(ops)}")
    doc: Any = copy.deepcopy(original)
    try:
        for op in ops:
            doc = _apply(doc, op)
    except PatchApplyError as e:
        # The client sees upstream's generic message; the library's reason stays as the cause.
        raise status_error(422, "Invalid", "the server rejected our request due to an error in our request", {}) from e
    if not isinstance(doc, dict):
        raise status_error(422, "Invalid", "the server rejected our request due to an error in our request", {})
    return doc


def parse_pointer(path: str) -> list[str]:
    """Split a JSON pointer into unescaped reference tokens."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchApplyError(f"JSON pointer must be empty or start with a \"/\": {path}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _apply(doc: Any, op: dict) -> Any:
    kind = op.get("op")
    if kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise PatchApplyError(f"Unexpected kind: {kind}")
    if "path" not in op or not isinstance(op["path"], str):
        raise PatchApplyError(f"{kind} operation missing path")
    path = parse_pointer(op["path"])
    if kind in ("add", "replace", "test") and "value" not in op:
        raise PatchApplyError(f"{kind} operation missing value")
    if kind == "add":
        return _add(doc, path, copy.deepcopy(op["value"]))
    if kind == "remove":
        _remove(doc, path)
        return doc
    if kind == "replace":
        if not path:
            return copy.deepcopy(op["value"])
        parent, key = _parent(doc, path, "replace")
        _get(parent, key, "replace")
        _put(parent, key, copy.deepcopy(op["value"]))
        return doc
    if kind == "test":
        current = _lookup(*_parent(doc, path, "test")) if path else doc
        if not json_equal(current, op["value"]):
            raise PatchApplyError(f"testing value {op['path']} failed: test failed")
        return doc
    if "from" not in op or not isinstance(op["from"], str):
        raise PatchApplyError(f"{kind} operation missing from")
    src = parse_pointer(op["from"])
    sparent, skey = _parent(doc, src, kind)
    value = copy.deepcopy(_get(sparent, skey, kind))
    if kind == "move":
        _remove(doc, src)
    return _add(doc, path, value)


def _parent(doc: Any, path: list[str], kind: str) -> tuple[Any, str]:
    if not path:
        raise PatchApplyError(f"{kind} operation does not apply: doc is missing path")
    cur = doc
    for token in path[:-1]:
        nxt = _lookup(cur, token)
        if nxt is None or not isinstance(nxt, (dict, list)):
            raise PatchApplyError(f"{kind} operation does not apply: doc is missing path: \"/{'/'.join(path)}\"")
        cur = nxt
    if not isinstance(cur, (dict, list)):
        raise PatchApplyError(f"{kind} operation does not apply: doc is missing path")
    return cur, path[-1]


def _lookup(container: Any, token: str) -> Any:
    """The child at ``token`` or None when absent."""
    if isinstance(container, dict):
        return container.get(token)
    if isinstance(container, list):
        try:
            i = _index(container, token, len(container) - 1)
        except PatchApplyError:
            return None
        return container[i]
    return None


def _index(lst: list, token: str, limit: int) -> int:
    try:
        i = int(token)
    except ValueError:
        raise PatchApplyError(f"Unable to access invalid index: {token}") from None
    size = limit + 1
    if i > limit or i < -size:
        raise PatchApplyError(f"Unable to access invalid index: {i}")
    return i + size if i < 0 else i


def _get(container: Any, key: str, kind: str) -> Any:
    if isinstance(container, dict):
        if key not in container:
            raise PatchApplyError(f"{kind} operation does not apply: doc is missing key: {key}")
        return container[key]
    return container[_index(container, key, len(container) - 1)]


def _put(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    else:
        container[_index(container, key, len(container) - 1)] = value


def _add(doc: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent, key = _parent(doc, path, "add")
    if isinstance(parent, dict):
        parent[key] = value
    elif key == "-":
        parent.append(value)
    else:
        parent.insert(_index(parent, key, len(parent)), value)
    return doc


def _remove(doc: Any, path: list[str]) -> None:
    parent, key = _parent(doc, path, "remove")
    if isinstance(parent, dict):
        if key not in parent:
            raise PatchApplyError(f"Unable to remove nonexistent key: {key}: missing value")
        del parent[key]
    else:
        del parent[_index(parent, key, len(parent) - 1)]
