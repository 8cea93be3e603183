"""Human-readable durations, as apimachinery ``pkg/util/duration`` prints them.

``human_duration`` is what the AGE / LAST SEEN / RESTARTS cells of ``kubectl get`` show
("45s", "3m12s", "5h20m", "2d3h", "1y20d").  ``short_human_duration`` is the older,
one-unit form still used by a few describers.

Both take seconds as a float and truncate toward zero the way Go's integer conversion of a
``time.Duration`` does.  The arithmetic is done on whole microseconds so that float noise
(119.9999999s) never moves a boundary.
"""
from __future__ import annotations

_US = 1_000_000
_MINUTE = 60 * _US
_HOUR = 60 * _MINUTE


def _micros(seconds: float) -> int:
    return round(seconds * _US)


def _trunc_div(a: int, b: int) -> int:
    """Go integer division: truncates toward zero."""
    q = abs(a) // b
    return q if a >= 0 else -q


def human_duration(seconds: float) -> str:
    """duration.HumanDuration: two units of precision up to about 8 years."""
    d = _micros(seconds)
    secs = _trunc_div(d, _US)
    # Up to a second in the future is machine clock skew, not an error.
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = d // _MINUTE
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = d // _HOUR
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def short_human_duration(seconds: float) -> str:
    """duration.ShortHumanDuration: a single unit (s, m, h, d, y)."""
    d = _micros(seconds)
    secs = _trunc_div(d, _US)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60:
        return f"{secs}s"
    minutes = d // _MINUTE
    if minutes < 60:
        return f"{minutes}m"
    hours = d // _HOUR
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{int(d / _HOUR / 24 / 365)}y"
