"""Authentication: who is making a request.

Three credentials are accepted, as kube-apiserver accepts them:

* a client certificate signed by the cluster CA: CN is the user, each O a group;
* a bearer token from the token file (``--token-auth-file`` format:
  ``token,user,uid,"group1,group2"``), compared in constant time against every entry;
* a service-account JWT (``tokens.py``), checked for signature, audience, expiry and the
  continued existence of the ServiceAccount and of any object it is bound to.

Every authenticated user also gets the group ``system:authenticated``.  A request with
no credentials is refused with 401 (anonymous requests are off, as with
``--anonymous-auth=false``); a presented credential that is wrong is refused the same way.
"""
from __future__ import annotations

import contextlib
import csv
import hmac
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kubelite.apiserver.tokens import InvalidToken, ObjectLookup, TokenIssuer, is_jwt, service_account_groups

AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"


@dataclass
class User:
    """An authenticated user (upstream's user.Info)."""

    name: str
    groups: list[str] = field(default_factory=list)
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)

    def with_authenticated(self) -> User:
        """The user with ``system:authenticated`` added, as upstream's group adder does."""
        if AUTHENTICATED in self.groups:
            return self
        return User(self.name, [*self.groups, AUTHENTICATED], self.uid, self.extra)

    def info(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 UserInfo."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


@dataclass(frozen=True)
class _StaticToken:
    token: bytes
    user: User


class StaticTokens:
    """The token file, searched in constant time per entry and always to the end."""

    def __init__(self, entries: list[tuple[str, User]]):
        self._entries = [_StaticToken(t.encode(), u) for t, u in entries]

    @classmethod
    def load(cls, path: str | None) -> StaticTokens:
        """Read a kube-apiserver --token-auth-file: token,user,uid,"group1,group2"."""
        entries: list[tuple[str, User]] = []
        if path:
            with open(path, newline="") as f:
                for row in csv.reader(f):
                    if len(row) < 2 or not row[0].strip() or row[0].startswith("#"):
                        continue
                    groups = [g.strip() for g in (row[3].split(",") if len(row) > 3 else []) if g.strip()]
                    uid = row[2].strip() if len(row) > 2 else ""
                    entries.append((row[0].strip(), User(row[1].strip(), groups, uid)))
        return cls(entries)

    def lookup(self, token: str) -> User | None:
        """The user of a token, or None; timing does not depend on which entry matches."""
        presented = token.encode()
        found: User | None = None
        for e in self._entries:
            # compare_digest on every entry: no early exit reveals how much of a token matched.
            if hmac.compare_digest(e.token, presented):
                found = e.user
        return found


# A connection's certificate never changes: it is read once per connection (keyed by the
# aiohttp handler, which lives exactly as long as the connection), not on every request.
_CONNECTION_USERS: weakref.WeakKeyDictionary[Any, tuple[User | None]] = weakref.WeakKeyDictionary()


def certificate_user(request: web.Request) -> User | None:
    """The user named by a verified client certificate (CN user, O groups)."""
    handler = request.protocol
    try:
        return _CONNECTION_USERS[handler][0]
    except (KeyError, TypeError):
        pass
    user = _read_certificate_user(request)
    with contextlib.suppress(TypeError):  # a handler that takes no weak references
        _CONNECTION_USERS[handler] = (user,)
    return user


def _read_certificate_user(request: web.Request) -> User | None:
    ssl_obj = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_obj is None:
        return None
    cert = ssl_obj.getpeercert()
    if not cert:
        return None
    cn, orgs = "", []
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
            elif k == "organizationName":
                orgs.append(v)
    return User(cn, orgs) if cn else None


class Authenticator:
    """Client certificates, the static token file and service-account tokens."""

    def __init__(self, tokens: StaticTokens, issuer: TokenIssuer | None, lookup: ObjectLookup | None):
        self.tokens = tokens
        self.issuer = issuer
        self.lookup = lookup

    async def authenticate(self, request: web.Request) -> User | None:
        """The request's user (with system:authenticated), or None for 401."""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
            try:
                user = await self.authenticate_token(token)
            except InvalidToken:
                return None
            return user.with_authenticated() if user else None
        user = certificate_user(request)
        return user.with_authenticated() if user else None

    async def authenticate_token(self, token: str, audiences: list[str] | None = None) -> User | None:
        """A bearer token's user (without system:authenticated); None for an unknown
        static token; raises InvalidToken for a service-account token that fails checks."""
        if not token:
            return None
        if self.issuer is not None and self.lookup is not None and is_jwt(token):
            try:
                claims = self.issuer.verify(token, audiences)
                await self.issuer.validate_objects(claims, self.lookup)
            except InvalidToken:
                # As upstream's union of authenticators: the token file may still know it.
                static = self.tokens.lookup(token)
                if static is not None:
                    return static
                raise
            return User(claims.username, service_account_groups(claims.namespace), claims.sa_uid, claims.extra())
        return self.tokens.lookup(token)
