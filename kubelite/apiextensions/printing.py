"""Server-side Tables of custom resources: a Name column, then the version's
additionalPrinterColumns (an Age column when it declares none), as upstream's
tableconvertor builds them.  Cells come from the columns' JSONPaths; a ``date`` column
shows the age of the timestamp, like every other AGE column.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import TYPE_CHECKING, Any

from kubelite.apiextensions.info import CustomResourceInfo

if TYPE_CHECKING:
    from kubelite.api.printers.format import Clock

Obj = dict[str, Any]

_DEFAULT_COLUMNS: tuple[Obj, ...] = ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+|\*)\]")


def columns_of(info: CustomResourceInfo) -> tuple[Obj, ...]:
    """The printer columns a version serves (upstream's Age default when it has none)."""
    return info.printer_columns or _DEFAULT_COLUMNS


def column_definitions(info: CustomResourceInfo) -> list[Obj]:
    """metav1.TableColumnDefinitions: Name, then the printer columns."""
    from kubelite.api.printers import columns as builtin_columns  # the printers load on the first Table asked for
    out = [dict(builtin_columns.NAME)]
    for col in columns_of(info):
        path = col.get("jsonPath") or ""
        out.append({"name": col.get("name", ""), "type": col.get("type", "string"), "format": col.get("format", ""),
                    "description": col.get("description")
                    or f"Custom resource definition column (in JSONPath format): {path}",
                    "priority": int(col.get("priority") or 0)})
    return out


def find(obj: Any, path: str) -> list[Any]:
    """Every value a simple JSONPath (``.spec.x``, ``.items[0]``, ``.items[*].name``) reaches."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    current = [obj]
    pos = 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            return []
        pos = m.end()
        nxt: list[Any] = []
        for c in current:
            if m.group(1) is not None:
                if isinstance(c, dict) and m.group(1) in c:
                    nxt.append(c[m.group(1)])
            elif isinstance(c, list):
                if m.group(2) == "*":
                    nxt.extend(c)
                elif int(m.group(2)) < len(c):
                    nxt.append(c[int(m.group(2))])
        current = nxt
    return current


def _cell(obj: Obj, col: Obj, clock: Clock) -> Any:
    values = find(obj, col.get("jsonPath") or "")
    if not values:
        return None
    if col.get("type") == "date":
        return clock.since(values[0]) if isinstance(values[0], str) else None
    if len(values) == 1:
        v = values[0]
        if isinstance(v, (dict, list)):
            import orjson
            return orjson.dumps(v).decode()
        return v
    return ",".join(str(v) for v in values)


def table(info: CustomResourceInfo, objs: list[Obj], *, include_object: str, resource_version: str,
          no_headers: bool, continue_token: str, remaining_item_count: int | None) -> Obj:
    """A meta.k8s.io/v1 Table of custom resources."""
    from kubelite.api.printers.format import Clock
    clock = Clock(_dt.datetime.now(_dt.UTC))
    cols = columns_of(info)
    rows = []
    for obj in objs:
        md_value = obj.get("metadata")
        md: Obj = md_value if isinstance(md_value, dict) else {}
        row: Obj = {"cells": [md.get("name", ""), *(_cell(obj, c, clock) for c in cols)]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md}
        rows.append(row)
    metadata: Obj = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    if remaining_item_count is not None:
        metadata["remainingItemCount"] = remaining_item_count
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": None if no_headers else column_definitions(info), "rows": rows}
