"""Strategic merge patch (``application/strategic-merge-patch+json``) for built-in kinds.

Follows apimachinery's ``strategicpatch.StrategicMergeMapPatch`` as the API server runs
it (parallel deletion lists merged, unmatched nulls ignored):

* ``null`` deletes a key; maps merge recursively.
* Lists whose field has ``patchStrategy=merge`` merge: maps by their merge key, scalars
  as a set.  Every other list is replaced.  After a merge the items named in the patch
  keep the patch's order and the others keep their live order (new items go first
  unless ``$setElementOrder`` says otherwise — as upstream).
* Directives: ``$patch: replace|delete`` in maps and list items, ``$setElementOrder/<l>``,
  ``$deleteFromPrimitiveList/<l>``, ``$retainKeys``.  None of them is ever stored.

Errors carry upstream's wording and codes (``interpretStrategicMergePatchError``):
malformed directives are 400, lists of lists 422; the rest (an unknown ``$patch``, a
missing merge key, a ``$setElementOrder`` that does not match), which upstream answers
500 with an empty reason, is 400 here: a request must never cause a 5xx.
"""
from __future__ import annotations

import copy
from typing import Any

from kubelite.api import errors
from kubelite.api.errors import status_error
from kubelite.api.patch.patchmeta import ListOf, Node, child, schema_for

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList"

_ACCEPTED_WITHOUT_SMP = ("application/json-patch+json", "application/merge-patch+json",
                         "application/apply-patch+yaml")


class _BadRequest(Exception):
    """A patch-format error upstream maps to 400."""


class _Unprocessable(Exception):
    """A patch error upstream maps to 422."""


def strategic_merge_patch(original: dict, patch: Any, kind: str, api_version: str) -> dict:
    """Apply a strategic merge patch to a copy of ``original``; raise StatusError on failure."""
    schema = schema_for(kind, api_version)
    if schema is None:  # CRDs and unknown kinds have no patch metadata upstream either
        raise errors.unsupported_media_type("application/strategic-merge-patch+json",
                                            _ACCEPTED_WITHOUT_SMP)
    if not isinstance(patch, dict):
        raise errors.bad_request("invalid JSON document")
    try:
        return _merge_map(copy.deepcopy(original), copy.deepcopy(patch), schema)
    except _BadRequest as e:
        raise errors.bad_request(str(e)) from None
    except _Unprocessable as e:
        raise status_error(422, "Invalid", "the server rejected our request due to an error in our request", {}) from e
    except (ValueError, TypeError) as e:
        # Upstream's patcher passes these on as plain errors, which its API server
        # answers 500 with no reason; they come from the request, so here they are 400.
        raise errors.bad_request(str(e)) from None


def strip_directives(value: Any) -> Any:
    """Drop every SMP directive from a value (maps carrying ``$patch`` vanish)."""
    kept, keep = _remove_directives(copy.deepcopy(value))
    return kept if keep else None


# --- maps -----------------------------------------------------------------------------

def _merge_map(original: dict, patch: dict, schema: Node) -> dict:
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return strip_directives(patch)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise ValueError(f"unknown patch type: {directive} in map: {_go(patch)}")
    _apply_retain_keys(original, patch)
    _apply_set_element_order(original, patch, schema)

    for k, pv in list(patch.items()):
        delete_list = False
        if k.startswith(DELETE_PRIMITIVE + "/"):
            k = _directive_key(k, DELETE_PRIMITIVE, "invalid patch format of primitive list")
            delete_list = True
        if pv is None:
            original.pop(k, None)
            continue
        if k not in original or type(original[k]) is not type(pv) or not isinstance(pv, (dict, list)):
            if not delete_list:
                _set_or_drop(original, k, _clean_new(pv))
            continue
        sub = child(schema, k)
        if isinstance(pv, dict):
            original[k] = _merge_map(original[k], pv, sub)
        else:
            original[k] = _merge_list_field(original[k], pv, sub, delete_list)
    return original


def _apply_retain_keys(original: dict, patch: dict) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise _BadRequest("invalid patch format of retainKeys")
    keep = set(r for r in retain if isinstance(r, str))
    for k, v in patch.items():
        if v is None or k.startswith((DELETE_PRIMITIVE + "/", SET_ORDER + "/")):
            continue
        if k not in keep:
            raise _BadRequest("invalid patch format of retainKeys")
    for k in list(original):
        if k not in keep:
            del original[k]


