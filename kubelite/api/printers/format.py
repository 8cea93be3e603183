"""Cell formatting shared by the printers: one table's clock, and upstream's small
formatters (labels, selectors, container lists, "N more…" lists, host:port).
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from kubelite.api.duration import human_duration
from kubelite.api.errors import StatusError
from kubelite.api.selectors import selector_from_dict

Obj = dict[str, Any]
_UTC = _dt.UTC


class Clock:
    """One table's notion of "now" plus a parse cache (siblings share timestamps)."""

    def __init__(self, now: _dt.datetime):
        self.now = now if now.tzinfo else now.replace(tzinfo=_UTC)
        self._cache: dict[str, _dt.datetime | None] = {}

    def parse(self, s: Any) -> _dt.datetime | None:
        """An RFC3339 timestamp as an aware datetime; None for absent/zero/garbage."""
        if not s or not isinstance(s, str):
            return None
        if s in self._cache:
            return self._cache[s]
        t: _dt.datetime | None
        try:
            t = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
            if t.tzinfo is None:
                t = t.replace(tzinfo=_UTC)
            if t.year <= 1:  # Go's zero time
                t = None
        except ValueError:
            t = None
        self._cache[s] = t
        return t

    def since(self, s: Any) -> str:
        """translateTimestampSince: HumanDuration of now - t, "<unknown>" for a zero time."""
        t = self.parse(s)
        if t is None:
            return "<unknown>"
        return human_duration((self.now - t).total_seconds())


def as_int(v: Any) -> int:
    """An int cell from a possibly absent or malformed value (0)."""
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def format_labels(m: dict[str, str] | None) -> str:
    """labels.FormatLabels: sorted k=v pairs, "<none>" when empty."""
    if not m:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(m.items()))


def selector_string(sel: Obj | None) -> str | None:
    """metav1.LabelSelectorAsSelector(...).String(); None if the selector is invalid."""
    try:
        return str(selector_from_dict(sel))
    except StatusError:
        return None


def format_label_selector(sel: Obj | None) -> str:
    """metav1.FormatLabelSelector: "<none>" when it selects everything (or nothing)."""
    s = selector_string(sel)
    if s is None:
        return "<error>"
    return s or "<none>"


def container_cells(containers: Iterable[Obj] | None) -> tuple[str, str]:
    """layoutContainerCells: comma-joined names and images."""
    cs = list(containers or [])
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def list_with_more(items: list[str], count: int, limit: int = 3) -> str:
    """listWithMoreString: the first few, then " + N more...", "<unset>" when empty."""
    ret = ",".join(items[:limit])
    if count > limit:
        return f"{ret} + {count - limit} more..."
    return ret or "<unset>"


def join_host_port(host: str, port: Any) -> str:
    """net.JoinHostPort: brackets around IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
