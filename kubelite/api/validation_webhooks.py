"""Defaulting and validation of admissionregistration.k8s.io/v1 webhook configurations.

Upstream's rules (``pkg/apis/admissionregistration/validation``): every webhook has a
fully qualified name, unique in its configuration, lists admissionReviewVersions and
sideEffects (None or NoneOnDryRun for new objects), has exactly one of url (https only)
or service, a timeout of 1..30 s, rules with operations, groups, versions, resources
and a scope, and named matchConditions whose CEL compiles.  Messages are upstream's.
"""
from __future__ import annotations

import functools
import re
import urllib.parse
from typing import Any

from kubelite.api.validation_common import (
    Errs,
    GoRepr,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    is_dns1035_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_port_num,
    name_is_dns_subdomain,
    not_supported,
    required,
    too_many,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.api.validation_rbac import path_segment_name

Obj = dict[str, Any]
GROUP_VERSION = "admissionregistration.k8s.io/v1"
KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

_REVIEW_VERSIONS = ("v1", "v1beta1")
_FAILURE = ("Fail", "Ignore")
_MATCH = ("Equivalent", "Exact")
_SIDE_EFFECTS_ALL = ("None", "NoneOnDryRun", "Some", "Unknown")
_SIDE_EFFECTS_NONE = ("None", "NoneOnDryRun")
_OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
_REINVOCATION = ("IfNeeded", "Never")
_SCOPES = ("*", "Cluster", "Namespaced")


# --- defaulting -----------------------------------------------------------------------------

def apply_webhook_defaults(kind: str, obj: Obj) -> None:
    """SetDefaults_*Webhook, _Rule and _ServiceReference of admissionregistration/v1."""
    hooks = obj.get("webhooks")
    for hook in hooks if isinstance(hooks, list) else []:
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        if hook.get("namespaceSelector") is None:
            hook["namespaceSelector"] = {}
        if hook.get("objectSelector") is None:
            hook["objectSelector"] = {}
        hook.setdefault("timeoutSeconds", 10)
        if kind == "MutatingWebhookConfiguration":
            hook.setdefault("reinvocationPolicy", "Never")
        rules = hook.get("rules")
        for rule in rules if isinstance(rules, list) else []:
            if isinstance(rule, dict) and rule.get("scope") is None:
                rule["scope"] = "*"
        svc = (hook.get("clientConfig") or {}).get("service") if isinstance(hook.get("clientConfig"), dict) else None
        if isinstance(svc, dict) and svc.get("port") is None:
            svc["port"] = 443


# --- validation -----------------------------------------------------------------------------

def validate_webhook_configuration(kind: str, obj: Obj, old: Obj | None) -> Errs:
    """Validate(Mutating|Validating)WebhookConfiguration[Update]."""
    errs = validate_object_meta(obj, False, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(obj, old)
    hooks: list[Any] = obj["webhooks"] if isinstance(obj.get("webhooks"), list) else []
    old_hooks: list[Any] = old["webhooks"] if old is not None and isinstance(old.get("webhooks"), list) else []
    # An update keeps accepting what the stored object already had (upstream's ratcheting).
    strict_side_effects = old is None or all(
        isinstance(h, dict) and h.get("sideEffects") in _SIDE_EFFECTS_NONE for h in old_hooks)
    strict_versions = old is None or all(
        not (h.get("admissionReviewVersions") or []) or any(v in _REVIEW_VERSIONS for v in h["admissionReviewVersions"])
        for h in old_hooks if isinstance(h, dict))
    old_names = [h.get("name") for h in old_hooks if isinstance(h, dict)]
    strict_unique = old is None or len(old_names) == len(set(old_names))
    same_conditions = old is not None and len(hooks) == len(old_hooks) and all(
        isinstance(a, dict) and isinstance(b, dict) and a.get("matchConditions") == b.get("matchConditions")
        for a, b in zip(hooks, old_hooks, strict=False))
    names: set[str] = set()
    for i, hook in enumerate(hooks):
        path = index("webhooks", i)
        if not isinstance(hook, dict):
            errs.append(invalid(path, hook, "must be an object"))
            continue
        errs += _validate_webhook(kind, hook, path, strict_side_effects, not same_conditions)
        errs += _validate_review_versions(hook.get("admissionReviewVersions"), strict_versions,
                                          child(path, "admissionReviewVersions"))
        name = hook.get("name") or ""
        if strict_unique and name:
            if name in names:
                errs.append(duplicate(child(path, "name"), name))
            names.add(name)
    return errs


def _validate_review_versions(versions: Any, strict: bool, path: str) -> Errs:
    if not isinstance(versions, list) or not versions:
        return [required(path, "must specify one of v1, v1beta1")]
    errs: Errs = []
    seen: set[str] = set()
    for i, v in enumerate(versions):
        v = str(v)
        if v in seen:
            errs.append(invalid(index(path, i), v, "duplicate version"))
            continue
        seen.add(v)
        errs += [invalid(index(path, i), v, m) for m in is_dns1035_label(v)]
    if strict and not any(str(v) in _REVIEW_VERSIONS for v in versions):
        errs.append(invalid(path, versions, "must include at least one of v1, v1beta1"))
    return errs


def _validate_webhook(kind: str, hook: Obj, path: str, strict_side_effects: bool, check_conditions: bool) -> Errs:
    errs = fully_qualified_name(hook.get("name") or "", child(path, "name"))
    rules = hook.get("rules")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        errs += _validate_rule(rule if isinstance(rule, dict) else {}, index(child(path, "rules"), i))
    fp = hook.get("failurePolicy")
    if fp is not None and fp not in _FAILURE:
        errs.append(not_supported(child(path, "failurePolicy"), fp, _FAILURE))
    mp = hook.get("matchPolicy")
    if mp is not None and mp not in _MATCH:
        errs.append(not_supported(child(path, "matchPolicy"), mp, _MATCH))
    allowed = _SIDE_EFFECTS_NONE if strict_side_effects else _SIDE_EFFECTS_ALL
    se = hook.get("sideEffects")
    if se is None:
        errs.append(required(child(path, "sideEffects"), f"must specify one of {', '.join(allowed)}"))
    elif se not in allowed:
        errs.append(not_supported(child(path, "sideEffects"), se, allowed))
    timeout = hook.get("timeoutSeconds")
    if timeout is not None and (not isinstance(timeout, int) or timeout > 30 or timeout < 1):
        errs.append(invalid(child(path, "timeoutSeconds"), timeout, "the timeout value must be between 1 and 30 seconds"))
    for sel in ("namespaceSelector", "objectSelector"):
        if isinstance(hook.get(sel), dict):
            errs += validate_label_selector(hook[sel], child(path, sel))
    rp = hook.get("reinvocationPolicy")
    if kind == "MutatingWebhookConfiguration" and rp is not None and rp not in _REINVOCATION:
        errs.append(not_supported(child(path, "reinvocationPolicy"), rp, _REINVOCATION))
    errs += _validate_client_config(hook.get("clientConfig") or {}, child(path, "clientConfig"))
    if check_conditions:
        errs += _validate_match_conditions(hook.get("matchConditions"), child(path, "matchConditions"))
    return errs


def fully_qualified_name(name: str, path: str) -> Errs:
    """IsFullyQualifiedName: a DNS subdomain with at least three dot-separated segments."""
    if not name:
        return [required(path)]
    problems = is_dns1123_subdomain(name)
    if problems:
        return [invalid(path, name, ",".join(problems))]
    if len(name.split(".")) < 3:
        return [invalid(path, name, "should be a domain with at least three segments separated by dots")]
    return []


def _validate_rule(rule: Obj, path: str) -> Errs:
    errs: Errs = []
    ops = rule.get("operations") or []
    if not ops:
        errs.append(required(child(path, "operations")))
    if len(ops) > 1 and "*" in ops:
        errs.append(invalid(child(path, "operations"), ops, "if '*' is present, must not specify other operations"))
    for i, op in enumerate(ops):
        if op not in _OPERATIONS:
            errs.append(not_supported(index(child(path, "operations"), i), op, _OPERATIONS))
    groups = rule.get("apiGroups") or []
    if not groups:
        errs.append(required(child(path, "apiGroups")))
    if len(groups) > 1 and "*" in groups:
        errs.append(invalid(child(path, "apiGroups"), groups, "if '*' is present, must not specify other API groups"))
    versions = rule.get("apiVersions") or []
    if not versions:
        errs.append(required(child(path, "apiVersions")))
    if len(versions) > 1 and "*" in versions:
        errs.append(invalid(child(path, "apiVersions"), versions,
                            "if '*' is present, must not specify other API versions"))
    for i, v in enumerate(versions):
        if v == "":
            errs.append(required(index(child(path, "apiVersions"), i)))
    errs += _validate_resources(rule.get("resources") or [], child(path, "resources"))
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        errs.append(not_supported(child(path, "scope"), scope, _SCOPES))
    return errs


def _validate_resources(resources: list[Any], path: str) -> Errs:
    errs: Errs = []
    if not resources:
        errs.append(required(path))
    wild_sub: set[str] = set()   # x/*
    wild_res: set[str] = set()   # */x
    double = single = plain = False
    for i, rs in enumerate(resources):
        rs = str(rs)
        if rs == "":
            errs.append(required(index(path, i)))
            continue
        double = double or rs == "*/*"
        single = single or rs == "*"
        if "/" not in rs:
            plain = rs != "*"
            continue
        res, sub = rs.split("/", 1)
        if res in wild_sub:
            errs.append(invalid(index(path, i), rs, f"if '{res}/*' is present, must not specify {rs}"))
        if sub in wild_res:
            errs.append(invalid(index(path, i), rs, f"if '*/{sub}' is present, must not specify {rs}"))
        if sub == "*":
            wild_sub.add(res)
        if res == "*":
            wild_res.add(sub)
    if len(resources) > 1 and double:
        errs.append(invalid(path, resources, "if '*/*' is present, must not specify other resources"))
    if single and plain:
        errs.append(invalid(path, resources, "if '*' is present, must not specify other resources without subresources"))
    return errs


def _validate_client_config(cc: Obj, path: str) -> Errs:
    url, svc = cc.get("url"), cc.get("service")
    if (url is None) == (svc is None):
        return [required(path, "exactly one of url or service is required")]
    if url is not None:
        return webhook_url_errors(str(url), child(path, "url"))
    return _service_errors(svc if isinstance(svc, dict) else {}, child(path, "service"))


def validate_client_config(cc: Obj, path: str) -> Errs:
    """A WebhookClientConfig (exactly one of url and service), as CRD conversion uses it too."""
    return _validate_client_config(cc, path)


def webhook_url_errors(url: str, path: str) -> Errs:
    """ValidateWebhookURL with https required."""
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError as e:
        return [invalid(path, url, str(e))]
    errs: Errs = []
    if u.scheme != "https":
        errs.append(invalid(path, u.scheme, "'https' is the only allowed URL scheme"))
    if not u.netloc:
        errs.append(invalid(path, u.netloc, "host must be specified"))
    if "@" in u.netloc:
        errs.append(invalid(path, u.netloc.rsplit("@", 1)[0], "user information is not permitted in the URL"))
    if u.fragment:
        errs.append(invalid(path, u.fragment, "fragments are not permitted in the URL"))
    if u.query:
        errs.append(invalid(path, u.query, "query parameters are not permitted in the URL"))
    return errs


def _service_errors(svc: Obj, path: str) -> Errs:
    errs: Errs = []
    if not svc.get("name"):
        errs.append(required(child(path, "name"), "service name is required"))
    if not svc.get("namespace"):
        errs.append(required(child(path, "namespace"), "service namespace is required"))
    port = svc.get("port")
    if port is not None:
        problems = is_valid_port_num(port)
        if problems:
            errs.append(invalid(child(path, "port"), port, "port is not valid: " + ", ".join(problems)))
    p = svc.get("path")
    if p is None:
        return errs
    p = str(p)
    if p == "/":
        return errs
    if not p.startswith("/"):
        errs.append(invalid(child(path, "path"), p, "must start with a '/'"))
    steps = p.lstrip("/").split("/")
    for i, step in enumerate(steps):
        if step == "" and i == len(steps) - 1 and len(steps) > 1:
            continue  # a trailing slash is allowed
        if step == "":
            errs.append(invalid(child(path, "path"), p, f"segment[{i}] may not be empty"))
            continue
        problems = is_dns1123_subdomain(step)
        if problems:
            errs.append(invalid(child(path, "path"), p, f"segment[{i}]: {', '.join(problems)}"))
    return errs


def _validate_match_conditions(conds: Any, path: str) -> Errs:
    conds = conds if isinstance(conds, list) else []
    errs: Errs = []
    if len(conds) > 64:
        errs.append(too_many(path, len(conds), 64))
    names: set[str] = set()
    for i, c in enumerate(conds):
        c = c if isinstance(c, dict) else {}
        cpath = index(path, i)
        expr = str(c.get("expression") or "").strip()
        if not expr:
            errs.append(required(child(cpath, "expression")))
        else:
            problem = cel_compile_error(expr)
            if problem:
                errs.append(invalid(child(cpath, "expression"), expr, f"compilation failed: {problem}"))
        name = str(c.get("name") or "")
        if not name:
            errs.append(required(child(cpath, "name")))
        else:
            errs += [invalid(child(cpath, "name"), name, m) for m in is_qualified_name(name)]
            if name in names:
                errs.append(duplicate(child(cpath, "name"), name))
            names.add(name)
    return errs


@functools.lru_cache(maxsize=512)
def cel_compile_error(expression: str) -> str:
    """Why a CEL expression does not compile ("" when it does)."""
    import celpy  # late: only configurations with matchConditions need CEL
    env = celpy.Environment()
    try:
        env.program(env.compile(expression))
    except Exception as e:  # cel-python raises several parse error classes
        return " ".join(str(e).split())
    return ""


# --- ValidatingAdmissionPolicy and its bindings ---------------------------------------------

POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
_REASONS = ("Forbidden", "Invalid", "RequestEntityTooLarge")
_ACTIONS = ("Audit", "Deny", "Warn")


def apply_policy_defaults(kind: str, obj: Obj) -> None:
    """SetDefaults_ValidatingAdmissionPolicySpec and _MatchResources."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if kind == "ValidatingAdmissionPolicy":
        spec.setdefault("failurePolicy", "Fail")
        match = spec.get("matchConstraints")
    else:
        match = spec.get("matchResources")
    if isinstance(match, dict):
        match.setdefault("matchPolicy", "Equivalent")
        for sel in ("namespaceSelector", "objectSelector"):
            if match.get(sel) is None:
                match[sel] = {}
        for key in ("resourceRules", "excludeResourceRules"):
            for rule in match.get(key) or []:
                if isinstance(rule, dict) and rule.get("scope") is None:
                    rule["scope"] = "*"


def validate_policy(kind: str, obj: Obj, old: Obj | None) -> Errs:
    """ValidateValidatingAdmissionPolicy / ...Binding (and their updates)."""
    errs = validate_object_meta(obj, False, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(obj, old)
    spec: Obj = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    if kind == "ValidatingAdmissionPolicy":
        return errs + _policy_spec(spec, str((obj.get("metadata") or {}).get("name") or ""))
    return errs + _binding_spec(spec)


def _policy_spec(spec: Obj, name: str) -> Errs:
    errs: Errs = []
    fp = spec.get("failurePolicy")
    if fp is None:
        errs.append(required("spec.failurePolicy"))
    elif fp not in _FAILURE:
        errs.append(not_supported("spec.failurePolicy", fp, _FAILURE))
    pk = spec.get("paramKind")
    if isinstance(pk, dict):
        errs += _param_kind(pk)
    match = spec.get("matchConstraints")
    if not isinstance(match, dict):
        errs.append(required("spec.matchConstraints"))
    else:
        errs += _match_resources(match, "spec.matchConstraints", require_rules=True)
    validations = spec.get("validations") or []
    if not validations and not spec.get("auditAnnotations"):
        for f in ("spec.validations", "spec.auditAnnotations"):
            errs.append(required(f, "validations or auditAnnotations must contain at least one item"))
    if len(spec.get("auditAnnotations") or []) > _MAX_AUDIT_ANNOTATIONS:
        errs.append(invalid("spec.auditAnnotations", GoRepr(f"[]AuditAnnotation{{{len(spec['auditAnnotations'])}}}"),
                            f"must not have more than {_MAX_AUDIT_ANNOTATIONS} auditAnnotations"))
    for i, v in enumerate(validations):
        v = v if isinstance(v, dict) else {}
        path = index("spec.validations", i)
        expr = str(v.get("expression") or "")
        if not expr.strip():
            errs.append(required(child(path, "expression"), "expression is not specified"))
        else:
            problem = cel_compile_error(expr)
            if problem:
                errs.append(invalid(child(path, "expression"), expr, f"compilation failed: {problem}"))
        mexpr = v.get("messageExpression")
        if mexpr is not None and mexpr != "":
            if not str(mexpr).strip():
                errs.append(invalid(child(path, "messageExpression"), mexpr, "must be non-empty if specified"))
            else:
                problem = cel_compile_error(str(mexpr))
                if problem:
                    errs.append(invalid(child(path, "messageExpression"), mexpr, f"compilation failed: {problem}"))
        msg = v.get("message")
        if msg is not None and msg != "":
            if not str(msg).strip():
                errs.append(invalid(child(path, "message"), msg, "message must be non-empty if specified"))
            elif "\n" in str(msg).strip() or "\r" in str(msg).strip():
                errs.append(invalid(child(path, "message"), msg, "message must not contain line breaks"))
        reason = v.get("reason")
        if reason is not None and reason not in _REASONS:
            errs.append(not_supported(child(path, "reason"), reason, _REASONS))
    errs += _validate_match_conditions(spec.get("matchConditions"), "spec.matchConditions")
    errs += _variables(spec.get("variables") or [])
    errs += _audit_annotations(spec.get("auditAnnotations") or [], name)
    return errs


# A CEL identifier that is not one of CEL's reserved words (variables are named by them).
_CEL_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_CEL_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                           "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
                           "void", "while"})
_MAX_AUDIT_VALUE_EXPRESSION = 5 * 1024
_MAX_AUDIT_ANNOTATIONS = 20


def _param_kind(pk: Obj) -> Errs:
    """validateParamKind: a group/version and a kind that lowercases to a DNS-1035 label."""
    errs: Errs = []
    api_version = str(pk.get("apiVersion") or "")
    if not api_version:
        errs.append(required("spec.paramKind.apiVersion"))
    elif api_version.count("/") > 1:
        errs.append(invalid("spec.paramKind.apiVersion", api_version, f"unexpected GroupVersion string: {api_version}"))
    elif api_version != "/":
        group, _, version = api_version.rpartition("/")
        if group:
            problems = is_dns1123_subdomain(group)
            if problems:
                errs.append(invalid("spec.paramKind.apiVersion", group, ",".join(problems)))
        if not version:
            errs.append(invalid("spec.paramKind.apiVersion", api_version, "version must be specified"))
        else:
            problems = is_dns1035_label(version)
            if problems:
                errs.append(invalid("spec.paramKind.apiVersion", version, ",".join(problems)))
    kind = str(pk.get("kind") or "")
    if not kind:
        errs.append(required("spec.paramKind.kind"))
    else:
        problems = is_dns1035_label(kind.lower())
        if problems:
            errs.append(invalid("spec.paramKind.kind", kind,
                                "may have mixed case, but should otherwise match: " + ",".join(problems)))
    return errs


def _variables(variables: list[Any]) -> Errs:
    errs: Errs = []
    for i, v in enumerate(variables):
        v = v if isinstance(v, dict) else {}
        path = index("spec.variables", i)
        name = str(v.get("name") or "")
        if not name.strip():
            errs.append(required(child(path, "name"), "name is not specified"))
        elif not _CEL_IDENT.fullmatch(name) or name in _CEL_RESERVED:
            errs.append(invalid(child(path, "name"), name, "name is not a valid CEL identifier"))
        expr = str(v.get("expression") or "")
        if not expr.strip():
            errs.append(required(child(path, "expression"), "expression is not specified"))
        else:
            problem = cel_compile_error(expr)
            if problem:
                errs.append(invalid(child(path, "expression"), expr, f"compilation failed: {problem}"))
    return errs


def _audit_annotations(annotations: list[Any], policy_name: str) -> Errs:
    errs: Errs = []
    seen: set[str] = set()
    for i, a in enumerate(annotations):
        a = a if isinstance(a, dict) else {}
        path = index("spec.auditAnnotations", i)
        k = str(a.get("key") or "")
        if policy_name:
            # The published key is "<policy name>/<key>", which must be a qualified name.
            errs += [invalid(child(path, "key"), k, m) for m in is_qualified_name(f"{policy_name}/{k}")]
        else:
            errs.append(invalid(child(path, "key"), k, "requires metadata.name be non-empty"))
        if k in seen:
            errs.append(duplicate(child(path, "key"), k))
        seen.add(k)
        expr = str(a.get("valueExpression") or "").strip()
        if not expr:
            errs.append(required(child(path, "valueExpression"), "valueExpression is not specified"))
        elif len(expr) > _MAX_AUDIT_VALUE_EXPRESSION:
            errs.append(required(child(path, "valueExpression"),
                                 f"must not exceed {_MAX_AUDIT_VALUE_EXPRESSION} bytes in length"))
        else:
            problem = cel_compile_error(expr)
            if problem:
                errs.append(invalid(child(path, "valueExpression"), a.get("valueExpression"),
                                    f"compilation failed: {problem}"))
    return errs


def _match_resources(match: Obj, path: str, *, require_rules: bool) -> Errs:
    errs: Errs = []
    mp = match.get("matchPolicy")
    if mp is not None and mp not in _MATCH:
        errs.append(not_supported(child(path, "matchPolicy"), mp, _MATCH))
    for sel in ("namespaceSelector", "objectSelector"):
        if isinstance(match.get(sel), dict):
            errs += validate_label_selector(match[sel], child(path, sel))
    rules = match.get("resourceRules") or []
    if require_rules and not rules:
        errs.append(required(child(path, "resourceRules")))
    for key in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(match.get(key) or []):
            rule = rule if isinstance(rule, dict) else {}
            rpath = index(child(path, key), i)
            seen: set[str] = set()
            for j, rname in enumerate(rule.get("resourceNames") or []):
                npath = index(child(rpath, "resourceNames"), j)
                errs += [invalid(npath, rname, m) for m in path_segment_name(str(rname))]
                if rname in seen:
                    errs.append(duplicate(npath, rname))
                seen.add(str(rname))
            errs += _validate_rule(rule, rpath)
    return errs


def _binding_spec(spec: Obj) -> Errs:
    errs: Errs = []
    name = spec.get("policyName") or ""
    if not name:
        errs.append(required("spec.policyName"))
    else:
        errs += [invalid("spec.policyName", name, m) for m in name_is_dns_subdomain(str(name), False)]
    ref = spec.get("paramRef")
    if isinstance(ref, dict):
        if ref.get("name"):
            errs += [invalid("spec.paramRef.name", ref["name"], m) for m in path_segment_name(str(ref["name"]))]
        if isinstance(ref.get("selector"), dict):
            errs += validate_label_selector(ref["selector"], "spec.paramRef.selector")
        if ref.get("name") and ref.get("selector") is not None:
            errs.append(forbidden("spec.paramRef.name", "name and selector are mutually exclusive"))
            errs.append(forbidden("spec.paramRef.selector", "name and selector are mutually exclusive"))
        if not ref.get("name") and ref.get("selector") is None:
            errs.append(required("spec.paramRef", "one of name or selector must be specified"))
        action = ref.get("parameterNotFoundAction")
        if not action:
            errs.append(required("spec.paramRef.parameterNotFoundAction"))
        elif action not in ("Allow", "Deny"):
            errs.append(not_supported("spec.paramRef.parameterNotFoundAction", action, ("Deny", "Allow")))
    if isinstance(spec.get("matchResources"), dict):
        errs += _match_resources(spec["matchResources"], "spec.matchResources", require_rules=False)
    actions = spec.get("validationActions") or []
    seen: set[str] = set()
    for i, a in enumerate(actions):
        if a not in _ACTIONS:
            errs.append(not_supported(index("spec.validationActions", i), a, _ACTIONS))
        if a in seen:
            errs.append(duplicate(index("spec.validationActions", i), a))
        seen.add(str(a))
    if "Deny" in seen and "Warn" in seen:
        errs.append(invalid("spec.validationActions", actions, "must not contain both Deny and Warn (repeating the "
                            "same validation failure information in the API response and headers serves no purpose)"))
    if not actions:
        errs.append(required("spec.validationActions", "at least one validation action is required"))
    return errs
