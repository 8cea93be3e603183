"""The verbs on resources: get, list, watch, create, update, patch, delete, deletecollection."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import LooseHeaders

from kubelite.api import errors, meta, typeddecode
from kubelite.api.resources import ResourceInfo
from kubelite.api.validation_common import go_quote
from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiextensions.printing import table as custom_table
from kubelite.apiserver import handlers as h
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver import strictdecode
from kubelite.apiserver.handlers import Target

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]


def make_predicate(request: web.Request, info: ResourceInfo) -> Predicate | None:
    """Label and field selectors from the query as one predicate (None: match all)."""
    from kubelite.api.selectors import convert_field_selector, field_matches, parse_field_selector, parse_label_selector
    ls = request.query.get("labelSelector", "")
    fs = request.query.get("fieldSelector", "")
    if not ls and not fs:
        return None
    lsel = parse_label_selector(ls) if ls else None
    terms = convert_field_selector(info.group, info.kind, parse_field_selector(fs)) if fs else []

    def pred(obj: Obj) -> bool:
        if lsel is not None and not lsel.matches(meta.labels(obj)):
            return False
        return not terms or field_matches(info.kind, obj, terms)
    return pred


# Kinds whose REST storage has no table convertor upstream (create-only reviews and
# bindings): a request for a Table of them is 406.
_TABLELESS = frozenset({"Binding", "Eviction", "TokenRequest", "TokenReview", "SelfSubjectReview",
                        "SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview",
                        "LocalSubjectAccessReview"})


def negotiate(request: web.Request, info: ResourceInfo) -> neg.Wants:
    """The response form, settled before any work is done (406 writes nothing)."""
    return neg.wants(request, tables=info.kind not in _TABLELESS)


def table(info: ResourceInfo, objs: list[Obj], w: neg.Wants, *, resource_version: str, no_headers: bool = False,
          continue_token: str = "", remaining: int | None = None) -> Obj:
    """A Table of ``objs`` in the meta.k8s.io version the client asked for."""
    from kubelite.api.printers import table_for
    if isinstance(info, CustomResourceInfo):
        tbl = custom_table(info, objs, include_object=w.include_object, resource_version=resource_version,
                           no_headers=no_headers, continue_token=continue_token, remaining_item_count=remaining)
    else:
        tbl = table_for(info.kind, info.api_version, objs, include_object=w.include_object,
                        resource_version=resource_version, no_headers=no_headers, continue_token=continue_token,
                        remaining_item_count=remaining)
    tbl["apiVersion"] = w.meta_api_version()
    for row in tbl["rows"]:
        o = row.get("object")
        if isinstance(o, dict) and o.get("kind") == "PartialObjectMetadata":
            o["apiVersion"] = w.meta_api_version()
    return tbl


def render_one(request: web.Request, info: ResourceInfo, obj: Obj, status: int = 200,
               headers: LooseHeaders | None = None, w: neg.Wants | None = None) -> web.Response:
    """One object, as JSON/YAML, PartialObjectMetadata or a one-row Table."""
    w = w or negotiate(request, info)
    if w.table:
        return neg.respond(table(info, [obj], w, resource_version=meta.resource_version(obj)), status,
                           as_yaml=w.yaml, headers=headers)
    if w.partial_metadata:
        obj = {"kind": "PartialObjectMetadata", "apiVersion": w.meta_api_version(), "metadata": obj.get("metadata", {})}
    return neg.respond(obj, status, as_yaml=w.yaml, headers=headers)


async def get(request: web.Request, t: Target) -> web.Response:
    """GET one object."""
    w = negotiate(request, t.info)
    reg = await h.registry_from(request)
    obj = await reg.get(t.info, t.namespace, t.name)
    return render_one(request, t.info, obj, w=w)


async def list_(request: web.Request, t: Target) -> web.Response:
    """LIST with selectors, limit/continue and Table output."""
    w = negotiate(request, t.info)
    reg = await h.registry_from(request)
    q = request.query
    h.validate_list_options(request, watch=False)
    limit = h.query_int(request, "limit") if q.get("limit") else 0
    pred = make_predicate(request, t.info)
    # Shared decodes: the items are only rendered here, never changed.
    items, rev, cont, remaining = await reg.list(t.info, t.namespace, predicate=pred, limit=max(limit, 0),
                                                 continue_=q.get("continue", ""), shared=True)
    if w.table:
        return neg.respond(table(t.info, items, w, resource_version=str(rev), continue_token=cont,
                                 remaining=remaining or None), as_yaml=w.yaml)
    if w.partial_metadata:
        lst = h.to_list(t.info, [], rev, cont, remaining)
        lst.update(kind="PartialObjectMetadataList", apiVersion=w.meta_api_version(),
                   items=[{"kind": "PartialObjectMetadata", "apiVersion": w.meta_api_version(),
                           "metadata": i["metadata"]} for i in items])
        return neg.respond(lst, as_yaml=w.yaml)
    return neg.respond(h.to_list(t.info, items, rev, cont, remaining), as_yaml=w.yaml)


async def create(request: web.Request, t: Target) -> web.Response:
    """POST a new object."""
    w = negotiate(request, t.info)
    reg = await h.registry_from(request)
    dry = h.dry_run(request)
    body = await neg.read_body(request)
    obj, warnings = h.decode_object(request, t.info.api_version, t.info.kind, body, t.info)
    out = await reg.create(t.info, t.namespace, obj, dry_run=dry,
                           manager_fn=h.managed_fields_updater(request, t.info))
    return render_one(request, t.info, out, 201, headers=h.warning_headers(warnings), w=w)


async def update(request: web.Request, t: Target) -> web.Response:
    """PUT a whole object (main resource or /status)."""
    w = negotiate(request, t.info)
    reg = await h.registry_from(request)
    dry = h.dry_run(request)
    body = await neg.read_body(request)
    obj, warnings = h.decode_object(request, t.info.api_version, t.info.kind, body, t.info)
    h.check_name(obj, t.name, t.namespace)
    expected = obj.get("metadata", {}).get("resourceVersion", "")
    sub = t.subresource if t.subresource == "status" else ""

    def mutate(_old: Obj) -> Obj:
        new = copy.deepcopy(obj)
        new.setdefault("metadata", {})["resourceVersion"] = expected
        return new

    out, created = await reg.guaranteed_update(
        t.info, t.namespace, t.name, mutate, subresource=sub, dry_run=dry,
        expected_rv=expected, manager_fn=h.managed_fields_updater(request, t.info, sub))
    return render_one(request, t.info, out, 201 if created else 200, headers=h.warning_headers(warnings), w=w)


async def patch(request: web.Request, t: Target) -> web.Response:
    """PATCH in any of the four patch types (apply may create)."""
    from kubelite.api import patch as patches
    w = negotiate(request, t.info)
    reg = await h.registry_from(request)
    dry = h.dry_run(request)
    h.field_validation(request)
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    ptype = patches.PATCH_TYPES.get(ctype)
    if ptype is None:
        raise errors.unsupported_media_type(ctype, list(patches.PATCH_TYPES))
    raw = await neg.read_body(request)
    body = neg.decode_patch_body(ptype, raw)
    sub = t.subresource if t.subresource == "status" else ""
    info = t.info
    warnings: list[str] = []
    # Repeated keys in the patch itself: reported with the result's unknown fields.
    duplicates = strictdecode.duplicate_field_messages(raw) if ptype in ("merge", "strategic") else []
    force = h.qbool(request, "force")
    if ptype == "apply":
        if not request.query.get("fieldManager"):
            raise errors.bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                     "is required for apply patch")
        if request.query.get("force") and not force and request.query.get("force") != "false":
            raise errors.bad_request("force: Invalid value")
        h.check_kind(info, body)
        unknown = _typed_apply_body(info, body)
        warnings = h.check_fields(request, body, unknown=unknown) + _apply_duplicates(request, raw)
        if info.has_status and not sub and isinstance(body, dict) and "status" in body:
            # Upstream's reset fields: status applied to the main resource is neither written nor
            # owned, so it cannot conflict with the status writers' fields.
            body = {k: v for k, v in body.items() if k != "status"}
    elif request.query.get("force"):
        raise errors.bad_request("force: Forbidden: may not be specified for non-apply patch")
    manager = h.manager_name(request)

    def mutate(old: Obj) -> Obj:
        if ptype == "json":
            new = patches.json_patch(old, body)
        elif ptype == "merge":
            new = patches.json_merge_patch(old, body)
        elif ptype == "strategic":
            new = patches.strategic_merge_patch(old, body, info.kind, info.api_version)
        else:
            new = patches.apply_patch(old, body, manager=manager, force=force, kind=info.kind,
                                      api_version=info.api_version, now=meta.rfc3339())
        if not isinstance(new, dict):
            raise errors.bad_request("the patch did not produce an object")
        if ptype != "apply":
            h.check_kind(info, new)
        unknown = typed_patch_result(info, new, ptype, body)
        h.check_name(new, t.name, t.namespace)
        if ptype != "apply":
            warnings[:] = h.check_fields(request, new, duplicates=duplicates, unknown=unknown)  # this attempt's only
        # A resourceVersion in the patch is a precondition; otherwise the write is ours.
        if new.get("metadata", {}).get("resourceVersion") != old["metadata"]["resourceVersion"] and \
                body_rv(body, ptype) is None:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return new

    def create_from_apply() -> Obj:
        obj = patches.apply_patch(None, copy.deepcopy(body), manager=manager, force=force, kind=info.kind,
                                  api_version=info.api_version, now=meta.rfc3339())
        if not (obj.get("metadata") or {}).get("name"):
            obj.setdefault("metadata", {})["name"] = t.name
        typed_patch_result(info, obj, ptype, body)
        h.check_name(obj, t.name, t.namespace)
        return obj

    updater = None if ptype == "apply" else h.managed_fields_updater(request, info, sub)
    out, created = await reg.guaranteed_update(
        info, t.namespace, t.name, mutate, subresource=sub, dry_run=dry,
        manager_fn=updater, create_if_missing=create_from_apply if ptype == "apply" and not sub else None)
    return render_one(request, info, out, 201 if created else 200, headers=h.warning_headers(warnings), w=w)


def typed_patch_result(info: ResourceInfo, new: Obj, ptype: str, body: Any) -> list[typeddecode.Unknown]:
    """Typed decoding of a patch result, as upstream decodes it into the kind's struct:
    a value of the wrong type is 422 ``patch: Invalid value``; returns unknown fields."""
    try:
        return h.typed_unknown(new, info.api_version, info.kind)
    except typeddecode.TypeMismatch as e:
        raise h.patch_type_error(e, ptype, new, body) from None
    except typeddecode.TooDeep:
        raise errors.bad_request(f"error decoding patch: {neg.too_deep()}") from None


def _typed_apply_body(info: ResourceInfo, body: Obj) -> list[typeddecode.Unknown]:
    """An apply body is converted to the kind's typed form before it is merged; a value of
    the wrong type is refused there (upstream: a 500 with this text; here 400)."""
    try:
        return h.typed_unknown(body, info.api_version, info.kind)
    except typeddecode.TypeMismatch as e:
        md = body.get("metadata")
        if not isinstance(md, dict):  # the wrong type may be metadata itself
            md = {}
        gvk = f"{info.group}/{info.version}, Kind={info.kind}"
        raise errors.bad_request(f"failed to create typed patch object ({md.get('namespace', '')}/{md.get('name', '')}; "
                                 f"{gvk}): {e.apply_message()}") from None
    except typeddecode.TooDeep:
        raise errors.bad_request(f"error decoding patch: {neg.too_deep()}") from None


def _apply_duplicates(request: web.Request, raw: bytes) -> list[str]:
    """Repeated keys in an apply body, reported as upstream's YAML decoder words them:
    400 under fieldValidation=Strict, warnings under Warn."""
    mode = h.field_validation(request)
    if mode == "Ignore":
        return []
    lines = strictdecode.apply_duplicate_lines(raw)
    if lines and mode == "Strict":
        raise errors.bad_request(f"error strict decoding YAML: error converting YAML to JSON: "
                                 f"{h.yaml_unmarshal_error(lines)}")
    return lines


def body_rv(body: Any, ptype: str) -> str | None:
    """The resourceVersion a patch asks for (a precondition), if any."""
    if isinstance(body, dict):
        return (body.get("metadata") or {}).get("resourceVersion")
    return None


async def delete(request: web.Request, t: Target) -> web.Response:
    """DELETE one object with DeleteOptions from the body or the query."""
    w = negotiate(request, t.info)
    reg = await h.registry_from(request)
    opts = await delete_options(request)
    obj, gone = await reg.delete(t.info, t.namespace, t.name, opts, dry_run=h.dry_run(request))
    if t.info.return_deleted_object or not gone:
        return render_one(request, t.info, obj, 200, w=w)
    return neg.respond(h.deleted_status(t.info, obj))


async def delete_options(request: web.Request) -> dict:
    """DeleteOptions from a JSON/YAML/protobuf body, with query parameters on top; typed
    as metav1.DeleteOptions (400) and validated as upstream does (422)."""
    body = await neg.read_body(request)
    opts: dict = {}
    if body.strip():
        opts = neg.decode_body(request.headers.get("Content-Type", ""), body)
        opts.setdefault("kind", "DeleteOptions")
        opts.setdefault("apiVersion", "meta.k8s.io/v1")
        try:
            h.typed_unknown(opts, "meta.k8s.io/v1", "DeleteOptions")
        except typeddecode.TypeMismatch as e:
            raise errors.bad_request(e.json_message()) from None
        except typeddecode.TooDeep:
            raise errors.bad_request(f"json: {neg.too_deep()}") from None
    q = request.query
    if "gracePeriodSeconds" in q:
        opts["gracePeriodSeconds"] = h.query_int(request, "gracePeriodSeconds")
    if "propagationPolicy" in q:
        opts["propagationPolicy"] = q["propagationPolicy"]
    validate_delete_options(opts)
    return opts


def validate_delete_options(opts: Obj) -> None:
    """ValidateDeleteOptions (422 ``DeleteOptions.meta.k8s.io "" is invalid``)."""
    causes = []
    pol = opts.get("propagationPolicy")
    if pol is not None and opts.get("orphanDependents") is not None:
        causes.append(errors.Cause("FieldValueInvalid", f"Invalid value: {go_quote(pol)}: orphanDependents and "
                                   "deletionPropagation cannot be both set", "propagationPolicy"))
    if pol is not None and pol not in ("Orphan", "Background", "Foreground"):
        causes.append(errors.Cause("FieldValueNotSupported", f"Unsupported value: {go_quote(pol)}: supported values: "
                                   '"Foreground", "Background", "Orphan", "nil"', "propagationPolicy"))
    dry = opts.get("dryRun") or []
    if any(d != "All" for d in dry):
        shown = "[" + ",".join(orjson.dumps(d).decode() for d in dry) + "]"
        causes.append(errors.Cause("FieldValueNotSupported", f'Unsupported value: {shown}: supported values: "All"',
                                   "dryRun"))
    if causes:
        raise errors.invalid("DeleteOptions", "meta.k8s.io", "", causes)


async def delete_collection(request: web.Request, t: Target) -> web.Response:
    """DELETE on a collection: every object matching the selectors."""
    negotiate(request, t.info)
    reg = await h.registry_from(request)
    opts = await delete_options(request)
    pred = make_predicate(request, t.info)
    items, rev, _, _ = await reg.list(t.info, t.namespace, predicate=pred)
    out = []
    for obj in items:
        try:
            o, _ = await reg.delete(t.info, meta.namespace(obj), meta.name(obj), opts, dry_run=h.dry_run(request))
            out.append(o)
        except errors.NotFound:
            pass  # deleted meanwhile by someone else: nothing left to delete
    return neg.respond(h.to_list(t.info, out, reg.store.revision, "", None))
