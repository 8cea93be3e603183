"""Subresources that live in the API server: scale, binding, eviction, namespace finalize.

(status goes through the ordinary verbs with ``subresource="status"``; log, exec,
attach, portforward and proxy are forwarded to the node agent by ``nodeproxy``.)
"""
from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from kubelite.api import errors, meta, typeddecode
from kubelite.api.resources import PODS, ResourceInfo
from kubelite.apiextensions import scale as custom_scale
from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiserver import handlers as h
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver.handlers import Target

Obj = dict[str, Any]


def _selector_string(obj: Obj) -> str:
    from kubelite.api.selectors import selector_from_dict, selector_from_set
    sel = obj.get("spec", {}).get("selector")
    if obj.get("kind") == "ReplicationController":  # a plain label map, not a LabelSelector
        return str(selector_from_set(sel or {}))
    return str(selector_from_dict(sel or {}))


def to_scale(obj: Obj, info: ResourceInfo | None = None) -> Obj:
    """autoscaling/v1 Scale view of a Deployment, ReplicaSet, ReplicationController or a
    custom resource with a scale subresource."""
    md = obj["metadata"]
    if isinstance(info, CustomResourceInfo):
        return custom_scale.to_scale(info, obj)
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                   "selector": _selector_string(obj)},
    }


SCALE_VERSION = "autoscaling/v1"


async def scale(request: web.Request, t: Target) -> web.Response:
    """GET/PUT/PATCH …/scale; bodies are typed as autoscaling/v1 Scale."""
    neg.wants(request, tables=True)
    reg = await h.registry_from(request)
    if request.method == "GET":
        return neg.respond(to_scale(await reg.get(t.info, t.namespace, t.name), t.info))
    dry = h.dry_run(request)
    body = await neg.read_body(request)
    if request.method == "PUT":
        new_scale, _ = h.decode_object(request, SCALE_VERSION, "Scale", body)
        h.check_name(new_scale, t.name, t.namespace)
        patch_fn = None
    elif request.method == "PATCH":
        from kubelite.api import patch as patches
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        ptype = patches.PATCH_TYPES.get(ctype)
        if ptype is None or ptype == "apply":
            raise errors.unsupported_media_type(ctype, [c for c, p in patches.PATCH_TYPES.items() if p != "apply"])
        pbody = neg.decode_patch_body(ptype, body)

        def patch_fn(cur: Obj) -> Obj:
            if ptype == "json":
                out = patches.json_patch(cur, pbody)
            elif ptype == "merge":
                out = patches.json_merge_patch(cur, pbody)
            else:
                out = patches.strategic_merge_patch(cur, pbody, "Scale", SCALE_VERSION)
            if not isinstance(out, dict):
                raise errors.bad_request("the patch did not produce an object")
            h.check_kind_of(SCALE_VERSION, "Scale", out)
            try:
                h.typed_unknown(out, SCALE_VERSION, "Scale")
            except typeddecode.TypeMismatch as e:
                raise h.patch_type_error(e, ptype, out, pbody) from None
            except typeddecode.TooDeep:
                raise errors.bad_request(f"error decoding patch: {neg.too_deep()}") from None
            h.check_name(out, t.name, t.namespace)
            return out
        new_scale = None
    else:
        raise errors.method_not_allowed()

    expected = ""
    if new_scale is not None:
        expected = (new_scale.get("metadata") or {}).get("resourceVersion", "")

    def mutate(obj: Obj) -> Obj:
        cur = to_scale(obj, t.info)
        sc = new_scale if new_scale is not None else patch_fn(copy.deepcopy(cur))
        # Typed decoding made spec.replicas an int32 (absent: the zero value).
        replicas = (sc.get("spec") or {}).get("replicas") or 0
        if replicas < 0:
            raise errors.invalid("Scale", "autoscaling", t.name, [errors.Cause(
                "FieldValueInvalid", f"Invalid value: {replicas}: must be greater than or equal to 0", "spec.replicas")])
        if isinstance(t.info, CustomResourceInfo):
            custom_scale.set_replicas(t.info, obj, replicas)
        else:
            obj.setdefault("spec", {})["replicas"] = replicas
        if not expected:
            return obj
        obj["metadata"]["resourceVersion"] = expected
        return obj

    out, _ = await reg.guaranteed_update(t.info, t.namespace, t.name, mutate, expected_rv=expected,
                                         dry_run=dry,
                                         manager_fn=h.managed_fields_updater(request, t.info, "scale"))
    return neg.respond(to_scale(out, t.info))


