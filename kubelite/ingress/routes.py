"""The routing table of the ingress controller: which backend answers a host and a path.

Pure data and functions, rebuilt from the Ingresses of our class whenever one changes.
The rules are the ones the Ingress documentation specifies:

- hosts: an exact host beats a ``*.`` wildcard, which matches exactly one more label
  (``*.foo.com`` matches ``bar.foo.com``, not ``foo.com`` nor ``a.bar.foo.com``); rules
  without a host match every host.  When no path of the most specific host matches, the
  next one is tried (exact, then wildcard, then host-less rules), as Traefik's routers do;
- paths: ``Exact`` is the whole path, case-sensitive; ``Prefix`` matches whole
  ``/``-separated elements, ignoring a trailing slash on either side (``/foo`` matches
  ``/foo``, ``/foo/`` and ``/foo/bar``, not ``/foobar``); ``ImplementationSpecific`` is
  treated as ``Prefix``.  The longest matching path wins; on a tie, Exact beats Prefix;
- several Ingresses merge; when two claim the same host, path and type, the older one
  (then the first by namespace/name) keeps it.  The oldest Ingress with a
  ``defaultBackend`` answers what no rule matches; without one the answer is 404.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Backend:
    """Where a matched request goes: a Service port in the Ingress's namespace (or a resource)."""

    namespace: str
    service: str = ""
    port_name: str = ""
    port_number: int = 0
    resource: str = ""  # kind/name of a resource backend, which this controller cannot serve
    ingress: str = ""   # namespace/name of the Ingress the route came from


@dataclass(frozen=True)
class Route:
    """One path of one rule."""

    path: str
    path_type: str  # Exact or Prefix (ImplementationSpecific is stored as Prefix)
    backend: Backend

    def matches(self, request_path: str) -> bool:
        """Whether the request path is matched by this route's path and type."""
        if self.path_type == "Exact":
            return request_path == self.path
        return prefix_matches(self.path, request_path)

    @property
    def length(self) -> int:
        """How specific the path is: its length without a trailing slash."""
        p = self.path.rstrip("/")
        return len(p)


def _elements(path: str) -> list[str]:
    return [e for e in path.split("/") if e]


def prefix_matches(prefix: str, request_path: str) -> bool:
    """Prefix matching element by element (``/aaa/bbb`` matches ``/aaa/bbb/ccc``, not ``/aaa/bbbxyz``)."""
    want = _elements(prefix)
    have = _elements(request_path)
    return have[:len(want)] == want


def host_matches(pattern: str, host: str) -> bool:
    """A rule's host against the request's: exact, or a wildcard covering exactly one label."""
    if pattern.startswith("*."):
        suffix = pattern[1:]
        return host.endswith(suffix) and "." not in host[:-len(suffix)] and len(host) > len(suffix)
    return host == pattern


def normalize_host(header: str) -> str:
    """The Host header without its port and trailing dot, lower-cased."""
    h = header.strip().lower()
    if h.startswith("["):  # an IPv6 literal: [::1]:80
        return h.split("]", 1)[0] + "]"
    return h.rsplit(":", 1)[0].rstrip(".") if ":" in h else h.rstrip(".")


def _backend(ing: Obj, spec: Obj) -> Backend:
    md = ing.get("metadata") or {}
    ns = md.get("namespace") or ""
    ident = f"{ns}/{md.get('name', '')}"
    svc = spec.get("service")
    if svc:
        port = svc.get("port") or {}
        return Backend(ns, svc.get("name") or "", port.get("name") or "", int(port.get("number") or 0), ingress=ident)
    res = spec.get("resource") or {}
    return Backend(ns, resource=f"{res.get('kind', '')}/{res.get('name', '')}", ingress=ident)


def _age_key(ing: Obj) -> tuple[str, str, str]:
    md = ing.get("metadata") or {}
    return (md.get("creationTimestamp") or "", md.get("namespace") or "", md.get("name") or "")


@dataclass
class RouteTable:
    """Every route of the Ingresses this controller serves, grouped by host."""

    exact: dict[str, list[Route]] = field(default_factory=dict)
    wildcard: dict[str, list[Route]] = field(default_factory=dict)
    any_host: list[Route] = field(default_factory=list)
    default: Backend | None = None

    @classmethod
    def build(cls, ingresses: list[Obj]) -> RouteTable:
        """The table for a set of Ingresses (already filtered to our class)."""
        table = cls()
        seen: set[tuple[str, str, str]] = set()
        for ing in sorted(ingresses, key=_age_key):
            spec = ing.get("spec") or {}
            if table.default is None and spec.get("defaultBackend"):
                table.default = _backend(ing, spec["defaultBackend"])
            for rule in spec.get("rules") or []:
                host = (rule.get("host") or "").lower()
                for p in (rule.get("http") or {}).get("paths") or []:
                    ptype = p.get("pathType") or "Prefix"
                    ptype = "Exact" if ptype == "Exact" else "Prefix"
                    path = p.get("path") or "/"
                    if (host, path, ptype) in seen:
                        continue  # an older Ingress already claims it
                    seen.add((host, path, ptype))
                    route = Route(path, ptype, _backend(ing, p.get("backend") or {}))
                    if not host:
                        table.any_host.append(route)
                    elif host.startswith("*."):
                        table.wildcard.setdefault(host, []).append(route)
                    else:
                        table.exact.setdefault(host, []).append(route)
        return table

    def _candidates(self, host: str) -> list[list[Route]]:
        groups: list[list[Route]] = []
        if host in self.exact:
            groups.append(self.exact[host])
        wild = [r for pattern, routes in self.wildcard.items() if host_matches(pattern, host) for r in routes]
        if wild:
            groups.append(wild)
        groups.append(self.any_host)
        return groups

    def match(self, host: str, path: str) -> Backend | None:
        """The backend for a request (host already normalized), the default backend, or None."""
        for routes in self._candidates(host):
            best: Route | None = None
            for r in routes:
                if not r.matches(path):
                    continue
                if best is None or (r.length, r.path_type == "Exact") > (best.length, best.path_type == "Exact"):
                    best = r
            if best is not None:
                return best.backend
        return self.default
