"""Where a pull goes: the registry configuration (k3s's `registries.yaml`) and endpoint planning.

The file has the shape k3s reads from `/etc/rancher/k3s/registries.yaml`; kubelite reads
`DATA_DIR/registries.yaml` (or `--registry-config FILE`):

    mirrors:
      docker.io:                       # a registry name, or "*" for every registry
        endpoint: ["http://127.0.0.1:5000"]
        rewrite:                       # regex on the repository path, $1… for groups
          "^library/(.*)": "mirror/$1"
    configs:
      "127.0.0.1:5000":                # an endpoint's host[:port]
        auth: {username: u, password: p}    # or auth: <base64 u:p>, or identity_token
        tls: {ca_file: …, cert_file: …, key_file: …, insecure_skip_verify: false}

As in k3s, a registry's mirror endpoints are tried in order and its own (default)
endpoint last; rewrites apply to mirror endpoints only. Plain HTTP is used only for an
endpoint written `http://…`, one whose config sets `insecure_skip_verify`, or any
registry at a loopback address. Offline, endpoints off this machine are dropped from
the plan before anything is contacted (offline.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import reference
from .credentials import Credential, credential_from_entry
from .offline import is_loopback_host

Obj = dict[str, Any]


class RegistryConfigError(ValueError):
    """The registries file cannot be read or has the wrong shape."""


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings of one endpoint host."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False


@dataclass
class Mirror:
    """The endpoints and rewrites configured for one registry name (or "*")."""

    endpoints: list[str] = field(default_factory=list)
    rewrites: list[tuple[re.Pattern[str], str]] = field(default_factory=list)


@dataclass
class RegistryConfig:
    """A parsed registries.yaml."""

    mirrors: dict[str, Mirror] = field(default_factory=dict)
    auth: dict[str, Credential] = field(default_factory=dict)
    tls: dict[str, TLSConfig] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> RegistryConfig:
        """Read `path`; a missing file is an empty configuration."""
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except FileNotFoundError:
            return cls()
        except (OSError, yaml.YAMLError) as e:
            raise RegistryConfigError(f"{path}: {e}") from e
        return cls.parse(data or {}, path)

    @classmethod
    def parse(cls, data: object, source: str = "registries.yaml") -> RegistryConfig:
        """Build from the decoded YAML document."""
        if not isinstance(data, dict):
            raise RegistryConfigError(f"{source}: expected a mapping at the top level")
        cfg = cls()
        for name, spec in (data.get("mirrors") or {}).items():
            if not isinstance(spec, dict):
                raise RegistryConfigError(f"{source}: mirrors.{name}: expected a mapping")
            mirror = Mirror(endpoints=[str(e) for e in spec.get("endpoint") or []])
            for pattern, repl in (spec.get("rewrite") or {}).items():
                try:
                    mirror.rewrites.append((re.compile(str(pattern)), _go_replacement(str(repl))))
                except re.error as e:
                    raise RegistryConfigError(f"{source}: mirrors.{name}.rewrite {pattern!r}: {e}") from e
            cfg.mirrors[_registry_key(str(name))] = mirror
        for host, spec in (data.get("configs") or {}).items():
            if not isinstance(spec, dict):
                raise RegistryConfigError(f"{source}: configs.{host}: expected a mapping")
            key = _registry_key(str(host))
            auth = spec.get("auth") or {}
            if auth:
                cred = _auth_credential(auth, f"{source} configs.{host}")
                if cred is not None:
                    cfg.auth[key] = cred
            tls = spec.get("tls") or {}
            if tls:
                cfg.tls[key] = TLSConfig(ca_file=str(tls.get("ca_file") or ""), cert_file=str(tls.get("cert_file") or ""),
                                         key_file=str(tls.get("key_file") or ""),
                                         insecure_skip_verify=bool(tls.get("insecure_skip_verify")))
        return cfg


@dataclass(frozen=True)
class Endpoint:
    """One place to try a pull: a registry host and the repository path to ask it for."""

    host: str                   # host[:port] as skopeo's docker:// transport takes it
    path: str                   # repository path on that host (after rewrites)
    plain_http: bool            # TLS verification off (skopeo then also falls back to http)
    mirror: bool                # a configured mirror, not the registry's own endpoint
    credential: Credential | None = None    # from registries.yaml configs.<host>.auth
    tls: TLSConfig | None = None

    def docker_ref(self, ref: reference.Reference) -> str:
        """The `docker://` reference of `ref` at this endpoint (by digest when pinned)."""
        tail = f"@{ref.digest}" if ref.digest else f":{ref.tag or reference.DEFAULT_TAG}"
        return f"docker://{self.host}/{self.path}{tail}"

    @property
    def loopback(self) -> bool:
        """Whether this endpoint is on this machine (by its text alone)."""
        return is_loopback_host(self.host)


def plan(ref: reference.Reference, config: RegistryConfig | None = None) -> list[Endpoint]:
    """Every endpoint to try for `ref`, in order: its mirrors, then the registry itself."""
    config = config or RegistryConfig()
    registry = ref.domain
    out: list[Endpoint] = []
    mirror = config.mirrors.get(registry) or config.mirrors.get("*")
    for url in mirror.endpoints if mirror else []:
        scheme, host, prefix = _split_url(url)
        path = ref.path
        for pattern, repl in mirror.rewrites if mirror else []:
            if pattern.search(path):
                path = pattern.sub(repl, path, count=1)
                break
        if prefix:
            path = f"{prefix}/{path}"
        tls = config.tls.get(host)
        plain = scheme == "http" or is_loopback_host(host) or bool(tls and tls.insecure_skip_verify)
        out.append(Endpoint(host, path, plain, True, config.auth.get(host), tls))
    # The registry's own endpoint is always the last resort, as containerd and k3s do.
    tls = config.tls.get(registry)
    plain = is_loopback_host(registry) or bool(tls and tls.insecure_skip_verify)
    default = Endpoint(registry, ref.path, plain, False, config.auth.get(registry), tls)
    if default not in out:
        out.append(default)
    return out


def _split_url(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port], path prefix) of an endpoint URL; no scheme means https."""
    text = url.strip()
    scheme = "https"
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
    host, _, path = text.partition("/")
    path = path.strip("/")
    if path == "v2" or path.startswith("v2/"):
        path = path[3:] if path.startswith("v2/") else ""
    return scheme, _registry_key(host), path


def _registry_key(name: str) -> str:
    key = name.strip().lower()
    if key in ("index.docker.io", "registry-1.docker.io"):
        return reference.DEFAULT_DOMAIN
    return key


def _go_replacement(repl: str) -> str:
    """A Go regexp replacement (`$1`, `${1}`) in Python's syntax (`\\g<1>`)."""
    out = re.sub(r"\$\{(\w+)\}", r"\\g<\1>", repl)
    return re.sub(r"\$(\d+)", r"\\g<\1>", out)


def _auth_credential(auth: Any, source: str) -> Credential | None:
    if not isinstance(auth, dict):
        return None
    value: Obj = {"username": auth.get("username"), "password": auth.get("password"), "auth": auth.get("auth"),
                  "identitytoken": auth.get("identity_token") or auth.get("identitytoken")}
    return credential_from_entry(value, source)
