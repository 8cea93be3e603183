"""Server-side apply (``application/apply-patch+yaml``).

Mirrors structured-merge-diff's ``Updater.Apply`` as the API server wraps it:

1. the applied configuration is merged into the live object (maps merge, list-maps and
   sets merge by key/value, atomic values are replaced);
2. the manager's new set is exactly the paths its configuration sets;
3. paths it applied last time and no longer applies are removed from the object,
   unless some manager (itself included) still owns them;
4. paths that changed and that another manager owns are conflicts: a 409 unless
   ``force``, in which case the other managers lose them.

An object that exists but has no managedFields first gets a "before-first-apply"
Update manager owning everything in it, so fields set without apply are never pruned
and still conflict, as upstream.  Not done: the client-side-apply interop of upstream's
last-applied managers (kubectl migrates with csaupgrade itself before applying).
"""
from __future__ import annotations

import copy
import json
from typing import Any

from kubelite.api import errors
from kubelite.api.errors import StatusError, status_error
from kubelite.api.patch import fieldset as fs
from kubelite.api.patch import managedfields as mf
from kubelite.api.patch.patchmeta import ListOf, Node, child, schema_for, zero_object


def apply_patch(live: dict | None, applied: dict, *, manager: str, force: bool, kind: str,
                api_version: str, now: str) -> dict:
    """Apply ``applied`` for ``manager`` to ``live`` (None: create) and return the new object."""
    _check_applied(applied, kind, api_version, manager)
    schema = schema_for(kind, api_version)
    base: dict[str, Any]
    if live is None:
        base = {"apiVersion": api_version, "kind": kind, "metadata": {}}
        compare_base = zero_object(kind, api_version)
        managed: mf.Managed = {}
    else:
        base = copy.deepcopy(live)
        compare_base = live
        managed = mf.decode_or_empty((live.get("metadata") or {}).get("managedFields"))
        if not managed:
            mf.record_update(managed, zero_object(kind, api_version), live,
                             manager="before-first-apply", api_version=api_version, now=None)
    base.setdefault("metadata", {}).pop("managedFields", None)
    config = copy.deepcopy(applied)

    try:
        applied_set = fs.to_field_set(config, schema) - mf.STRIPPED
        merged = merge(base, config, schema)
    except fs.KeyError_ as e:
        # Upstream answers this 500 (a plain error); it is the request's fault, so 400.
        raise errors.bad_request(f"failed to create typed patch object ({api_version}, Kind={kind}): {e}") from None
    entry = mf.Entry(manager, "Apply", api_version)
    last = managed.get(entry.key)
    previous_time = last.time if last else None
    entry.fields = applied_set
    managed[entry.key] = entry
    if last is not None and last.fields:
        merged = _prune(merged, managed, last.fields, schema)

    cmp = fs.compare(mf.without_meta(compare_base), mf.without_meta(merged), schema)
    conflicts = mf.take_ownership(managed, entry.key, cmp, conflicts_ok=force)
    if conflicts and not force:
        raise conflict_error(managed, conflicts)
    changed = live is None or not fs.json_equal(mf.without_meta(live), mf.without_meta(merged))
    entry.time = now if changed else previous_time
    if not entry.fields:
        managed.pop(entry.key, None)
    mf.store(merged, managed)
    return merged


def _check_applied(applied: Any, kind: str, api_version: str, manager: str) -> None:
    if not manager:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", [errors.Cause(
            "FieldValueRequired", "Required value: is required for apply patch", "fieldManager")])
    if not isinstance(applied, dict):
        raise errors.bad_request("error decoding patch: json: cannot unmarshal into Go value of type map[string]interface {}")
    if applied.get("apiVersion") != api_version:
        raise errors.bad_request(f"Incorrect version specified in apply patch. Specified patch version: "
                                 f"{applied.get('apiVersion', '')}, expected: {api_version}")
    if applied.get("kind") != kind:
        raise errors.bad_request(f"Incorrect kind specified in apply patch. Specified patch kind: "
                                 f"{applied.get('kind', '')}, expected: {kind}")
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")


# --- merge ----------------------------------------------------------------------------

def merge(lhs: Any, rhs: Any, node: Node) -> Any:
    """Merge an applied value (rhs) into a live one (lhs), structured-merge-diff style."""
    if rhs is None:
        return None
    if fs.is_atomic(node, rhs) or type(lhs) is not type(rhs):
        return copy.deepcopy(rhs)
    if isinstance(rhs, dict):
        out = dict(lhs)
        for k, v in rhs.items():
            out[k] = merge(lhs[k], v, child(node, k)) if k in lhs else copy.deepcopy(v)
        return {k: v for k, v in out.items() if not (v is None and k in rhs)}
    # is_atomic() passes a list through only under a non-atomic ListOf node.
    assert isinstance(node, ListOf)
    return _merge_items(lhs, rhs, node)


