"""HTTP side of service-account tokens: the TokenRequest subresource and the issuer's
discovery documents.

``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`` (``kubectl create token``)
answers a TokenRequest with ``status.token`` and ``status.expirationTimestamp``.  As
upstream: ``expirationSeconds`` defaults to 3600 and must be at least 600; audiences
default to the API server's own; ``boundObjectRef`` may name a Pod (which must run as
this ServiceAccount), a Secret or a Node, and the token then dies with that object.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from aiohttp import web

from kubelite.api import errors, meta
from kubelite.api.resources import NODES, PODS, SECRETS, SERVICEACCOUNTS
from kubelite.api.validation_common import invalid
from kubelite.apiserver import handlers as h
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver.handlers import Target
from kubelite.apiserver.registry import Registry
from kubelite.apiserver.tokens import DEFAULT_EXPIRATION, MAX_EXPIRATION, MIN_EXPIRATION, TokenIssuer

Obj = dict[str, Any]
_BOUND = {"Pod": PODS, "Secret": SECRETS, "Node": NODES}


def _check_expiration(name: str, spec: Obj) -> int:
    exp = spec.get("expirationSeconds")
    if exp is None:
        return DEFAULT_EXPIRATION
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise errors.bad_request("spec.expirationSeconds: must be an integer")
    if exp < MIN_EXPIRATION:
        raise errors.invalid("TokenRequest", "authentication.k8s.io", name, [invalid(
            "spec.expirationSeconds", exp, "may not specify a duration less than 10 minutes")])
    if exp > MAX_EXPIRATION:
        raise errors.invalid("TokenRequest", "authentication.k8s.io", name, [invalid(
            "spec.expirationSeconds", exp, "may not specify a duration larger than 2^32 seconds")])
    return exp


class TokenAPI:
    """The TokenRequest subresource and the discovery documents of one token issuer."""

    def __init__(self, issuer: TokenIssuer):
        self.issuer = issuer

    async def token_request(self, request: web.Request, t: Target) -> web.Response:
        """POST serviceaccounts/NAME/token: a signed token for the ServiceAccount."""
        reg = await h.registry_from(request)
        wants = neg.wants(request, tables=False)
        h.dry_run(request)
        body, warnings = h.decode_object(request, "authentication.k8s.io/v1", "TokenRequest",
                                         await neg.read_body(request))
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        expiration = _check_expiration(t.name, spec)
        given = spec.get("audiences")
        audiences = [a for a in given if isinstance(a, str)] if isinstance(given, list) else []
        audiences = audiences or list(self.issuer.audiences)
        sa = await reg.get(SERVICEACCOUNTS, t.namespace, t.name)
        bound: dict[str, Obj] = {}
        ref = spec.get("boundObjectRef")
        if isinstance(ref, dict):
            bound = await _bound_objects(reg, t, sa, ref)
        token, exp = self.issuer.issue(namespace=t.namespace, sa=sa, audiences=audiences, expiration=expiration,
                                       pod=bound.get("Pod"), secret=bound.get("Secret"), node=bound.get("Node"))
        out_spec: Obj = {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": None}
        if isinstance(ref, dict):
            out_spec["boundObjectRef"] = {k: ref[k] for k in ("kind", "apiVersion", "name", "uid") if ref.get(k)}
        expires = dt.datetime.fromtimestamp(exp, dt.UTC)
        answer = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                  "metadata": {"name": t.name, "namespace": t.namespace, "creationTimestamp": None},
                  "spec": out_spec, "status": {"token": token, "expirationTimestamp": meta.rfc3339(expires)}}
        return neg.respond(answer, 201, as_yaml=wants.yaml, headers=h.warning_headers(warnings))

    async def openid_configuration(self, request: web.Request) -> web.Response:
        """/.well-known/openid-configuration."""
        return web.Response(body=orjson.dumps(self.issuer.openid_configuration()),
                            content_type="application/json", headers={"Cache-Control": "public, max-age=3600"})

    async def jwks(self, request: web.Request) -> web.Response:
        """/openid/v1/jwks."""
        return web.Response(body=orjson.dumps(self.issuer.jwks()), content_type="application/jwk-set+json",
                            headers={"Cache-Control": "public, max-age=3600"})


async def _bound_objects(reg: Registry, t: Target, sa: Obj, ref: Obj) -> dict[str, Obj]:
    """The object a token is bound to (and, for a scheduled Pod, its Node)."""
    kind = ref.get("kind")
    api_version = ref.get("apiVersion") or "v1"
    info = _BOUND.get(kind) if api_version == "v1" and isinstance(kind, str) else None
    if info is None:
        group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
        raise errors.bad_request(f"cannot bind token to object of type {group}/{api_version}, Kind={kind}"
                                 if group else f"cannot bind token to object of type /{api_version}, Kind={kind}")
    name = ref.get("name") if isinstance(ref.get("name"), str) else ""
    if not name:
        raise errors.bad_request("spec.boundObjectRef.name: Required value")
    obj = await reg.get(info, "" if info is NODES else t.namespace, name)
    if ref.get("uid") and ref["uid"] != meta.uid(obj):
        raise errors.conflict(str(kind), "", name, f"the UID in the bound object reference ({ref['uid']}) does not match "
                              "the UID in record. The object might have been deleted and then recreated")
    out = {str(kind): obj}
    if info is PODS:
        if ((obj.get("spec") or {}).get("serviceAccountName") or "default") != meta.name(sa):
            raise errors.bad_request(f'cannot bind token for serviceaccount "{meta.name(sa)}" to pod running with '
                                     "different serviceaccount name.")
        node_name = (obj.get("spec") or {}).get("nodeName")
        if node_name:
            try:
                out["Node"] = await reg.get(NODES, "", node_name)
            except errors.NotFound:
                pass
    return out
