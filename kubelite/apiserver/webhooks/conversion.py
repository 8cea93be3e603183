"""CRD conversion webhooks: versions of a custom resource converted by the CRD's webhook.

A CRD with ``spec.conversion.strategy: Webhook`` stores every object in its storage version;
objects read or written in another version are sent, in one ConversionReview
(``apiextensions.k8s.io/v1``, or ``v1beta1`` when that is the first version the CRD lists),
to the webhook's clientConfig over the admission webhooks' HTTPS client.  The answer is
checked as upstream checks it (uid, result, count, apiVersion and kind of every object,
same name, namespace and uid); only labels and annotations may change in metadata, the rest
is taken from the original.  A failed conversion is a 500 with upstream's
``conversion webhook for GROUP/VERSION, Kind=KIND failed: …``.
"""
from __future__ import annotations

import copy
from typing import Any

from kubelite.api import errors, meta
from kubelite.api.resources import ResourceInfo
from kubelite.api.validation_common import validate_annotations, validate_labels
from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiextensions.schema import apply_defaults
from kubelite.apiserver.webhooks.client import CallError, WebhookClient

Obj = dict[str, Any]
_REVIEW_GROUP = "apiextensions.k8s.io"
# Upstream's conversion client gives a webhook this long.
_TIMEOUT_SECONDS = 30


class ConversionFailed(Exception):
    """The webhook did not convert (the text follows ``failed: `` in upstream's error)."""


def _webhook(info: ResourceInfo) -> Obj | None:
    """The conversion webhook of a custom resource's CRD (None: ``None`` strategy)."""
    if not isinstance(info, CustomResourceInfo):
        return None
    conv = info.conversion or {}
    if conv.get("strategy") != "Webhook" or not isinstance(conv.get("webhook"), dict):
        return None
    return conv["webhook"]


def _gvk(obj: Obj) -> str:
    """Go's GroupVersionKind.String() of an object."""
    return f"{obj.get('apiVersion') or ''}, Kind={obj.get('kind') or ''}"


def _restore_metadata(original: Obj, converted: Obj) -> str:
    """Put the original metadata back but for labels and annotations; an error text or ""."""
    got = converted.get("metadata")
    if got is None:
        return "missing metadata in converted object"
    if not isinstance(got, dict):
        return f"invalid metadata of type {type(got).__name__} in converted object"
    md = copy.deepcopy(original.get("metadata") or {})
    for fld in ("labels", "annotations"):
        value = got.get(fld)
        if value is None:
            md.pop(fld, None)
            continue
        if not isinstance(value, dict):
            return f"invalid metadata.{fld} of type {type(value).__name__} in converted object"
        for k, v in value.items():
            if not isinstance(v, str):
                return f"metadata.{fld}[{k}] must be a string, but is {type(v).__name__} in converted object"
        if value != (md.get(fld) or {}):
            check = validate_labels if fld == "labels" else validate_annotations
            problems = check(value, f"metadata.{fld}")
            if problems:
                return f"invalid metadata.{fld}: {problems[0].message}"
        md[fld] = value
    converted["metadata"] = md
    return ""