def _merge_items(lhs: list, rhs: list, node: ListOf) -> list:
    """Keyed list merge keeping live order for live-only items and applied order for shared ones."""
    lpes = [fs.item_pe(node, v, i) for i, v in enumerate(lhs)]
    rpes = [fs.item_pe(node, v, i) for i, v in enumerate(rhs)]
    lmap = {pe: v for pe, v in reversed(list(zip(lpes, lhs, strict=True)))}
    rmap = {pe: v for pe, v in reversed(list(zip(rpes, rhs, strict=True)))}
    shared = [pe for pe in dict.fromkeys(rpes) if pe in lmap]
    item = fs.item_node(node)
    out, done = [], set()
    nxt = shared.pop(0) if shared else None
    li = ri = 0
    while li < len(lpes) or ri < len(rpes):
        if li < len(lpes) and ri < len(rpes):
            pe = lpes[li]
            if pe == rpes[ri]:
                if pe not in done:
                    out.append(merge(lmap[pe], rmap[pe], item))
                    done.add(pe)
                li += 1
                ri += 1
                nxt = shared.pop(0) if shared else None
                continue
            if pe in rmap and nxt is not None and nxt != pe:
                li += 1
                continue
        if li < len(lpes):
            pe = lpes[li]
            if pe not in rmap:
                out.append(copy.deepcopy(lhs[li]))
                li += 1
                continue
            if pe in done:
                li += 1
                continue
        if ri < len(rpes):
            pe = rpes[ri]
            if pe not in done:
                out.append(merge(lmap[pe], rmap[pe], item) if pe in lmap else copy.deepcopy(rmap[pe]))
                done.add(pe)
            ri += 1
            if nxt is not None and nxt == pe:
                nxt = shared.pop(0) if shared else None
    return out


# --- prune ----------------------------------------------------------------------------

def _prune(merged: dict, managed: mf.Managed, last: set, schema: Node) -> dict:
    """Remove what the applier owned before, owns no longer and nobody else owns."""
    owned: set = set()
    for entry in managed.values():
        owned |= entry.fields
    owned = fs.ensure_named(owned, schema)
    present = fs.ensure_named(fs.to_field_set(merged, schema), schema)
    doomed = (present & fs.ensure_named(last, schema)) - owned
    return remove_paths(merged, doomed, schema)


def remove_paths(value: Any, paths: set, node: Node, prefix: tuple = ()) -> Any:
    """A copy of ``value`` without the given paths (and their subtrees)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            p = prefix + (fs.field(k),)
            if p in paths:
                continue
            out[k] = remove_paths(v, paths, child(node, k), p)
        return out
    if isinstance(value, list) and isinstance(node, ListOf) and node.list_type != "atomic":
        out_list = []
        for i, item in enumerate(value):
            p = prefix + (fs.item_pe(node, item, i),)
            if p not in paths:
                out_list.append(remove_paths(item, paths, node.item, p))
        return out_list
    return value


# --- conflicts ------------------------------------------------------------------------

def _print_manager(key: tuple) -> str:
    manager, operation, version, subresource = key
    out = json.dumps(manager)
    if subresource:
        out += f" with subresource {json.dumps(subresource)}"
    if operation == "Update":
        out += f" using {version}"
    return out


def conflict_error(managed: mf.Managed, conflicts: dict[tuple, set]) -> StatusError:
    """409 Conflict shaped as upstream's NewApplyConflict."""
    items = [(key, path) for key in sorted(conflicts, key=lambda k: json.dumps(k))
             for path in fs.iterate(conflicts[key])]
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {_print_manager(k)}",
               "field": fs.path_string(p)} for k, p in items]
    if len(items) == 1:
        key, path = items[0]
        message = f"Apply failed with 1 conflict: conflict with {_print_manager(key)}: {fs.path_string(path)}"
    else:
        lines = []
        for key in sorted(conflicts, key=lambda k: json.dumps(k)):
            lines.append(f"conflicts with {_print_manager(key)}:")
            lines.extend(f"- {fs.path_string(p)}" for p in fs.iterate(conflicts[key]))
        message = f"Apply failed with {len(items)} conflicts: " + "\n".join(lines)
    return status_error(409, "Conflict", message, {"causes": causes})
