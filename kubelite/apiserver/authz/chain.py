"""Decisions and the chain of authorizers (upstream's union authorizer).

Each authorizer answers ALLOW, DENY or NO_OPINION with a reason.  The chain asks them in
order — ``system:masters`` first (always allowed, as upstream's privileged-group
authorizer), then the Node authorizer, then RBAC — and the first ALLOW or DENY wins;
when every one has no opinion the request is refused and the reasons are joined.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kubelite.api import errors
from kubelite.api.errors import StatusError
from kubelite.apiserver.authn import MASTERS
from kubelite.apiserver.authz.attributes import Attributes


class Decision(enum.Enum):
    """An authorizer's answer."""

    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True)
class Verdict:
    """A decision and why."""

    decision: Decision
    reason: str = ""

    @property
    def allowed(self) -> bool:
        """True for ALLOW."""
        return self.decision is Decision.ALLOW


class Authorizer(Protocol):
    """Anything that can judge one request."""

    async def authorize(self, a: Attributes) -> Verdict:
        """ALLOW, DENY or NO_OPINION for the attributes."""
        ...


class PrivilegedGroup:
    """Members of system:masters may do anything."""

    async def authorize(self, a: Attributes) -> Verdict:
        """ALLOW for system:masters, otherwise no opinion."""
        return Verdict(Decision.ALLOW) if MASTERS in a.user.groups else Verdict(Decision.NO_OPINION)


class Chain:
    """Authorizers asked in order; the first ALLOW or DENY wins."""

    def __init__(self, authorizers: Sequence[Authorizer]):
        self.authorizers = list(authorizers)

    async def authorize(self, a: Attributes) -> Verdict:
        """The combined verdict (NO_OPINION means refused)."""
        reasons: list[str] = []
        for authz in self.authorizers:
            v = await authz.authorize(a)
            if v.decision is not Decision.NO_OPINION:
                return v
            if v.reason:
                reasons.append(v.reason)
        return Verdict(Decision.NO_OPINION, "\n".join(reasons))


def forbidden_message(a: Attributes) -> str:
    """``User "x" cannot get resource "pods" in API group "" in the namespace "y"``."""
    if not a.resource_request:
        return f'User "{a.user.name}" cannot {a.verb} path "{a.path}"'
    where = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    return f'User "{a.user.name}" cannot {a.verb} resource "{a.resource_and_sub}" in API group "{a.api_group}" {where}'


def forbidden(a: Attributes, reason: str = "") -> StatusError:
    """The 403 upstream answers for a refused request."""
    msg = forbidden_message(a) + (f": {reason}" if reason else "")
    if not a.resource_request:
        return errors.status_error(403, "Forbidden", f"forbidden: {msg}", {})
    what = errors.qualified(a.resource, a.api_group)
    head = f'{what} "{a.name}" is forbidden' if a.name else f"{what} is forbidden"
    details: dict[str, str] = {"kind": a.resource}
    if a.name:
        details["name"] = a.name
    if a.api_group:
        details["group"] = a.api_group
    return errors.status_error(403, "Forbidden", f"{head}: {msg}", details)
