"""User impersonation (``kubectl --as``, ``--as-group``, ``--as-uid``), as upstream's filter.

The headers ``Impersonate-User``, ``Impersonate-Group`` (repeatable), ``Impersonate-Uid``
and ``Impersonate-Extra-<key>`` ask to act as someone else.  Each part is authorized
separately with the verb ``impersonate``: on ``users``, ``groups``, ``serviceaccounts``
(for ``system:serviceaccount:<ns>:<name>``, in that namespace), and on ``uids`` and
``userextras/<key>`` in authentication.k8s.io.  The request then runs as the new user,
which gets ``system:authenticated`` (and a ServiceAccount its two groups) unless groups
were given.
"""
from __future__ import annotations

from urllib.parse import unquote

from multidict import CIMultiDictProxy

from kubelite.api import errors
from kubelite.apiserver.authn import AUTHENTICATED, User
from kubelite.apiserver.authz.attributes import Attributes
from kubelite.apiserver.authz.chain import Authorizer, forbidden
from kubelite.apiserver.tokens import service_account_groups, split_sa_username

USER = "Impersonate-User"
GROUP = "Impersonate-Group"
UID = "Impersonate-Uid"
EXTRA = "impersonate-extra-"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"


def requested(headers: CIMultiDictProxy[str]) -> bool:
    """Does the request carry any impersonation header?"""
    return any(k.lower().startswith("impersonate-") for k in headers)


async def impersonate(user: User, headers: CIMultiDictProxy[str], authorizer: Authorizer) -> User:
    """The user to act as, after checking ``user`` may impersonate every part of it."""
    name = headers.get(USER, "")
    groups = headers.getall(GROUP, [])
    uid = headers.get(UID, "")
    extra: dict[str, list[str]] = {}
    for k, v in headers.items():
        if k.lower().startswith(EXTRA):
            extra.setdefault(unquote(k[len(EXTRA):]).lower(), []).append(v)
    if not name:
        raise errors.bad_request(f"requested impersonation of groups {groups}, uid or extra fields "
                                 "without impersonating a user")
    checks: list[Attributes] = []
    sa = split_sa_username(name)
    if sa is not None:
        checks.append(Attributes(user, "impersonate", True, namespace=sa[0], resource="serviceaccounts", name=sa[1]))
        if not groups:
            groups = service_account_groups(sa[0])
    else:
        checks.append(Attributes(user, "impersonate", True, resource="users", name=name))
    checks += [Attributes(user, "impersonate", True, resource="groups", name=g) for g in groups]
    if uid:
        checks.append(Attributes(user, "impersonate", True, api_group="authentication.k8s.io", resource="uids",
                                 name=uid))
    for key, values in extra.items():
        checks += [Attributes(user, "impersonate", True, api_group="authentication.k8s.io", resource="userextras",
                              subresource=key, name=v) for v in values]
    for a in checks:
        verdict = await authorizer.authorize(a)
        if not verdict.allowed:
            raise forbidden(a, verdict.reason)
    groups = list(groups)
    if name == ANONYMOUS:
        if UNAUTHENTICATED not in groups:
            groups.append(UNAUTHENTICATED)
    elif AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    return User(name, groups, uid, extra)
