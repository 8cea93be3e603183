"""Registry credentials: imagePullSecrets and the node's docker config, matched as a kubelet does.

A credential source is a docker config: `{"auths": {KEY: {...}}}` (the
`kubernetes.io/dockerconfigjson` Secret type and `~/.docker/config.json`) or the legacy
flat `{KEY: {...}}` (`kubernetes.io/dockercfg`, key `.dockercfg`). KEY names a registry
host, optionally with a port, a path prefix, a scheme, and `*` globs in host labels
(`*.example.com`); `https://index.docker.io/v1/` and friends mean Docker Hub.

For one image every matching entry is a candidate, the most specific key first, the
pod's secrets before the node's own file; a pull tries them in that order (the kubelet
does the same, so a rotated secret next to its old one still works).
"""
from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import reference
from .offline import split_host_port

Obj = dict[str, Any]

DOCKER_CONFIG_JSON = ".dockerconfigjson"
DOCKER_CFG = ".dockercfg"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Credential:
    """One username/password (or identity token) for a registry."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    source: str = ""          # where it came from, for logs: "secret ns/name", "~/.docker/config.json"

    def auth_entry(self) -> Obj:
        """This credential as an `auths` entry of a containers-auth.json file."""
        entry: Obj = {}
        if self.username or self.password:
            entry["auth"] = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if self.identity_token:
            entry["identitytoken"] = self.identity_token
        return entry


@dataclass(frozen=True)
class _Entry:
    host: str          # host pattern, lowercased, maybe with globs, without port
    port: str
    path: str          # repository path prefix ("" = any)
    credential: Credential

    @property
    def specificity(self) -> tuple[int, int]:
        return (len(self.path), len(self.host))


class Keyring:
    """Credentials from docker config files, looked up per image reference."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add_config(self, config: Mapping[str, Any], source: str = "") -> None:
        """Add every entry of a docker config (the `auths` form or the legacy flat form)."""
        auths = config.get("auths") if isinstance(config.get("auths"), dict) else config
        if not isinstance(auths, Mapping):
            return
        for key, value in auths.items():
            if not isinstance(value, Mapping):
                continue
            cred = credential_from_entry(value, source)
            if cred is None:
                continue
            host, port, path = _parse_key(str(key))
            if host:
                self._entries.append(_Entry(host, port, path, cred))

    def lookup(self, ref: reference.Reference) -> list[Credential]:
        """Credentials whose key matches `ref`, most specific first."""
        host, port = split_host_port(ref.domain)
        host = host.lower()
        hits = [e for e in self._entries if _host_matches(e.host, host) and e.port == port
                and _path_matches(e.path, ref.path)]
        hits.sort(key=lambda e: e.specificity, reverse=True)
        out: list[Credential] = []
        for e in hits:
            if e.credential not in out:
                out.append(e.credential)
        return out


def keyring_from_secrets(secrets: Iterable[Obj]) -> Keyring:
    """A keyring from Secret objects of type dockerconfigjson / dockercfg (others are skipped)."""
    ring = Keyring()
    for secret in secrets:
        data = secret.get("data") or {}
        md = secret.get("metadata") or {}
        source = f"secret {md.get('namespace', '')}/{md.get('name', '')}"
        for key in (DOCKER_CONFIG_JSON, DOCKER_CFG):
            raw = data.get(key)
            if not raw:
                continue
            try:
                config = json.loads(base64.b64decode(raw))
            except (ValueError, binascii.Error):
                continue
            if isinstance(config, dict):
                ring.add_config(config, source)
    return ring


def node_keyring(environ: Mapping[str, str] | None = None) -> Keyring:
    """The node's own credentials: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`."""
    env = os.environ if environ is None else environ
    ring = Keyring()
    base = env.get("DOCKER_CONFIG") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")
    path = os.path.join(base, "config.json")
    try:
        with open(path, "rb") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return ring
    if isinstance(config, dict):
        ring.add_config(config, path)
    return ring


def credential_from_entry(value: Mapping[str, Any], source: str = "") -> Credential | None:
    """A credential from one docker-config `auths` entry (username/password, `auth`, identitytoken)."""
    user = str(value.get("username") or "")
    password = str(value.get("password") or "")
    auth = value.get("auth")
    if auth and not (user or password):
        try:
            user, _, password = base64.b64decode(str(auth)).decode().partition(":")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
    token = str(value.get("identitytoken") or value.get("identityToken") or "")
    if not (user or password or token):
        return None
    return Credential(user, password, token, source)


def _parse_key(key: str) -> tuple[str, str, str]:
    """(host pattern, port, path prefix) of a docker config key."""
    text = key.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):]
            break
    hostport, _, path = text.partition("/")
    host, port = split_host_port(hostport)
    host = host.lower()
    # "/v1/" and "/v2/" after the host are API versions, not repository paths.
    if path.startswith(("v1/", "v2/")) or path in ("v1", "v2"):
        path = path[2:]
    path = path.strip("/")
    if host in _HUB_ALIASES:
        host = reference.DEFAULT_DOMAIN
    return host, port, path


def _host_matches(pattern: str, host: str) -> bool:
    if pattern == host:
        return True
    if "*" not in pattern:
        return False
    want, have = pattern.split("."), host.split(".")
    return len(want) == len(have) and all(fnmatch.fnmatchcase(h, w) for w, h in zip(want, have, strict=True))


def _path_matches(prefix: str, path: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")
