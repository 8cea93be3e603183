"""The review APIs: questions answered by the API server, never stored.

* authorization.k8s.io/v1 SelfSubjectAccessReview (``kubectl auth can-i``),
  SubjectAccessReview (any user, for delegated authorization), LocalSubjectAccessReview
  (the same, inside one namespace) and SelfSubjectRulesReview (``kubectl auth can-i
  --list``);
* authentication.k8s.io/v1 SelfSubjectReview (``kubectl auth whoami``) and TokenReview
  (is this bearer token valid, and whose is it).

Each is a POST of the review object; the answer is the same object with ``status``
filled in, 201 Created, as upstream.  Creating a review is itself authorized like any
create (``system:basic-user`` lets every authenticated user ask about themselves).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from kubelite.api import errors
from kubelite.api.validation_common import invalid
from kubelite.apiserver import handlers as h
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver.authn import Authenticator, User
from kubelite.apiserver.authz.attributes import Attributes, non_resource_attributes, resource_attributes
from kubelite.apiserver.authz.chain import Authorizer
from kubelite.apiserver.authz.node import node_identity
from kubelite.apiserver.authz.rbac import RBACAuthorizer
from kubelite.apiserver.handlers import Target
from kubelite.apiserver.tokens import InvalidToken, TokenIssuer
from kubelite.apiserver.verbs import negotiate, render_one

Obj = dict[str, Any]


def _strings(v: Any) -> list[str]:
    """The strings of a list field (anything else: none)."""
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def _user(request: web.Request) -> User:
    return request["user"]


class _Review:
    """A posted review, read as any create is (content type, dryRun, fieldValidation), and
    the form its answer must take."""

    def __init__(self, request: web.Request, t: Target, obj: Obj, wants: neg.Wants, warnings: list[str]):
        self.request, self.t, self.obj, self.wants, self.warnings = request, t, obj, wants, warnings

    @property
    def spec(self) -> Obj:
        """The review's spec (an object, even when the body had none)."""
        spec = self.obj.get("spec")
        return spec if isinstance(spec, dict) else {}

    def answer(self, status: Obj) -> web.Response:
        """201 with the review and its status, as the client asked (JSON or YAML)."""
        self.obj["status"] = status
        return render_one(self.request, self.t.info, self.obj, 201, headers=h.warning_headers(self.warnings),
                          w=self.wants)


async def _read(request: web.Request, t: Target) -> _Review:
    wants = negotiate(request, t.info)
    h.dry_run(request)  # only validated: a review stores nothing anyway
    # Typed decoding first, as for any create: wrong types are a 400 with the decoder's words.
    obj, warnings = h.decode_object(request, t.info.api_version, t.info.kind, await neg.read_body(request), t.info)
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    if not isinstance(obj.get("spec"), dict):
        obj["spec"] = {}
    obj.pop("status", None)
    return _Review(request, t, obj, wants, warnings)


def _one_of(t: Target, spec: Obj) -> None:
    """Exactly one of resourceAttributes and nonResourceAttributes."""
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if ra is not None and nra is not None:
        raise errors.invalid(t.info.kind, t.info.group, "", [invalid(
            "spec.nonResourceAttributes", nra, "cannot be specified in combination with resourceAttributes")])
    if ra is None and nra is None:
        raise errors.invalid(t.info.kind, t.info.group, "", [invalid(
            "spec.resourceAttributes", None, "exactly one of nonResourceAttributes or resourceAttributes must be specified")])
    for key, v in (("resourceAttributes", ra), ("nonResourceAttributes", nra)):
        if v is not None and not isinstance(v, dict):
            raise errors.bad_request(f"spec.{key}: must be an object")


def _attributes(user: User, spec: Obj) -> Attributes:
    ra = spec.get("resourceAttributes")
    if isinstance(ra, dict):
        return resource_attributes(user, ra)
    nra = spec.get("nonResourceAttributes")
    return non_resource_attributes(user, nra if isinstance(nra, dict) else {})


def _review_user(t: Target, spec: Obj) -> User:
    name = spec.get("user") if isinstance(spec.get("user"), str) else ""
    groups = _strings(spec.get("groups"))
    if not name and not groups:
        raise errors.invalid(t.info.kind, t.info.group, "", [invalid(
            "spec.user", name or "", "at least one of user or group must be specified")])
    extra_in = spec.get("extra") if isinstance(spec.get("extra"), dict) else {}
    assert isinstance(extra_in, dict)
    extra = {str(k): _strings(v) for k, v in extra_in.items() if isinstance(v, list)}
    uid = spec.get("uid") if isinstance(spec.get("uid"), str) else ""
    return User(name or "", groups, uid or "", extra)


