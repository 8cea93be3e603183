"""Field sets: which paths of an object a manager owns (structured-merge-diff, in Python).

A path is a tuple of path elements: ``("f", name)`` a field, ``("k", ((key, json), …))``
a list-map item, ``("v", json)`` a set item, ``("i", n)`` a positional item.  A set of
paths is what ``metadata.managedFields[].fieldsV1`` encodes (``f:``/``k:``/``v:``/``i:``
keys, ``.`` for "this node itself").

Two walks over typed values are here, mirroring structured-merge-diff:
* ``to_field_set`` — every leaf, list item, map key and empty/null map of a value
  (what an applier owns);
* ``compare`` — the paths added, modified and removed between two values (what an
  update takes ownership of).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import orjson

from kubelite.api.patch.patchmeta import ListOf, MapOf, Node, Struct, child

PE = tuple
Path = tuple
MISSING: Any = object()


def _js(v: Any) -> str:
    """Go-compatible compact JSON (HTML characters escaped as encoding/json does)."""
    s = json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def field(name: str) -> PE:
    """A field path element."""
    return ("f", name)


# --- list items -----------------------------------------------------------------------

def is_atomic(node: Node, value: Any) -> bool:
    """True when the value at this node is owned and replaced as one unit."""
    if isinstance(value, list):
        return not isinstance(node, ListOf) or node.list_type == "atomic"
    if isinstance(value, dict):
        return isinstance(node, (Struct, MapOf)) and node.atomic
    return True


class KeyError_(ValueError):
    """A list-map item lacks one of its key fields."""


def item_pe(node: ListOf, item: Any, index: int) -> PE:
    """The path element naming one item of a non-atomic list."""
    if node.list_type == "set":
        return ("v", _js(item))
    if node.list_type == "map" and isinstance(item, dict):
        parts = []
        for k in node.keys:
            if k in item:
                parts.append((k, _js(item[k])))
            elif k in node.key_defaults:
                parts.append((k, _js(node.key_defaults[k])))
            else:
                raise KeyError_(f"element {index}: associative list with keys has an element "
                                f"that omits key field \"{k}\" (and doesn't have default value)")
        return ("k", tuple(sorted(parts)))
    return ("i", index)


def item_node(node: Node) -> Node:
    """The schema node of a list's items."""
    return node.item if isinstance(node, ListOf) else None


# --- to_field_set ---------------------------------------------------------------------

def to_field_set(value: Any, schema: Node) -> set[Path]:
    """Every path that a value sets (structured-merge-diff's ToFieldSet)."""
    out: set[Path] = set()
    _tfs((), value, schema, out)
    return out


def _tfs(path: Path, v: Any, node: Node, out: set[Path]) -> None:
    if v is None:
        return
    if is_atomic(node, v):
        out.add(path)
        return
    if isinstance(v, dict):
        declared = not isinstance(node, MapOf)
        for k, cv in v.items():
            p = path + (field(k),)
            sub = child(node, k)
            _tfs(p, cv, sub, out)
            if cv is None or (isinstance(cv, dict) and not cv) or not declared:
                out.add(p)
        return
    # is_atomic() passes a list through only under a non-atomic ListOf node.
    assert isinstance(node, ListOf)
    for i, item in enumerate(v):
        p = path + (item_pe(node, item, i),)
        _tfs(p, item, item_node(node), out)
        out.add(p)


# --- compare --------------------------------------------------------------------------

class Comparison(NamedTuple):
    """Paths that differ between two versions of an object."""

    added: set
    modified: set
    removed: set


def compare(lhs: Any, rhs: Any, schema: Node) -> Comparison:
    """What changed from ``lhs`` to ``rhs`` (structured-merge-diff's Compare)."""
    c = Comparison(set(), set(), set())
    _cmp((), lhs, rhs, schema, c)
    return c


def _empty(v: Any) -> bool:
    return v is MISSING or v is None or (isinstance(v, (dict, list)) and not v)


def _cmp(path: Path, lhs: Any, rhs: Any, node: Node, c: Comparison) -> None:
    if lhs is MISSING:
        _added(path, rhs, node, c.added)  # a create: everything is new
        return
    sample = rhs if rhs is not MISSING and rhs is not None else lhs
    kinds = {type(x) for x in (lhs, rhs) if isinstance(x, (dict, list))}
    leaf = (is_atomic(node, sample) or len(kinds) > 1 or not kinds or (_empty(lhs) and _empty(rhs)))
    if leaf:
        if lhs is MISSING:
            c.added.add(path)
        elif rhs is MISSING:
            c.removed.add(path)
        elif not json_equal(lhs, rhs):
            c.modified.add(path)
        return
    if _unchanged(lhs, rhs):
        return  # nothing below differs: no path to add, modify or remove
    if dict in kinds:
        lm = lhs if isinstance(lhs, dict) else {}
        rm = rhs if isinstance(rhs, dict) else {}
        for k in list(lm) + [k for k in rm if k not in lm]:
            _cmp(path + (field(k),), lm.get(k, MISSING), rm.get(k, MISSING), child(node, k), c)
    else:
        # Only lists are left, and is_atomic() let them through, so the node is a non-atomic ListOf.
        assert isinstance(node, ListOf)
        lidx = index_items(node, lhs if isinstance(lhs, list) else [])
        ridx = index_items(node, rhs if isinstance(rhs, list) else [])
        for pe in list(lidx) + [pe for pe in ridx if pe not in lidx]:
            _cmp(path + (pe,), lidx.get(pe, MISSING), ridx.get(pe, MISSING), item_node(node), c)
    if lhs is MISSING:
        c.added.add(path)
    elif rhs is MISSING:
        c.removed.add(path)