def _apply_set_element_order(original: dict, patch: dict, schema: Node) -> None:
    for key in [k for k in patch if k.startswith(SET_ORDER + "/")]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise ValueError(f"expected a []interface {{}}, but received a {_go_type(order)}")
        field = _directive_key(key, SET_ORDER, "invalid patch format of setElementOrder list")
        meta = _list_meta(child(schema, field))
        merge_key = meta.merge_key if meta else ""
        orig_list = _present_list(original, field)
        patch_list = _present_list(patch, field)
        _validate_order(patch_list or [], order, merge_key)
        if patch_list is None:
            if orig_list is None:
                continue
            merged = orig_list
        elif orig_list is None:
            merged, keep = _remove_directives(patch_list)
            if not keep:
                continue
        else:
            merged = _merge_list_field(orig_list, patch_list, child(schema, field), False)
        if merge_key:
            chosen, server_only = _partition_maps(merged, order, merge_key)
        else:
            chosen, server_only = _partition_scalars(merged, order)
        original[field] = _normalize_order(chosen, server_only, order, orig_list or [], merge_key)
        patch.pop(field, None)


def _present_list(obj: dict, field: str) -> list | None:
    """``obj[field]`` when present (it must be a list), None when absent."""
    if field not in obj:
        return None
    value = obj[field]
    if not isinstance(value, list):
        raise ValueError(f"expected a []interface {{}}, but received a {_go_type(value)}")
    return value


def _validate_order(patch_list: list, order: list, merge_key: str) -> None:
    if not order or not patch_list:
        return
    items = [i for i in patch_list if not _is_delete(i)] if merge_key else patch_list
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        if isinstance(items[pi], dict) and DIRECTIVE in items[pi]:
            pi += 1
            continue
        if _key_equal(items[pi], order[oi], merge_key):
            pi += 1
        oi += 1
    if pi < len(items) and oi >= len(order):
        raise ValueError(f"The order in patch list:\n{_go(patch_list)}\n doesn't match "
                         f"{SET_ORDER} list:\n{_go(order)}\n")


# --- lists ----------------------------------------------------------------------------

def _list_meta(node: Node) -> ListOf | None:
    return node if isinstance(node, ListOf) else None


def _merge_list_field(original: list, patch: list, node: Node, delete_list: bool) -> list:
    meta = _list_meta(node)
    if not delete_list and not (meta and meta.merge):
        return _clean_new(patch)
    return _merge_list(original, patch, meta.item if meta else None,
                       meta.merge_key if meta else "", delete_list)


def _merge_list(original: list, patch: list, item_schema: Node, merge_key: str,
                delete_list: bool) -> list:
    if not original and not patch:
        return original
    is_map = _element_kind(original, patch)
    if not is_map:
        if delete_list:
            return [v for v in original if not any(_same(v, d) for d in patch)]
        merged = _dedupe(original + patch)
        chosen, server_only = _partition_scalars(merged, patch)
        return _normalize_order(chosen, server_only, patch, original, "")
    if not merge_key:
        raise ValueError("cannot merge lists without merge key")
    original, patch = _special_elements(original, patch, merge_key)
    merged = list(original)
    for item in patch:
        if merge_key not in item:
            raise ValueError(f"map: {_go(item)} does not contain declared merge key: {merge_key}")
        idx = _find(merged, merge_key, item[merge_key])
        if idx is None:
            merged.append(_clean_new(item))
        else:
            merged[idx] = _merge_map(merged[idx], item, item_schema)
    chosen, server_only = _partition_maps(merged, patch, merge_key)
    return _normalize_order(chosen, server_only, patch, original, merge_key)


