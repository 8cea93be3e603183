"""The audit log: one JSON line (an ``audit.k8s.io/v1`` Event) per request stage, as kube-apiserver writes it.

Turned on by ``--audit-policy-file`` (an ``audit.k8s.io/v1`` Policy) together with
``--audit-log-path`` (a file, or ``-`` for standard output).  For each request the first
policy rule that matches it picks the level:

- ``None``: nothing is written;
- ``Metadata``: who asked what (user, verb, object reference, source address, user agent,
  the answer's status code, the authorization decision and annotations);
- ``Request``: also the request's body (writes only);
- ``RequestResponse``: also the answer's body.

Stages written: ``RequestReceived`` once the caller is known, ``ResponseStarted`` when a watch
starts streaming, ``ResponseComplete`` at the end; ``omitStages`` (the policy's and the
rule's) leave some out.  Every answer carries the request's ``Audit-Id`` header (the one the
client sent, if it sent one).  Admission adds annotations through ``annotate`` (a
ValidatingAdmissionPolicy binding with ``Audit`` in its validationActions, and the policy's
auditAnnotations).
"""
from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
import uuid
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
import yaml
from aiohttp import web

from kubelite.apiserver.authn import User
from kubelite.apiserver.authz.attributes import Attributes, request_attributes

log = logging.getLogger("kubelite.apiserver.audit")

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
ANONYMOUS = User("system:anonymous", ["system:unauthenticated"])

# Annotations admission adds to the request being served (None outside a request).
ANNOTATIONS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("audit_annotations", default=None)


class PolicyError(ValueError):
    """An audit policy file that cannot be used (the message says where)."""


def annotate(key: str, value: str) -> None:
    """Add an annotation to the audit event of the request being served (first value wins)."""
    found = ANNOTATIONS.get()
    if found is not None:
        found.setdefault(key, value)


@dataclass
class Rule:
    """One policy rule: what it matches, and the level and omitted stages it gives."""

    level: str
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)
    namespaces: list[str] | None = None
    resources: list[dict[str, Any]] | None = None
    non_resource_urls: list[str] | None = None
    omit_stages: list[str] = field(default_factory=list)
    omit_managed_fields: bool | None = None

    def matches(self, a: Attributes) -> bool:
        """Whether this rule applies to the request ``a`` describes."""
        if self.users and a.user.name not in self.users:
            return False
        if self.groups and not set(self.groups) & set(a.user.groups):
            return False
        if self.verbs and a.verb not in self.verbs:
            return False
        if not a.resource_request:
            # A rule about resources or namespaces says nothing about paths such as /healthz.
            if self.namespaces is not None or self.resources is not None:
                return False
            if self.non_resource_urls is None:
                return True
            return any(a.path == u or (u.endswith("*") and a.path.startswith(u[:-1])) for u in self.non_resource_urls)
        if self.non_resource_urls is not None:
            return False
        if self.namespaces is not None and a.namespace not in self.namespaces:
            return False
        return self.resources is None or any(_group_matches(gr, a) for gr in self.resources)


def _group_matches(gr: dict[str, Any], a: Attributes) -> bool:
    """One ``resources`` entry (a group, its resources, their names) against the request."""
    if str(gr.get("group") or "") != a.api_group:
        return False
    names = gr.get("resourceNames") or []
    if names and a.name not in names:
        return False
    wanted = gr.get("resources") or []
    if not wanted:
        return True
    full = a.resource_and_sub
    for r in wanted:
        r = str(r)
        if r in ("*", full):
            return True
        if a.subresource and r == f"*/{a.subresource}":
            return True
        if r.endswith("/*") and r[:-2] == a.resource:
            return True
    return False


@dataclass
class Policy:
    """An ``audit.k8s.io/v1`` Policy: its rules in order, and what applies to all of them."""

    rules: list[Rule]
    omit_stages: list[str] = field(default_factory=list)
    omit_managed_fields: bool = False

    def decide(self, a: Attributes) -> tuple[str, set[str], bool]:
        """(level, stages left out, whether managedFields are dropped) for the request."""
        for rule in self.rules:
            if rule.matches(a):
                omit = rule.omit_managed_fields if rule.omit_managed_fields is not None else self.omit_managed_fields
                return rule.level, set(self.omit_stages) | set(rule.omit_stages), omit
        return "None", set(), self.omit_managed_fields


def _strings(doc: dict[str, Any], key: str, where: str) -> list[str]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}.{key}: must be a list of strings")
    return list(value)


