"""JSON merge patch (RFC 7386, ``application/merge-patch+json``).

Objects merge recursively, ``null`` deletes a key, everything else (lists included)
replaces.  A patch that is not an object replaces the whole document, as the RFC says;
upstream then fails to decode it into the kind, which we report the same way (422).
"""
from __future__ import annotations

import copy
from typing import Any

from kubelite.api import errors
from kubelite.api.errors import Cause


def merge_patch_value(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch(target, patch) on plain JSON values. ``target`` is left as it was:
    the maps the patch goes into are copied, the rest of the result is shared with it (a
    deep copy per level made a status patch copy the whole object several times)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch_value(result.get(k), v)
    return result


def json_merge_patch(original: dict, patch: Any) -> dict:
    """Apply a merge patch to ``original`` (unchanged; the result shares what the patch does
    not touch with it); the result must still be an object."""
    if patch is None:  # evanphx/json-patch rejects a null patch document
        raise errors.bad_request("Invalid JSON Patch")
    result = merge_patch_value(original, patch)
    if not isinstance(result, dict):
        raise errors.invalid("", "", "", [Cause(
            "FieldValueInvalid",
            f"Invalid value: {_quote(result)}: json: cannot unmarshal {_json_kind(result)} "
            "into Go value of type map[string]interface {}", "patch")])
    return result


def _quote(v: Any) -> str:
    import json
    return json.dumps(json.dumps(v, separators=(",", ":")))


def _json_kind(v: Any) -> str:
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "string"
