"""Subresources that live in the API server: scale, binding, eviction, namespace finalize.

(status goes through the ordinary verbs with ``subresource="status"``; log, exec,
attach, portforward and proxy are forwarded to the node agent by ``nodeproxy``.)
"""
from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from kubelite.api import errors, meta
from kubelite.api.resources import PODS
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


def to_scale(obj: Obj) -> Obj:
    """autoscaling/v1 Scale view of a Deployment, ReplicaSet or ReplicationController."""
    md = obj["metadata"]
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md},
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                   "selector": _selector_string(obj)},
    }


async def scale(request: web.Request, t: Target) -> web.Response:
    """GET/PUT/PATCH …/scale."""
    reg = await h.registry_from(request)
    if request.method == "GET":
        return neg.respond(to_scale(await reg.get(t.info, t.namespace, t.name)))
    body = await neg.read_body(request)
    if request.method == "PUT":
        new_scale = neg.decode_body(request.headers.get("Content-Type", ""), body)
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
                return patches.json_patch(cur, pbody)
            if ptype == "merge":
                return patches.json_merge_patch(cur, pbody)
            return patches.strategic_merge_patch(cur, pbody, "Scale", "autoscaling/v1")
        new_scale = None
    else:
        raise errors.method_not_allowed()

    expected = ""
    if new_scale is not None:
        expected = (new_scale.get("metadata") or {}).get("resourceVersion", "")

    def mutate(obj: Obj) -> Obj:
        cur = to_scale(obj)
        sc = new_scale if new_scale is not None else patch_fn(copy.deepcopy(cur))
        replicas = (sc.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            replicas = 0 if replicas is None else replicas
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", t.name, [errors.Cause(
                "FieldValueInvalid", f"Invalid value: {replicas}: must be greater than or equal to 0", "spec.replicas")])
        obj.setdefault("spec", {})["replicas"] = replicas
        if not expected:
            return obj
        obj["metadata"]["resourceVersion"] = expected
        return obj

    out, _ = await reg.guaranteed_update(t.info, t.namespace, t.name, mutate, expected_rv=expected,
                                         dry_run=h.dry_run(request),
                                         manager_fn=h.managed_fields_updater(request, t.info, "scale"))
    return neg.respond(to_scale(out))


async def binding(request: web.Request, t: Target) -> web.Response:
    """POST pods/NAME/binding: set spec.nodeName once, add PodScheduled=True."""
    reg = await h.registry_from(request)
    dry_run = h.dry_run(request)  # a bad dryRun value is a 400 before anything else
    ctype = request.headers.get("Content-Type", "")
    raw = await neg.read_body(request)
    body = neg.decode_body(ctype, raw)
    warnings = h.check_fields(request, body, body=raw, ctype=ctype)
    name = (body.get("metadata") or {}).get("name") or t.name
    if t.name and name != t.name:
        raise errors.bad_request(f"Binding.metadata.name: Invalid value: \"{name}\": must match the pod name")
    node = (body.get("target") or {}).get("name")
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
    await reg.guaranteed_update(PODS, t.namespace, name, mutate, subresource="binding", dry_run=dry_run)
    return neg.respond({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201,
                       as_yaml=neg.wants(request).yaml, headers=h.warning_headers(warnings))


async def eviction(request: web.Request, t: Target) -> web.Response:
    """POST pods/NAME/eviction: a delete with the eviction's DeleteOptions."""
    reg = await h.registry_from(request)
    body = neg.decode_body(request.headers.get("Content-Type", ""), await neg.read_body(request))
    opts = body.get("deleteOptions") or {}
    await reg.delete(PODS, t.namespace, t.name, opts, dry_run=h.dry_run(request))
    return neg.respond({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)


async def finalize(request: web.Request, t: Target) -> web.Response:
    """PUT namespaces/NAME/finalize: replace spec.finalizers (the namespace controller's last step)."""
    reg = await h.registry_from(request)
    body = neg.decode_body(request.headers.get("Content-Type", ""), await neg.read_body(request))
    fins = (body.get("spec") or {}).get("finalizers") or []

    def mutate(ns: Obj) -> Obj:
        ns.setdefault("spec", {})["finalizers"] = fins
        if not fins:
            ns["spec"].pop("finalizers")
        return ns
    out, _ = await reg.guaranteed_update(t.info, "", t.name, mutate, subresource="finalize")
    return neg.respond(out)