def _stages(doc: dict[str, Any], where: str) -> list[str]:
    stages = _strings(doc, "omitStages", where)
    for s in stages:
        if s not in STAGES:
            raise PolicyError(f"{where}.omitStages: unsupported value {s!r} (one of {', '.join(STAGES)})")
    return stages


def parse_policy(text: str) -> Policy:
    """The Policy in ``text`` (YAML or JSON); PolicyError saying what is wrong."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PolicyError(f"not YAML: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Policy":
        raise PolicyError("kind: must be Policy")
    if doc.get("apiVersion") not in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1"):
        raise PolicyError(f"apiVersion: unsupported {doc.get('apiVersion')!r} (audit.k8s.io/v1)")
    raw = doc.get("rules")
    if not isinstance(raw, list) or not raw:
        raise PolicyError("rules: a policy needs at least one rule")
    rules = []
    for i, r in enumerate(raw):
        where = f"rules[{i}]"
        if not isinstance(r, dict):
            raise PolicyError(f"{where}: must be an object")
        level = r.get("level")
        if level not in LEVELS:
            raise PolicyError(f"{where}.level: unsupported value {level!r} (one of {', '.join(LEVELS)})")
        resources = r.get("resources")
        if resources is not None and (not isinstance(resources, list)
                                      or not all(isinstance(g, dict) for g in resources)):
            raise PolicyError(f"{where}.resources: must be a list of objects with group, resources, resourceNames")
        urls = _strings(r, "nonResourceURLs", where) if "nonResourceURLs" in r else None
        if urls is not None and (resources is not None or "namespaces" in r):
            raise PolicyError(f"{where}: nonResourceURLs cannot be combined with resources or namespaces")
        rules.append(Rule(level=str(level), users=_strings(r, "users", where), groups=_strings(r, "userGroups", where),
                          verbs=_strings(r, "verbs", where),
                          namespaces=_strings(r, "namespaces", where) if "namespaces" in r else None,
                          resources=resources, non_resource_urls=urls, omit_stages=_stages(r, where),
                          omit_managed_fields=r.get("omitManagedFields")))
    return Policy(rules, _stages(doc, "policy"), bool(doc.get("omitManagedFields")))


def now() -> str:
    """The current time as audit events write it (UTC, microseconds)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Request:
    """The audit state of one request."""

    audit_id: str
    received: str
    attrs: Attributes
    level: str
    omit: set[str]
    omit_managed_fields: bool
    annotations: dict[str, str]
    token: contextvars.Token[dict[str, str] | None]
    started: bool = False
    created_name: str = ""  # a create names its object in the body, not the path