class ConversionWebhooks:
    """The registry's converter for custom resources whose CRD converts by webhook."""

    def __init__(self, client: WebhookClient):
        self.client = client

    @staticmethod
    def converts(info: ResourceInfo) -> bool:
        """Whether ``info``'s CRD converts versions by webhook."""
        return _webhook(info) is not None

    def applies(self, info: ResourceInfo) -> bool:
        """Whether ``info``'s objects need the webhook (a version other than the stored one)."""
        return _webhook(info) is not None and info.api_version != info.storage_api_version

    async def convert(self, info: ResourceInfo, objs: list[Obj], api_version: str, *, many: bool = False) -> list[Obj]:
        """``objs`` in ``api_version`` (the served one after reads, the stored one for writes);
        500 when the webhook fails.  ``many``: the objects of a list (upstream words errors
        about lists and single objects differently)."""
        todo = [i for i, o in enumerate(objs) if o.get("apiVersion") != api_version]
        out = list(objs)
        if todo:
            try:
                converted = await self._call(info, [objs[i] for i in todo], api_version, many)
            except ConversionFailed as e:
                first = objs[todo[0]]
                # Upstream names what it converts: the list (its kind) or the object.
                shown = _gvk({**first, "kind": f"{first.get('kind') or ''}List"}) if many else _gvk(first)
                raise errors.internal(f"conversion webhook for {shown} failed: {e}") from None
            for n, i in enumerate(todo):
                out[i] = converted[n]
        if api_version == info.api_version and isinstance(info, CustomResourceInfo):
            for o in out:
                # Upstream defaults on every read, in the version read.
                apply_defaults(o, info.schema)
        return out

    async def _call(self, info: ResourceInfo, objs: list[Obj], api_version: str, many: bool) -> list[Obj]:
        hook = _webhook(info) or {}
        versions = [v for v in hook.get("conversionReviewVersions") or [] if v in ("v1", "v1beta1")]
        review_version = f"{_REVIEW_GROUP}/{versions[0] if versions else 'v1'}"
        uid = meta.new_uid()
        sent = [copy.deepcopy(o) for o in objs]
        review = {"apiVersion": review_version, "kind": "ConversionReview",
                  "request": {"uid": uid, "desiredAPIVersion": api_version, "objects": sent}}
        try:
            answer = await self.client.call({"clientConfig": hook.get("clientConfig") or {},
                                             "timeoutSeconds": _TIMEOUT_SECONDS}, review)
        except CallError as e:
            raise ConversionFailed(str(e).removeprefix("failed to call webhook: ")) from None
        if answer.get("apiVersion") != review_version or answer.get("kind") != "ConversionReview":
            raise ConversionFailed(f"expected webhook response of {review_version}, Kind=ConversionReview, got "
                                   f"{_gvk(answer)}")
        response = answer.get("response")
        if not isinstance(response, dict):
            raise ConversionFailed("no response provided")
        if response.get("uid") != uid:
            raise ConversionFailed(f'expected response.uid="{uid}", got "{response.get("uid") or ""}"')
        raw_result = response.get("result")
        result: Obj = raw_result if isinstance(raw_result, dict) else {}
        if result.get("status") != "Success":
            raise ConversionFailed(str(result.get("message") or "") or
                                   f"response.result.status was '{result.get('status') or ''}', not 'Success'")
        converted = response.get("convertedObjects")
        converted = converted if isinstance(converted, list) else []
        if len(converted) != len(objs):
            raise errors.internal(f"conversion webhook for {_gvk(objs[0])} returned {len(converted)} objects, "
                                  f"expected {len(objs)}")
        single = len(objs) == 1 and not many
        out: list[Obj] = []
        for i, (original, got) in enumerate(zip(objs, converted, strict=True)):
            head = f"conversion webhook for {_gvk(original)} returned invalid"
            where = f"{head} object at index 0" if single else f"{head} converted object at index {i}"
            if not isinstance(got, dict) or not isinstance(got.get("metadata", {}), dict):
                raise errors.internal(f"{where}: not an object")
            if got.get("apiVersion") != api_version:
                raise errors.internal(f"{where}: invalid groupVersion (expected {api_version}, received "
                                      f"{got.get('apiVersion') or ''})")
            if got.get("kind") != original.get("kind"):
                raise errors.internal(f"{where}: invalid kind (expected {original.get('kind')}, received "
                                      f"{got.get('kind') or ''})")
            omd, gmd = original.get("metadata") or {}, got.get("metadata") or {}
            for label, fld in (("name", "name"), ("namespace", "namespace"), ("UID", "uid")):
                if (omd.get(fld) or "") != (gmd.get(fld) or ""):
                    shown = f"{head} object" if single else where
                    raise errors.internal(f"{shown}: must have the same {label}: {omd.get(fld) or ''} != "
                                          f"{gmd.get(fld) or ''}")
            problem = _restore_metadata(original, got)
            if problem:
                shown = f"{head} metadata" if single else f"{head} metadata in object at index {i}"
                raise errors.internal(f"{shown}: {problem}")
            out.append(got)
        return out