def _special_elements(original: list, patch: list, merge_key: str) -> tuple[list, list]:
    """Handle ``$patch`` items: delete by key, or replace the whole list."""
    rest, replace = [], False
    for item in patch:
        directive = item.get(DIRECTIVE) if isinstance(item, dict) else None
        if directive is None:
            rest.append(item)
        elif directive == "delete":
            if merge_key not in item:
                raise ValueError(f"map: {_go(item)} does not contain declared merge key: {merge_key}")
            original = [o for o in original if not (isinstance(o, dict) and merge_key in o
                                                    and _same(o[merge_key], item[merge_key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":  # upstream rejects this; merging is what it means
            rest.append({k: v for k, v in item.items() if k != DIRECTIVE})
        else:
            raise ValueError(f"unknown patch type: {directive} in map: {_go(item)}")
    if replace:
        return [_clean_new(i) for i in rest], []
    return original, rest


def _normalize_order(chosen: list, server_only: list, patch_order: list, server_order: list,
                     merge_key: str) -> list:
    """Patch items in patch order, live-only items in live order, interleaved by live order."""
    def idx(lst: list, v: Any) -> int:
        val = _key_of(v, merge_key)
        for i, o in enumerate(lst):
            if _same(_key_of(o, merge_key), val):
                return i
        return -1

    def sort_by(items: list, order: list) -> list:
        deletes = [i for i in items if merge_key and _is_delete(i)]
        items = [i for i in items if not (merge_key and _is_delete(i))]
        return sorted(items, key=lambda v: (idx(order, v) < 0, idx(order, v))) + deletes

    left, right = sort_by(server_only, server_order), sort_by(chosen, patch_order)
    out: list = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            take_left = False
        elif j >= len(right):
            take_left = True
        else:
            li, ri = idx(server_order, left[i]), idx(server_order, right[j])
            take_left = li >= 0 and ri >= 0 and li < ri
        if take_left:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out


def _partition_maps(merged: list, by: list, merge_key: str) -> tuple[list, list]:
    chosen: list = []
    server_only: list = []
    for v in merged:
        if not isinstance(v, dict):
            raise ValueError(f"expected a map[string]interface {{}}, but received a {_go_type(v)}")
        if merge_key not in v:
            raise ValueError(f"map: {_go(v)} does not contain declared merge key: {merge_key}")
        (chosen if _find(by, merge_key, v[merge_key]) is not None else server_only).append(v)
    return chosen, server_only


def _partition_scalars(merged: list, by: list) -> tuple[list, list]:
    chosen = [v for v in merged if any(_same(v, b) for b in by)]
    server_only = [v for v in merged if not any(_same(v, b) for b in by)]
    return chosen, server_only


def _element_kind(*lists: list) -> bool:
    """True for lists of maps; rejects lists of lists and mixed lists as upstream."""
    kinds = set()
    for lst in lists:
        for v in lst:
            if isinstance(v, list):
                raise _Unprocessable("lists of lists are not supported")
            kinds.add(isinstance(v, dict))
    if len(kinds) > 1:
        raise ValueError("list has mixed types: maps and scalars")
    return kinds == {True}


# --- helpers --------------------------------------------------------------------------

def _directive_key(key: str, prefix: str, err: str) -> str:
    head, _, rest = key.partition("/")
    if head != prefix or not rest:
        raise _BadRequest(err)
    return rest


def _clean_new(value: Any) -> Any:
    """A patch value with nothing to merge into: drop nulls, then directives."""
    _discard_nulls(value)
    kept, keep = _remove_directives(value)
    return kept if keep else _DROP


_DROP = object()


def _set_or_drop(target: dict, key: str, value: Any) -> None:
    if value is _DROP:
        target.pop(key, None)
    else:
        target[key] = value


def _discard_nulls(value: Any) -> None:
    if isinstance(value, dict):
        for k in [k for k, v in value.items() if v is None]:
            del value[k]
        for v in value.values():
            _discard_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _discard_nulls(v)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """Upstream's removeDirectives, plus dropping ``$…`` keys the Go decoder would ignore."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        out = {}
        for k, v in value.items():
            if k.startswith("$"):
                continue
            nv, keep = _remove_directives(v)
            if keep:
                out[k] = nv
        return out, True
    if isinstance(value, list):
        out_list = []
        for v in value:
            nv, keep = _remove_directives(v)
            if keep:
                out_list.append(nv)
        return out_list, True
    return value, True


def _is_delete(item: Any) -> bool:
    return isinstance(item, dict) and item.get(DIRECTIVE) == "delete"


def _key_of(v: Any, merge_key: str) -> Any:
    if not merge_key:
        return v
    return v.get(merge_key) if isinstance(v, dict) else None


def _key_equal(a: Any, b: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(a, b)
    if not isinstance(a, dict) or not isinstance(b, dict):
        raise ValueError("expected a map[string]interface {}")
    for m in (a, b):
        if merge_key not in m:
            raise ValueError(f"map: {_go(m)} does not contain declared merge key: {merge_key}")
    return _same(a[merge_key], b[merge_key])


def _find(items: list, merge_key: str, value: Any) -> int | None:
    for i, v in enumerate(items):
        if not isinstance(v, dict):
            raise ValueError(f"value for key {i} is not a map")
        if merge_key in v and _same(v[merge_key], value):
            return i
    return None


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _dedupe(values: list) -> list:
    out: list = []
    for v in values:
        if not any(_same(v, o) for o in out):
            out.append(v)
    return out


def _go(v: Any) -> str:
    """Go's %v rendering of decoded JSON, for error messages."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go(i) for i in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _go_type(v: Any) -> str:
    return {dict: "map[string]interface {}", list: "[]interface {}", str: "string",
            bool: "bool", int: "int64", float: "float64"}.get(type(v), "<nil>")


__all__ = ["strategic_merge_patch", "strip_directives"]
