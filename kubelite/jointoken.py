"""Join tokens in k3s's form, ``K10<sha256 of the CA bundle>::node:<bootstrap token>``.

The hash pins the cluster CA: an agent holding only the token fetches the CA from the
server's unauthenticated ``/cacerts`` (as a k3s agent does), accepts it only if its
SHA-256 matches, and sends the bootstrap token only over a connection verified with it.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

PREFIX = "K10"
_FULL = re.compile(r"^K10([0-9a-f]{64})::([^:]+):(.+)$")


class JoinTokenError(ValueError):
    """A token that looks like a join token but is not a valid one."""


@dataclass(frozen=True)
class JoinToken:
    """The CA hash (None for a bare token) and the bootstrap credential."""

    ca_hash: str | None
    secret: str

    def matches(self, ca_pem: bytes) -> bool:
        """Whether ``ca_pem`` is the CA bundle this token pins (a bare token pins nothing)."""
        return self.ca_hash is None or ca_hash(ca_pem) == self.ca_hash


def ca_hash(ca_pem: bytes) -> str:
    """The hex SHA-256 of the CA bundle's bytes, as served at /cacerts."""
    return hashlib.sha256(ca_pem).hexdigest()


def format_token(ca_pem: bytes, bootstrap_token: str) -> str:
    """The join token for a cluster whose CA bundle is ``ca_pem``."""
    return f"{PREFIX}{ca_hash(ca_pem)}::node:{bootstrap_token}"


def parse(text: str) -> JoinToken:
    """A ``K10…`` token or a bare bootstrap token (which pins no CA)."""
    text = text.strip()
    if not text.startswith(PREFIX) or "::" not in text:
        return JoinToken(None, text)
    m = _FULL.match(text)
    if m is None:
        raise JoinTokenError("a K10 join token is K10<64 hex digits of the CA hash>::node:<token>")
    return JoinToken(m.group(1), m.group(3))


def read_bootstrap_token(token_file: str) -> str:
    """The node bootstrap token: the first field of the server's tokens.csv."""
    with open(token_file) as f:
        return f.readline().split(",", 1)[0].strip()