async def binding(request: web.Request, t: Target) -> web.Response:
    """POST pods/NAME/binding: set spec.nodeName once, add PodScheduled=True."""
    neg.wants(request, tables=False)
    reg = await h.registry_from(request)
    dry_run = h.dry_run(request)  # a bad dryRun value is a 400 before anything else
    body, warnings = h.decode_object(request, "v1", "Binding", await neg.read_body(request))
    md = body.get("metadata") or {}
    name = md.get("name") or t.name
    if t.name and name != t.name:
        raise errors.bad_request(f"Binding.metadata.name: Invalid value: \"{name}\": must match the pod name")
    if md.get("namespace") and md["namespace"] != t.namespace:
        raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
    target = body.get("target") or {}
    node = target.get("name")
    if target.get("kind") not in (None, "", "Node"):
        raise errors.invalid("Binding", "", name, [errors.Cause(
            "FieldValueNotSupported", f'Unsupported value: "{target["kind"]}": supported values: "Node", "<empty>"',
            "target.kind")])
    if not name:
        raise errors.invalid("Binding", "", name, [errors.Cause(
            "FieldValueRequired", "Required value: name or generateName is required", "metadata.name")])
    if not node:
        raise errors.invalid("Binding", "", name, [errors.Cause("FieldValueRequired", "Required value", "target.name")])

    def mutate(pod: Obj) -> Obj:
        if meta.is_deleting(pod):
            raise errors.conflict("pods", "", name, "pod is being deleted, cannot be assigned to a host")
        if pod.get("spec", {}).get("nodeName"):
            raise errors.conflict("pods/binding", "", name,
                                  f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"')
        pod["spec"]["nodeName"] = node
        conds = [c for c in pod.setdefault("status", {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": meta.rfc3339()})
        pod["status"]["conditions"] = conds
        return pod

    # Binding changes spec and status together, so it bypasses the status/spec split.
    await reg.guaranteed_update(PODS, t.namespace, name, mutate, subresource="binding", dry_run=dry_run,
                                copy_fn=_binding_copy)
    return neg.respond({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201,
                       as_yaml=neg.wants(request).yaml, headers=h.warning_headers(warnings))


def _binding_copy(pod: Obj) -> Obj:
    """What a binding changes, copied: the top level, metadata's and spec's own keys (the
    update strategy and nodeName) and status's (the new conditions list). The rest (the
    containers, labels, …) stays shared with the stored object, which no one changes."""
    out = dict(pod)
    for k in ("metadata", "spec", "status"):
        if isinstance(pod.get(k), dict):
            out[k] = dict(pod[k])
    return out


async def eviction(request: web.Request, t: Target) -> web.Response:
    """POST pods/NAME/eviction: a delete that honours PodDisruptionBudgets (``eviction.evict``)."""
    from kubelite.apiserver.eviction import evict
    from kubelite.apiserver.verbs import validate_delete_options
    neg.wants(request, tables=False)
    reg = await h.registry_from(request)
    dry_run = h.dry_run(request)
    body, _ = h.decode_object(request, "policy/v1", "Eviction", await neg.read_body(request))
    md = body.get("metadata") or {}
    if md.get("name") and md["name"] != t.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    opts = body.get("deleteOptions") or {}
    validate_delete_options(opts)
    if dry_run:  # the request's dryRun carries over to the delete (propagateDryRun)
        opts = {**opts, "dryRun": ["All"]}
    answer = await evict(reg, t.namespace, t.name, opts, dry_run or opts.get("dryRun") == ["All"])
    if answer is not None:
        return neg.respond(answer, int(answer["code"]))
    return neg.respond({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)


async def finalize(request: web.Request, t: Target) -> web.Response:
    """PUT namespaces/NAME/finalize: replace spec.finalizers (the namespace controller's
    last step).  The body is a Namespace, typed and named like any update's."""
    from kubelite.api.validation_common import go_quote
    w = neg.wants(request, tables=True)
    reg = await h.registry_from(request)
    dry = h.dry_run(request)
    body, warnings = h.decode_object(request, t.info.api_version, t.info.kind, await neg.read_body(request), t.info)
    h.check_name(body, t.name, "")
    fins = (body.get("spec") or {}).get("finalizers") or []
    causes = [errors.Cause("FieldValueInvalid", f"Invalid value: {go_quote(f)}: {m}", f"spec.finalizers[{i}]")
              for i, f in enumerate(fins) for m in _finalizer_errors(f)]
    if causes:
        raise errors.invalid("Namespace", "", t.name, causes)
    expected = (body.get("metadata") or {}).get("resourceVersion", "")

    def mutate(ns: Obj) -> Obj:
        ns.setdefault("spec", {})["finalizers"] = fins
        if not fins:
            ns["spec"].pop("finalizers")
        if expected:
            ns["metadata"]["resourceVersion"] = expected
        return ns
    out, _ = await reg.guaranteed_update(t.info, "", t.name, mutate, subresource="finalize", dry_run=dry,
                                         expected_rv=expected)
    return neg.respond(out, as_yaml=w.yaml, headers=h.warning_headers(warnings))


def _finalizer_errors(name: str) -> list[str]:
    """validateFinalizerName for a namespace's spec.finalizers."""
    from kubelite.api.validation_common import is_qualified_name
    errs = is_qualified_name(name)
    if "/" not in name and name not in ("kubernetes", "orphan", "foregroundDeletion"):
        errs.append("name is neither a standard finalizer name nor is it fully qualified")
    return errs
