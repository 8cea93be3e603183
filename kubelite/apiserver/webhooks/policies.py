"""ValidatingAdmissionPolicy: CEL validations applied through bindings (validating admission).

A binding names a policy; a write both the policy's matchConstraints and the binding's
matchResources select is checked with the policy's validations, once per parameter object
the binding's paramRef finds (or once without one).  A failed validation is acted on as the
binding's validationActions say: Deny refuses the write with upstream's message
(``<resource> "NAME" is forbidden: ValidatingAdmissionPolicy 'P' with binding 'B' denied
request: MESSAGE``, code from the validation's reason, 422 Invalid by default), Warn sends a
Warning header, Audit writes the failure into the request's audit event (``audit.py``), as the
policy's auditAnnotations do with their values.  A policy or binding that cannot
be applied (a missing parameter with ``Deny``, a CEL error) follows the policy's
failurePolicy.
"""
from __future__ import annotations

import functools
import json
from typing import Any

from kubelite.api import errors, meta
from kubelite.api.resources import NAMESPACES, VALIDATINGADMISSIONPOLICIES, ResourceInfo, by_kind
from kubelite.api.selectors import selector_from_dict
from kubelite.apiextensions.cel import cel_go_error
from kubelite.apiserver.audit import annotate
from kubelite.apiserver.registry import AdmissionAttributes, Registry
from kubelite.apiserver.security import CURRENT_USER
from kubelite.apiserver.webhooks import matching
from kubelite.apiserver.webhooks.conversion import ConversionWebhooks
from kubelite.apiserver.webhooks.shared import convert, request_options, warn
from kubelite.apiserver.webhooks.source import CONFIG_RESOURCES, WebhookSource

Obj = dict[str, Any]
_CODES = {"Invalid": 422, "Forbidden": 403, "RequestEntityTooLarge": 413}


class PolicyError(Exception):
    """A policy or binding that cannot be applied to this request."""


@functools.lru_cache(maxsize=1024)
def _program(expression: str) -> Any:
    import celpy  # late: cel-python costs a tenth of a second at start-up
    env = celpy.Environment()
    try:
        return env.program(env.compile(expression))
    except Exception as e:  # cel-python raises several parse error classes
        raise PolicyError(f"compilation failed: {' '.join(str(e).split())}") from None


def _evaluate(expression: str, activation: dict[str, Any]) -> Any:
    program = _program(expression)
    try:
        return program.evaluate(activation)
    except Exception as e:  # CELEvalError mostly; any failure of an expression is the policy's
        raise PolicyError(f"expression '{expression}' resulted in error: {cel_go_error(e)}") from None


# The metadata fields of namespaceObject (upstream leaves out managedFields, owners …).
_NAMESPACE_META = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                   "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "finalizers")


def _namespace_object(ns: Obj | None) -> Obj | None:
    """The request's Namespace as policies see it: spec, status and part of its metadata."""
    if ns is None:
        return None
    md = ns.get("metadata") or {}
    return {"metadata": {k: md[k] for k in _NAMESPACE_META if k in md},
            "spec": ns.get("spec") or {}, "status": ns.get("status") or {}}


def _cel_type_name(value: Any) -> str:
    """The CEL name of a value's type, as cel-go prints it in errors."""
    from celpy import celtypes
    names = [(celtypes.BoolType, "bool"), (celtypes.IntType, "int"), (celtypes.UintType, "uint"),
             (celtypes.DoubleType, "double"), (celtypes.BytesType, "bytes"), (celtypes.ListType, "list"),
             (celtypes.MapType, "map"), (celtypes.TimestampType, "google.protobuf.Timestamp"),
             (celtypes.DurationType, "google.protobuf.Duration")]
    return next((n for t, n in names if isinstance(value, t)), type(value).__name__)


def _selector_matches(sel: Any, labels: dict[str, str]) -> bool:
    try:
        return selector_from_dict(sel if isinstance(sel, dict) else {}).matches(labels)
    except errors.StatusError:
        return False