def _added(path: Path, rhs: Any, node: Node, added: set) -> None:
    """_cmp() where the left side is missing: this path and every one below it are added."""
    if isinstance(rhs, dict) and rhs and not is_atomic(node, rhs):
        for k, v in rhs.items():
            _added(path + (("f", k),), v, child(node, k), added)
    elif isinstance(rhs, list) and rhs and not is_atomic(node, rhs):
        assert isinstance(node, ListOf)  # is_atomic() lets a list through only under a non-atomic ListOf
        inner = item_node(node)
        for pe, item in index_items(node, rhs).items():
            _added(path + (pe,), item, inner, added)
    added.add(path)


def _unchanged(lhs: Any, rhs: Any) -> bool:
    """Whether two subtrees are the same JSON, checked in C: most of an update leaves most
    of the object as it was, and walking those parts path by path is the cost of compare().
    Python's == alone would take true for 1 and bool 1 alike, so equal sorted encodings
    decide (types included; a float and an int of one value are walked as before)."""
    if lhs is MISSING or rhs is MISSING or lhs != rhs:
        return False
    try:
        return orjson.dumps(lhs, option=orjson.OPT_SORT_KEYS) == orjson.dumps(rhs, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return False


def index_items(node: ListOf, items: list) -> dict[PE, Any]:
    """Items of a keyed/set list by path element (first occurrence wins)."""
    out: dict[PE, Any] = {}
    for i, item in enumerate(items):
        out.setdefault(item_pe(node, item, i), item)
    return out


def json_equal(a: Any, b: Any) -> bool:
    """Deep JSON equality (bools are not numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# --- named fields ---------------------------------------------------------------------

def ensure_named(paths: Iterable[Path], schema: Node) -> set[Path]:
    """Add every struct-field ancestor of each path (EnsureNamedFieldsAreMembers)."""
    out = set(paths)
    for p in list(out):
        node = schema
        for i, pe in enumerate(p[:-1]):
            if pe[0] == "f":
                if not isinstance(node, MapOf):
                    out.add(p[:i + 1])
                node = child(node, pe[1])
            else:
                node = item_node(node)
    return out


# --- FieldsV1 encoding ----------------------------------------------------------------

def _pe_key(pe: PE) -> tuple:
    rank = {"f": 0, "k": 1, "v": 2, "i": 3}[pe[0]]
    return (rank, pe[1])


def _pe_str(pe: PE) -> str:
    kind, val = pe
    if kind == "f":
        return "f:" + val
    if kind == "k":
        return "k:{" + ",".join(f"{_js(k)}:{v}" for k, v in val) + "}"
    if kind == "v":
        return "v:" + val
    return f"i:{val}"


def _trie(paths: Iterable[Path]) -> dict:
    root: dict = {}
    for p in paths:
        node = root
        for pe in p:
            node = node.setdefault(pe, {})
        node[None] = True  # member marker
    return root


def encode_fields(paths: Iterable[Path]) -> dict:
    """A field set as a FieldsV1 object."""
    def emit(node: dict, include_self: bool) -> dict:
        out: dict = {}
        children = sorted((k for k in node if k is not None), key=_pe_key)
        if include_self and node.get(None) and children:
            out["."] = {}
        for pe in children:
            out[_pe_str(pe)] = emit(node[pe], True)
        return out
    return emit(_trie(paths), False)


def decode_fields(fields: dict) -> set[Path]:
    """A FieldsV1 object as a set of paths; raises ValueError on malformed keys."""
    out: set[Path] = set()

    def walk(prefix: Path, obj: dict) -> None:
        if not isinstance(obj, dict):
            raise ValueError("FieldsV1 values must be objects")
        if not obj and prefix:
            out.add(prefix)
        for key, sub in obj.items():
            if key == ".":
                out.add(prefix)
                continue
            walk(prefix + (_parse_pe(key),), sub)
    walk((), fields)
    return out


def _parse_pe(s: str) -> PE:
    kind, sep, rest = s.partition(":")
    if not sep or kind not in ("f", "k", "v", "i"):
        raise ValueError(f"unknown field path element {s!r}")
    if kind == "f":
        return ("f", rest)
    if kind == "k":
        obj = json.loads(rest)
        return ("k", tuple(sorted((k, _js(v)) for k, v in obj.items())))
    if kind == "v":
        return ("v", _js(json.loads(rest)))
    return ("i", int(rest))


def iterate(paths: Iterable[Path]) -> Iterator[Path]:
    """Paths in structured-merge-diff's set order (members, then children)."""
    def walk(prefix: Path, node: dict) -> Iterator[Path]:
        children = sorted((k for k in node if k is not None), key=_pe_key)
        for pe in children:
            if node[pe].get(None):
                yield prefix + (pe,)
        for pe in children:
            yield from walk(prefix + (pe,), node[pe])
    yield from walk((), _trie(paths))


def path_string(path: Path) -> str:
    """``.spec.containers[name="nginx"].image`` — upstream's fieldpath.Path.String()."""
    out = []
    for kind, val in path:
        if kind == "f":
            out.append("." + val)
        elif kind == "k":
            out.append("[" + ",".join(f"{k}={v}" for k, v in val) + "]")
        elif kind == "v":
            out.append(f"[={val}]")
        else:
            out.append(f"[{val}]")
    return "".join(out)
