"""Duplicate keys in request bodies, found and worded as upstream's strict decoders do.

Our parsers (orjson, PyYAML) keep the last of two equal keys without a word; upstream's
decoders report them for ``fieldValidation`` Strict (400) and Warn (a warning):

- JSON bodies (create, update, merge and strategic patches): ``duplicate field "<path>"``,
  the path dotted from the root with ``[i]`` for list items (``spec.replicas``,
  ``spec.template.spec.containers[0].name``), listed in document order together with
  the unknown fields; a key both unknown and repeated is reported once, as unknown.
- YAML bodies and apply patches (which upstream reads as YAML even when they are JSON):
  ``line N: key "x" already set in map``, N being the line of the repeated key.

Bodies without duplicates (nearly all) cost one extra parse by the stdlib's C scanner.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from kubelite.api.validation_common import go_quote

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,\n]')


@dataclass(frozen=True)
class KeyOccurrence:
    """One object key as it appears in the body."""

    key: str
    path: str
    line: int        # 1-based
    duplicate: bool  # the same key appeared earlier in the same object


def _flag_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _HasDuplicates
    return obj


class _HasDuplicates(Exception):
    pass


# One decoder for every call: json.loads with a hook builds a new decoder each time,
# which costs more than the scan itself on a typical body.
_DUPLICATE_SCANNER = json.JSONDecoder(object_pairs_hook=_flag_duplicates)


def has_duplicate_keys(body: bytes) -> bool:
    """Whether a JSON body repeats a key in some object (False for a non-JSON body)."""
    try:
        _DUPLICATE_SCANNER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except _HasDuplicates:
        return True
    except (ValueError, RecursionError):
        return False
    return False


@dataclass
class _Frame:
    path: str
    is_object: bool
    keys: set[str]
    key: str = ""      # object: the key whose value comes next
    index: int = 0     # list: the index of the current item
    want_key: bool = True


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _child_path(top: _Frame) -> str:
    return _join(top.path, top.key) if top.is_object else f"{top.path}[{top.index}]"


def json_keys(body: bytes) -> list[KeyOccurrence]:
    """Every object key of a (valid) JSON body in document order, with its path and line."""
    text = body.decode("utf-8", errors="replace")
    out: list[KeyOccurrence] = []
    stack: list[_Frame] = []
    line = 1
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok == "\n":
            line += 1
        elif tok in "{[":
            path = _child_path(stack[-1]) if stack else ""
            stack.append(_Frame(path, tok == "{", set()))
        elif tok in "}]":
            if stack:
                stack.pop()
        elif tok == ",":
            if stack and stack[-1].is_object:
                stack[-1].want_key = True
            elif stack:
                stack[-1].index += 1
        elif tok == ":":
            if stack:
                stack[-1].want_key = False
        elif stack and stack[-1].is_object and stack[-1].want_key:
            top = stack[-1]
            key = json.loads(tok)
            out.append(KeyOccurrence(key, _join(top.path, key), line, key in top.keys))
            top.keys.add(key)
            top.key = key
    return out


def json_strict_messages(body: bytes, unknown: list[str]) -> list[str]:
    """``unknown field``/``duplicate field`` messages for a JSON body in document order.

    ``unknown`` holds the unknown-field paths of the decoded object; nothing below an
    unknown field is reported (upstream's decoder skips its value)."""
    if not has_duplicate_keys(body):
        return [f'unknown field "{p}"' for p in unknown]
    unknown_set = set(unknown)
    out: list[str] = []
    reported: set[str] = set()
    for occ in json_keys(body):
        if any(occ.path == u or occ.path.startswith((u + ".", u + "[")) for u in unknown_set):
            if occ.path in unknown_set and occ.path not in reported:
                reported.add(occ.path)
                out.append(f'unknown field "{occ.path}"')
        elif occ.duplicate:
            out.append(f'duplicate field "{occ.path}"')
    # Unknown fields the scan could not place (it cannot fail on valid JSON) still count.
    out += [f'unknown field "{p}"' for p in unknown if p not in reported]
    return out


def duplicate_field_messages(body: bytes) -> list[str]:
    """``duplicate field "<path>"`` for each repeated key of a JSON patch body."""
    if not has_duplicate_keys(body):
        return []
    return [f'duplicate field "{o.path}"' for o in json_keys(body) if o.duplicate]


class _DuplicateKeyLoader(yaml.SafeLoader):
    """A SafeLoader that notes each repeated mapping key with its line."""

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader itself refuses it below
                continue
            if repeated:
                shown = go_quote(key) if isinstance(key, str) else str(key).lower() if isinstance(key, bool) \
                    else str(key)
                self.duplicates.append((key_node.start_mark.line + 1, f"key {shown} already set in map"))
        return super().construct_mapping(node, deep)


def yaml_duplicate_lines(body: bytes) -> list[str]:
    """``line N: key "x" already set in map`` for each repeated key of a YAML (or JSON)
    body, by line; [] when the body does not parse as YAML."""
    loader: _DuplicateKeyLoader | None = None
    try:
        loader = _DuplicateKeyLoader(body)
        loader.get_single_data()
    except (yaml.YAMLError, RecursionError):
        return []
    finally:
        if loader is not None:
            loader.dispose()
    return [f"line {n}: {what}" for n, what in sorted(loader.duplicates)]


def apply_duplicate_lines(body: bytes) -> list[str]:
    """The YAML-worded duplicate report for an apply body, JSON or YAML."""
    if has_duplicate_keys(body):
        return [f"line {o.line}: key {go_quote(o.key)} already set in map" for o in json_keys(body) if o.duplicate]
    return yaml_duplicate_lines(body)