async def observe_generations(registry: Registry, policies: dict[str, Obj]) -> None:
    """Record in each policy's status the generation the server now applies
    (upstream's policy controller does this after type checking, which kubelite skips)."""
    for name, policy in policies.items():
        gen = policy["metadata"].get("generation")
        seen = (policy.get("status") or {}).get("observedGeneration")
        if not isinstance(gen, int) or (isinstance(seen, int) and seen >= gen):
            continue  # only catches up, so a status a client wrote is left alone until the next spec change

        def observed(obj: Obj) -> Obj:
            old = obj.get("status")
            status: Obj = old if isinstance(old, dict) else {}
            obj["status"] = {**status, "observedGeneration": obj["metadata"].get("generation")}
            return obj
        try:
            await registry.guaranteed_update(VALIDATINGADMISSIONPOLICIES, "", name, observed, subresource="status")
        except errors.NotFound:
            continue  # deleted meanwhile


class ValidatingPolicies:
    """The validating hook that applies policies through their bindings."""

    def __init__(self, registry: Registry, source: WebhookSource, conversion: ConversionWebhooks | None = None):
        self.registry = registry
        self.source = source
        self.conversion = conversion

    async def _namespace(self, attrs: AdmissionAttributes) -> Obj | None:
        if not attrs.namespace or (attrs.info.group == "" and attrs.info.plural == "namespaces"):
            return None
        try:
            return await self.registry.get(NAMESPACES, "", attrs.namespace)
        except errors.NotFound:
            return None

    async def _matches(self, match: Obj | None, attrs: AdmissionAttributes) -> ResourceInfo | None:
        """The resource a MatchResources selects the request under, or None."""
        if not isinstance(match, dict):
            return attrs.info
        op = attrs.operation

        def rule_ok(rule: Any, info: ResourceInfo) -> bool:
            if not isinstance(rule, dict):
                return False
            names = rule.get("resourceNames") or []
            if names and attrs.name not in names:
                return False
            return matching.rule_matches(rule, op, info, attrs.subresource, attrs.namespace)

        candidates = [attrs.info]
        if (match.get("matchPolicy") or "Equivalent") == "Equivalent":
            candidates += matching.equivalents(attrs.info)
        rules = match.get("resourceRules")
        target: ResourceInfo | None = None
        for info in candidates:
            # No resourceRules (a binding's may be empty) leaves the resource as requested.
            if not rules or any(rule_ok(r, info) for r in rules):
                target = info
                break
        if target is None:
            return None
        if any(rule_ok(r, info) for r in match.get("excludeResourceRules") or [] for info in candidates):
            return None
        ns_sel = match.get("namespaceSelector")
        if isinstance(ns_sel, dict) and (ns_sel.get("matchLabels") or ns_sel.get("matchExpressions")):
            if attrs.info.group == "" and attrs.info.plural == "namespaces":
                labels = matching.labels_of(attrs.obj if attrs.obj is not None else attrs.old)
            elif not attrs.namespace:
                labels = None
            else:
                labels = matching.labels_of(await self._namespace(attrs))
            if labels is not None and not _selector_matches(ns_sel, labels):
                return None
        obj_sel = match.get("objectSelector")
        restricted = isinstance(obj_sel, dict) and bool(obj_sel.get("matchLabels") or obj_sel.get("matchExpressions"))
        if restricted and not any(o is not None and _selector_matches(obj_sel, matching.labels_of(o))
                                  for o in (attrs.obj, attrs.old)):
            return None
        return target

    async def _params(self, policy: Obj, binding: Obj, attrs: AdmissionAttributes) -> list[Obj | None]:
        kind = (policy.get("spec") or {}).get("paramKind")
        ref = (binding.get("spec") or {}).get("paramRef")
        if not isinstance(kind, dict) or not isinstance(ref, dict):
            return [None]
        info = by_kind(str(kind.get("apiVersion") or ""), str(kind.get("kind") or ""))
        if info is None:
            raise PolicyError(f"paramKind kind `{kind.get('apiVersion')}, Kind={kind.get('kind')}` not known")
        ns = ""
        if info.namespaced:
            ns = str(ref.get("namespace") or attrs.namespace)
            if not ns:
                raise PolicyError("cannot use namespaced paramRef in policy binding that matches cluster-scoped "
                                  "resources")
        elif ref.get("namespace"):
            raise PolicyError("paramRef.namespace must not be provided for a cluster-scoped `paramKind`")
        found: list[Obj | None]
        if ref.get("name"):
            try:
                found = [await self.registry.get(info, ns, str(ref["name"]))]
            except errors.NotFound:
                found = []
        else:
            items, _, _, _ = await self.registry.list(info, ns)
            found = [o for o in items if _selector_matches(ref.get("selector"), matching.labels_of(o))]
        if not found and ref.get("parameterNotFoundAction") == "Deny":
            raise PolicyError("no params found for policy binding with `Deny` parameterNotFoundAction")
        return found

    async def validate(self, attrs: AdmissionAttributes) -> None:
        """Validating admission hook: apply every binding whose policy selects the write."""
        if not self.source.bindings or (attrs.info.group, attrs.info.plural) in CONFIG_RESOURCES:
            return
        denials: list[tuple[str, str]] = []  # (message, reason)
        audited: list[dict[str, Any]] = []  # failures bindings with the Audit action record
        uid = meta.new_uid()  # request.uid: one per request, whatever the policy
        for binding in self.source.bindings:
            bspec = binding.get("spec") or {}
            policy = self.source.policies.get(str(bspec.get("policyName") or ""))
            if policy is None:
                continue
            pname, bname = policy["metadata"]["name"], binding["metadata"]["name"]
            spec = policy.get("spec") or {}
            fail = (spec.get("failurePolicy") or "Fail") != "Ignore"
            target = await self._matches(spec.get("matchConstraints"), attrs)
            if target is None or await self._matches(bspec.get("matchResources"), attrs) is None:
                continue
            try:
                for param in await self._params(policy, binding, attrs):
                    failed, hard, values = await self._run(spec, attrs, target, param, uid)
                    denials += [(f"ValidatingAdmissionPolicy '{pname}' with binding '{bname}' denied request: "
                                 f"{message}", "Invalid") for message in hard]
                    for key, value in values:
                        annotate(f"{pname}/{key}", value)
                    actions = [str(a) for a in bspec.get("validationActions") or []]
                    for message, reason, index in failed:
                        if "Audit" in actions:
                            audited.append({"message": message, "policy": pname, "binding": bname,
                                            "expressionIndex": index, "validationActions": actions})
                        for action in actions:
                            if action == "Deny":
                                denials.append((f"ValidatingAdmissionPolicy '{pname}' with binding '{bname}' "
                                                f"denied request: {message}", reason))
                            elif action == "Warn":
                                warn(f"Validation failed for ValidatingAdmissionPolicy '{pname}' with binding "
                                     f"'{bname}': {message}")
            except PolicyError as e:
                if fail:
                    denials.append((f"ValidatingAdmissionPolicy '{pname}' with binding '{bname}' denied request: "
                                    f"failed to configure binding: {e}", "Invalid"))
        if audited:
            annotate("validation.policy.admission.k8s.io/validation_failure", json.dumps(audited))
        if denials:
            message, reason = denials[0]
            info = attrs.info
            full = f'{errors.qualified(info.plural, info.group)} "{attrs.name}" is forbidden: {message}'
            details = {"name": attrs.name, "group": info.group, "kind": info.plural, "causes": [{"message": message}]}
            raise errors.status_error(_CODES.get(reason, 422), reason, full, details)

    async def _run(self, spec: Obj, attrs: AdmissionAttributes, target: ResourceInfo,
                   param: Obj | None, uid: str) -> tuple[list[tuple[str, str, int]], list[str], list[tuple[str, str]]]:
        """One policy for one parameter: the failed validations (message, reason, index), which
        the binding's validationActions act on; the failed audit annotations, which deny
        whatever the actions are (upstream too); and the audit annotations' values (key, value)."""
        import celpy
        from celpy import celtypes
        fail = (spec.get("failurePolicy") or "Fail") != "Ignore"
        info = attrs.info
        user = CURRENT_USER.get()
        request = {
            "kind": {"group": target.group, "version": target.version, "kind": target.kind},
            "resource": {"group": target.group, "version": target.version, "resource": target.plural},
            "requestKind": {"group": info.group, "version": info.version, "kind": info.kind},
            "requestResource": {"group": info.group, "version": info.version, "resource": info.plural},
            "name": attrs.name, "namespace": attrs.namespace, "operation": attrs.operation,
            "userInfo": user.info() if user is not None else {}, "dryRun": attrs.dry_run,
            "subResource": attrs.subresource, "requestSubResource": attrs.subresource,
            "uid": uid, "options": request_options(attrs, attrs.operation),
        }
        ns = await self._namespace(attrs)
        plain: dict[str, Any] = {
            "object": None if attrs.obj is None else await convert(attrs.obj, info, target, self.conversion),
            "oldObject": None if attrs.old is None else await convert(attrs.old, info, target, self.conversion),
            "request": request, "params": param,
            "namespaceObject": _namespace_object(ns),
        }
        activation: dict[str, Any] = {k: celpy.json_to_cel(v) for k, v in plain.items()}
        variables: dict[Any, Any] = {}
        activation["variables"] = celtypes.MapType(variables)
        for v in spec.get("variables") or []:
            if isinstance(v, dict) and v.get("name"):
                # A variable that fails is kept as its error, so only the expressions that
                # use it fail (upstream evaluates variables lazily).
                try:
                    value = _evaluate(str(v.get("expression") or ""), activation)
                except PolicyError as e:
                    value = celpy.CELEvalError(str(e))
                variables[celtypes.StringType(str(v["name"]))] = value
                activation["variables"] = celtypes.MapType(variables)
        problems: list[str] = []
        for mc in spec.get("matchConditions") or []:
            if not isinstance(mc, dict):
                continue
            try:
                ok = _evaluate(str(mc.get("expression") or ""), activation)
            except PolicyError as e:
                problems.append(str(e))
                continue
            if isinstance(ok, celtypes.BoolType) and not bool(ok):
                return [], [], []  # a false condition wins over errors in the others
        if problems:
            # The request is decided by the failure policy, not by the validations.
            return ([(problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]", "Invalid", 0)]
                    if fail else []), [], []
        out: list[tuple[str, str, int]] = []
        for index, v in enumerate(spec.get("validations") or []):
            if not isinstance(v, dict):
                continue
            expression = str(v.get("expression") or "")
            try:
                result = _evaluate(expression, activation)
            except PolicyError as e:
                if fail:
                    out.append((str(e), "Invalid", index))
                continue
            if isinstance(result, celtypes.BoolType) and bool(result):
                continue
            message = ""
            if v.get("messageExpression"):
                try:
                    m = _evaluate(str(v["messageExpression"]), activation)
                    if isinstance(m, str) and "\n" not in m:
                        message = str(m).strip()
                except PolicyError:
                    message = ""  # falls back to message, then to the expression
            message = message or str(v.get("message") or "").strip() or f"failed expression: {expression.strip()}"
            out.append((message, str(v.get("reason") or "Invalid"), index))
        errors_, values = self._audit_annotations(spec, activation, fail)
        return out, errors_, values

    @staticmethod
    def _audit_annotations(spec: Obj, activation: dict[str, Any], fail: bool) -> tuple[list[str], list[tuple[str, str]]]:
        """Evaluate auditAnnotations: (the failures, which deny under failurePolicy Fail, and
        the string values by key, for the audit event; a null value adds nothing)."""
        out: list[str] = []
        values: list[tuple[str, str]] = []
        for a in spec.get("auditAnnotations") or []:
            if not isinstance(a, dict):
                continue
            expression = str(a.get("valueExpression") or "")
            try:
                value = _evaluate(expression.strip(), activation)
            except PolicyError as e:
                if fail:
                    out.append(str(e))
                continue
            if value is None:
                continue
            if isinstance(value, str):
                values.append((str(a.get("key") or ""), str(value)))
                continue
            if fail:
                out.append(f"valueExpression '{expression}' resulted in unsupported return type: "
                           f"{_cel_type_name(value)}. Return type must be either string or null.")
        return out, values
