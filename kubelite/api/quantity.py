"""resource.Quantity strings ("100m", "1Gi", "2e3") as numbers, for scheduling arithmetic."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10**3),
            "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18)}


def parse(q: str | int | float | None) -> Decimal:
    """A quantity as a Decimal (ValueError when malformed)."""
    if q is None or q == "":
        return Decimal(0)
    if isinstance(q, (int, float)):
        return Decimal(str(q))
    s = q.strip()
    for suf, mul in _BINARY.items():
        if s.endswith(suf):
            return _num(s[: -len(suf)]) * mul
    if s and s[-1] in "numkMGTPE" and not _is_exp(s):
        return _num(s[:-1]) * _DECIMAL[s[-1]]
    return _num(s)


def _is_exp(s: str) -> bool:
    return len(s) > 1 and s[-1].isdigit()


def _num(s: str) -> Decimal:
    try:
        return Decimal(s)
    except InvalidOperation:
        # ValueError is this module's one failure; decimal's own exception adds nothing.
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {s!r}") from None


def milli(q: str | int | float | None) -> int:
    """A quantity in thousandths (CPU millicores), rounded up as upstream's MilliValue."""
    v = parse(q) * 1000
    return int(v.to_integral_value(rounding="ROUND_CEILING"))


def value(q: str | int | float | None) -> int:
    """A quantity as an integer, rounded up (bytes, pods)."""
    return int(parse(q).to_integral_value(rounding="ROUND_CEILING"))
