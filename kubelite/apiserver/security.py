"""Everything between a request arriving and its handler running: authentication,
impersonation, authorization, and the admission checks that need the requesting user.

One ``Security`` object per API server wires the pieces together:

* ``Authenticator`` (``authn.py``): certificates, the token file, service-account JWTs;
* the authorizer chain (``authz/``): system:masters, then the Node authorizer, then RBAC;
* admission for writes (called by the registry with the final object): RBAC escalation
  prevention and NodeRestriction;
* the routes that belong to security: the review APIs, the TokenRequest subresource, the
  service-account issuer discovery documents and the agents' certificate endpoint.

``check`` is the filter chain of one request, in upstream's order: authenticate (401),
impersonate (403 if not allowed to), authorize (403).  It remembers the user in a
context variable so admission, which runs deep inside the registry, knows who writes.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kubelite.api import errors
from kubelite.api.resources import NODES, PODS, SECRETS, SERVICEACCOUNTS, ResourceInfo
from kubelite.apiserver.authn import Authenticator, StaticTokens, User
from kubelite.apiserver.authz import impersonation
from kubelite.apiserver.authz.attributes import Attributes, request_attributes
from kubelite.apiserver.authz.chain import Chain, PrivilegedGroup, forbidden
from kubelite.apiserver.authz.escalation import EscalationCheck
from kubelite.apiserver.authz.node import NodeAuthorizer, node_restriction
from kubelite.apiserver.authz.rbac import RBACAuthorizer, RBACCache
from kubelite.apiserver.authz.reviews import ReviewHandlers
from kubelite.apiserver.handlers import Target
from kubelite.apiserver.nodecerts import PATH as NODE_CERTS_PATH
from kubelite.apiserver.nodecerts import CertSigner, NodeCertificates
from kubelite.apiserver.registry import Registry
from kubelite.apiserver.tokens import TokenIssuer
from kubelite.apiserver.tokens_api import TokenAPI

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Handler = Callable[[web.Request, Target], Awaitable[web.StreamResponse]]
PathHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CURRENT_USER: contextvars.ContextVar[User | None] = contextvars.ContextVar("kubelite_user", default=None)

RBAC_GROUP = "rbac.authorization.k8s.io"
_LOOKUP = {"ServiceAccount": SERVICEACCOUNTS, "Pod": PODS, "Secret": SECRETS, "Node": NODES}
# Connect subresources whose GET upgrades to a stream that can send input: upstream
# (1.31+) also requires "create" for them, so a GET-only grant cannot exec.
_STREAMING = ("exec", "attach", "portforward")


class Security:
    """Authentication, authorization and security admission of one API server."""

    def __init__(self, registry: Registry, *, token_file: str | None, issuer: TokenIssuer,
                 cert_signer: CertSigner | None = None):
        self.registry = registry
        self.issuer = issuer
        self.authenticator = Authenticator(StaticTokens.load(token_file), issuer, self._lookup)
        self.rbac_cache = RBACCache(registry)
        self.rbac = RBACAuthorizer(self.rbac_cache)
        self.node = NodeAuthorizer(registry)
        self.authorizer = Chain([PrivilegedGroup(), self.node, self.rbac])
        self.escalation = EscalationCheck(self.authorizer, self.rbac)
        self.tokens = TokenAPI(issuer)
        self.node_certificates = NodeCertificates(cert_signer)
        r = ReviewHandlers(authorizer=self.authorizer, rbac=self.rbac, authenticator=self.authenticator, issuer=issuer)
        self._reviews: dict[tuple[str, str], Handler] = {
            ("authorization.k8s.io", "selfsubjectaccessreviews"): r.self_subject_access_review,
            ("authorization.k8s.io", "subjectaccessreviews"): r.subject_access_review,
            ("authorization.k8s.io", "localsubjectaccessreviews"): r.subject_access_review,
            ("authorization.k8s.io", "selfsubjectrulesreviews"): r.self_subject_rules_review,
            ("authentication.k8s.io", "selfsubjectreviews"): r.self_subject_review,
            ("authentication.k8s.io", "tokenreviews"): r.token_review,
        }
        self._watch: asyncio.Task[None] | None = None
        registry.admission.append(self.admit)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Follow RBAC changes in the store (a backstop to ``done``)."""
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self.rbac_cache.watch(), name="rbac-cache-watch")

    async def stop(self) -> None:
        """Stop following the store."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None

    async def _lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        info = _LOOKUP[kind]
        try:
            return await self.registry.get(info, namespace, name)
        except errors.NotFound:
            return None

    # -- the request filter chain ---------------------------------------------------------------
    async def authenticate(self, request: web.Request) -> User:
        """Authenticate and impersonate: the request's user, or a 401/403 error."""
        user = await self.authenticator.authenticate(request)
        if user is None:
            raise errors.unauthorized()
        if impersonation.requested(request.headers):
            user = await impersonation.impersonate(user, request.headers, self.authorizer)
        CURRENT_USER.set(user)
        return user

    async def authorize(self, request: web.Request, user: User) -> None:
        """Authorize the authenticated request, or raise a 403 error.  As upstream, this runs
        after the in-flight limits: a caller over the cap hears 429 whatever its rights."""
        a = request_attributes(user, request.method, request.path, request.query)
        verdict = await self.authorizer.authorize(a)
        request["authz_decision"] = ("allow" if verdict.allowed else "forbid", verdict.reason)  # for the audit log
        if not verdict.allowed:
            raise self._refused(a, verdict.reason)
        if a.resource_request and a.resource == "pods" and a.subresource in _STREAMING and a.verb == "get":
            create = request_attributes(user, "POST", request.path, request.query)
            verdict = await self.authorizer.authorize(create)
            if not verdict.allowed:
                raise self._refused(create, verdict.reason)
        if a.resource_request and a.api_group == RBAC_GROUP and a.verb not in ("get", "list", "watch"):
            request["rbac_write"] = True

    @staticmethod
    def _refused(a: Attributes, reason: str) -> errors.StatusError:
        err = forbidden(a, reason)
        # A refused system identity (a component, a node, a ServiceAccount) usually means a
        # role is missing a rule: worth a line in the log, unlike a user's refusal.
        (log.info if a.user.name.startswith("system:") else log.debug)("%s", err.message)
        return err

    def done(self, request: web.Request) -> None:
        """Called after every handler: an RBAC write makes the snapshot stale at once, and
        the user is forgotten (requests of one connection may share a task)."""
        if request.get("rbac_write"):
            self.rbac_cache.invalidate()
        CURRENT_USER.set(None)

    # -- admission -----------------------------------------------------------------------------
    async def admit(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        """The user-dependent admission checks of a write (registry hook)."""
        user = CURRENT_USER.get()
        if user is None:
            return  # the server's own writes
        await node_restriction(info, obj, old, user)
        await self.escalation.admit(info, obj, old, user)

    # -- routes --------------------------------------------------------------------------------
    def route(self, t: Target, method: str) -> Handler | None:
        """The security handler for a resource request, if it is one of ours."""
        if method != "POST":
            return None
        if t.subresource == "token" and t.info is SERVICEACCOUNTS:
            return self.tokens.token_request
        if not t.subresource and not t.name:
            return self._reviews.get((t.info.group, t.info.plural))
        return None

    def path_route(self, path: str) -> PathHandler | None:
        """The handler of a non-resource path we serve (issuer discovery, node certificates)."""
        if path == "/.well-known/openid-configuration":
            return self.tokens.openid_configuration
        if path == "/openid/v1/jwks":
            return self.tokens.jwks
        if path == NODE_CERTS_PATH:
            return self.node_certificates.handle
        return None