def _rules_status(rules: list[Obj], problems: list[str], incomplete: bool) -> Obj:
    """A SubjectRulesReviewStatus from RBAC rules."""
    resource_rules: list[Obj] = []
    non_resource_rules: list[Obj] = []
    for rule in rules:
        if rule.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": _strings(rule.get("verbs")),
                                       "nonResourceURLs": _strings(rule["nonResourceURLs"])})
            continue
        rr: Obj = {"verbs": _strings(rule.get("verbs"))}
        for key in ("apiGroups", "resources", "resourceNames"):
            if rule.get(key):
                rr[key] = _strings(rule[key])
        resource_rules.append(rr)
    status: Obj = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": incomplete}
    if problems:
        status["evaluationError"] = "[" + ", ".join(problems) + "]" if len(problems) > 1 else problems[0]
    return status


class ReviewHandlers:
    """The HTTP handlers of the review kinds, over the server's authenticator and authorizers."""

    def __init__(self, *, authorizer: Authorizer, rbac: RBACAuthorizer, authenticator: Authenticator,
                 issuer: TokenIssuer):
        self.authorizer = authorizer
        self.rbac = rbac
        self.authenticator = authenticator
        self.issuer = issuer

    async def _decide(self, user: User, spec: Obj) -> Obj:
        verdict = await self.authorizer.authorize(_attributes(user, spec))
        status: Obj = {"allowed": verdict.allowed}
        if verdict.decision.value == "deny":
            status["denied"] = True
        if verdict.reason:
            status["reason"] = verdict.reason
        return status

    async def self_subject_access_review(self, request: web.Request, t: Target) -> web.Response:
        """POST selfsubjectaccessreviews: may I do this?"""
        r = await _read(request, t)
        _one_of(t, r.spec)
        return r.answer(await self._decide(_user(request), r.spec))

    async def subject_access_review(self, request: web.Request, t: Target) -> web.Response:
        """POST subjectaccessreviews (and localsubjectaccessreviews): may this user do this?"""
        r = await _read(request, t)
        spec = r.spec
        _one_of(t, spec)
        user = _review_user(t, spec)
        if t.info.namespaced:
            ra = spec.get("resourceAttributes")
            if spec.get("nonResourceAttributes") is not None:
                raise errors.invalid(t.info.kind, t.info.group, "", [invalid(
                    "spec.nonResourceAttributes", spec["nonResourceAttributes"], "disallowed on this kind of request")])
            if isinstance(ra, dict) and (ra.get("namespace") or "") != t.namespace:
                raise errors.invalid(t.info.kind, t.info.group, "", [invalid(
                    "spec.resourceAttributes.namespace", ra.get("namespace") or "", "must match metadata.namespace")])
            r.obj["metadata"]["namespace"] = t.namespace
        return r.answer(await self._decide(user, spec))

    async def self_subject_rules_review(self, request: web.Request, t: Target) -> web.Response:
        """POST selfsubjectrulesreviews: everything I may do in a namespace."""
        r = await _read(request, t)
        ns = r.spec.get("namespace") if isinstance(r.spec.get("namespace"), str) else ""
        user = _user(request)
        rules, problems = await self.rbac.rules_for(user, ns or "")
        node = node_identity(user) is not None
        if node:
            problems = [*problems, "node authorizer does not support user rule resolution"]
        return r.answer(_rules_status(rules, problems, node))

    async def self_subject_review(self, request: web.Request, t: Target) -> web.Response:
        """POST selfsubjectreviews: who am I?"""
        r = await _read(request, t)
        r.obj.pop("spec", None)
        return r.answer({"userInfo": _user(request).info()})

    async def token_review(self, request: web.Request, t: Target) -> web.Response:
        """POST tokenreviews: whose is this token, and is it valid for these audiences?"""
        r = await _read(request, t)
        spec = r.spec
        token = spec.get("token") if isinstance(spec.get("token"), str) else ""
        if not token:
            raise errors.bad_request("token is required for TokenReview in authentication")
        wanted = _strings(spec.get("audiences"))
        status: Obj = {"user": {}}
        try:
            user = await self.authenticator.authenticate_token(token, wanted or None)
        except InvalidToken as e:
            status["error"] = str(e)
            user = None
        if user is not None:
            status["authenticated"] = True
            status["user"] = user.with_authenticated().info()
            status["audiences"] = wanted or list(self.issuer.audiences)
        return r.answer(status)
