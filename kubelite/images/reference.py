"""Image reference parsing and normalisation, the way containerd names images.

A user writes `nginx`, `jocatalin/kubernetes-bootcamp:v2` or
`gcr.io/google-samples/kubernetes-bootcamp:v1`; the runtime always works with the
fully qualified form (`docker.io/library/nginx:latest`, ...). The rules follow the
docker/distribution reference grammar: the first path component is a registry
domain only if it contains `.` or `:` or is `localhost`; Docker Hub names without a
namespace live under `library/`; a missing tag means `latest` unless a digest pins
the image.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")
NAME_TOTAL_LENGTH_MAX = 255


class InvalidReference(ValueError):
    """The string is not a valid image reference (kubelet: InvalidImageName)."""


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Repository name with domain, no tag or digest: `docker.io/library/nginx`."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def familiar(self) -> str:
        """The short form docker prints: `nginx:latest`, `jocatalin/kubernetes-bootcamp:v2`."""
        name = self.name
        if self.domain == DEFAULT_DOMAIN:
            name = self.path
            if name.startswith(OFFICIAL_REPO_PREFIX) and name.count("/") == 1:
                name = name[len(OFFICIAL_REPO_PREFIX):]
        if self.tag:
            name += ":" + self.tag
        if self.digest:
            name += "@" + self.digest
        return name


def parse(ref: str) -> Reference:
    """Parse and normalise `ref`; a missing tag becomes `latest` unless a digest is given."""
    if not ref or ref.strip() != ref:
        raise InvalidReference(f"invalid reference format: {ref!r}")
    remainder, digest = ref, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid reference format: {ref!r}: invalid digest")
        if digest.startswith("sha256:") and not _SHA256.match(digest):
            raise InvalidReference(f"invalid checksum digest format: {ref!r}")
    tag = None
    # A tag is whatever follows the last ':' after the last '/' (a ':' before it is a port).
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid reference format: {ref!r}: invalid tag")
    domain, path = _split_domain(remainder)
    if path != path.lower():
        raise InvalidReference(f"invalid reference format: repository name ({path}) must be lowercase")
    if not domain or not _DOMAIN.match(domain):
        raise InvalidReference(f"invalid reference format: {ref!r}: invalid domain")
    if not all(_COMPONENT.match(c) for c in path.split("/")):
        raise InvalidReference(f"invalid reference format: {ref!r}")
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def normalize(ref: str) -> str:
    """Return the fully qualified string form of `ref` (`nginx` → `docker.io/library/nginx:latest`)."""
    return str(parse(ref))