class AuditLog:
    """Writes the events of the requests the policy selects."""

    def __init__(self, policy: Policy, path: str):
        self.policy = policy
        self.path = path
        self._out: IO[bytes] = sys.stdout.buffer if path == "-" else open(path, "ab")  # noqa: SIM115 (open for the server's life)

    def close(self) -> None:
        """Flush and close the log file."""
        if self._out is not sys.stdout.buffer:
            self._out.close()

    def received(self, request: web.Request) -> None:
        """The caller is known: decide the level and write RequestReceived."""
        if "audit" in request:
            return
        user = request.get("user") or ANONYMOUS
        attrs = request_attributes(user, request.method, request.path, request.query)
        level, omit, omit_mf = self.policy.decide(attrs)
        annotations: dict[str, str] = {}
        state = _Request(request.headers.get("Audit-ID") or str(uuid.uuid4()), request.get("audit_received") or now(),
                         attrs, level, omit, omit_mf, annotations, ANNOTATIONS.set(annotations))
        request["audit"] = state
        if level != "None" and "RequestReceived" not in omit:
            self._write(self._event(request, state, "RequestReceived", None, None))

    def started(self, request: web.Request, response: web.StreamResponse) -> None:
        """A long-running answer (a watch) starts streaming: write ResponseStarted."""
        state: _Request | None = request.get("audit")
        if state is None or state.started:
            return
        state.started = True
        if state.level != "None" and "ResponseStarted" not in state.omit:
            self._write(self._event(request, state, "ResponseStarted", response, None))

    def completed(self, request: web.Request, response: web.StreamResponse) -> None:
        """The answer is done: write ResponseComplete (with the bodies the level asks for)."""
        if "audit" not in request:
            self.received(request)
        state: _Request = request["audit"]
        ANNOTATIONS.reset(state.token)
        if state.level == "None" or "ResponseComplete" in state.omit:
            return
        bodies: dict[str, Any] = {}
        if state.attrs.verb in WRITE_VERBS:
            obj = _request_object(request.get("body") or b"", request.content_type)
            if state.attrs.verb == "create" and not state.attrs.name and isinstance(obj, dict):
                state.created_name = str((obj.get("metadata") or {}).get("name") or "")
            if state.level in ("Request", "RequestResponse"):
                bodies["requestObject"] = _trimmed(obj, state)
        # The answer is parsed once: for the event's body and for an error's Status details.
        answer = _json_body(response) if state.level == "RequestResponse" or response.status >= 400 else None
        if state.level == "RequestResponse":
            bodies["responseObject"] = _trimmed(answer, state)
        self._write(self._event(request, state, "ResponseComplete", response, bodies, answer))

    def _event(self, request: web.Request, state: _Request, stage: str, response: web.StreamResponse | None,
               bodies: dict[str, Any] | None, answer: Any = None) -> dict[str, Any]:
        a = state.attrs
        user: dict[str, Any] = {"username": a.user.name, "groups": list(a.user.groups)}
        if a.user.uid:
            user["uid"] = a.user.uid
        if a.user.extra:
            user["extra"] = a.user.extra
        ev: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": state.level,
                              "auditID": state.audit_id, "stage": stage, "requestURI": request.path_qs,
                              "verb": a.verb, "user": user, "sourceIPs": [request.remote or ""],
                              "userAgent": request.headers.get("User-Agent", "")}
        if a.resource_request:
            ref = {"resource": a.resource, "namespace": a.namespace, "name": a.name or state.created_name,
                   "apiGroup": a.api_group,
                   "apiVersion": a.api_version, "subresource": a.subresource}
            ev["objectRef"] = {k: v for k, v in ref.items() if v}
        if response is not None:
            status: dict[str, Any] = {"metadata": {}, "code": response.status}
            if response.status >= 400 and isinstance(answer, dict) and answer.get("kind") == "Status":
                status.update({k: answer[k] for k in ("status", "message", "reason") if answer.get(k)})
            ev["responseStatus"] = status
        if bodies:
            ev.update({k: v for k, v in bodies.items() if v is not None})
        ev["requestReceivedTimestamp"] = state.received
        ev["stageTimestamp"] = now()
        decision = request.get("authz_decision")
        annotations = dict(state.annotations)
        if decision is not None:
            annotations.setdefault("authorization.k8s.io/decision", decision[0])
            annotations.setdefault("authorization.k8s.io/reason", decision[1])
        if annotations:
            ev["annotations"] = annotations
        return ev

    def _write(self, ev: dict[str, Any]) -> None:
        try:
            self._out.write(orjson.dumps(ev) + b"\n")
            self._out.flush()
        except OSError as e:  # a full disk must not fail the request (upstream's log backend drops too)
            log.warning("audit log %s: %s", self.path, e)


def _json_body(response: web.StreamResponse) -> Any:
    """A JSON answer as an object (None for a stream, an empty or a non-JSON body such as protobuf)."""
    if not (isinstance(response, web.Response) and isinstance(response.body, bytes)) or not response.body \
            or "json" not in response.content_type:
        return None
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None


def _request_object(body: bytes, content_type: str) -> Any:
    """A request body (JSON, YAML or protobuf, as the API takes them) as an object, or None."""
    if not body:
        return None
    if "json" in content_type:  # patches too (a JSON patch is a list, which decode_body refuses)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    from kubelite.api import errors
    from kubelite.apiserver.negotiation import decode_body
    try:
        return decode_body(content_type, body)
    except (errors.StatusError, ValueError):
        return None


def _trimmed(obj: Any, state: _Request) -> Any:
    """``obj`` without metadata.managedFields when the rule asks for that."""
    if state.omit_managed_fields and isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        obj["metadata"].pop("managedFields", None)
    return obj


def load(policy_file: str, log_path: str) -> AuditLog | None:
    """The audit log the flags ask for (None when off); PolicyError or OSError when unusable."""
    if not policy_file:
        return None
    if not log_path:
        log.warning("--audit-policy-file without --audit-log-path: no audit events are written")
        return None
    try:
        with open(policy_file) as f:
            policy = parse_policy(f.read())
    except PolicyError as e:
        raise PolicyError(f"--audit-policy-file {policy_file}: {e}") from None
    return AuditLog(policy, log_path)

