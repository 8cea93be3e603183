"""The admission webhook dispatcher: mutating webhooks in order, validating ones in parallel.

Registry hooks: ``mutate`` is a mutating admission hook (the defaulted object; JSONPatch
answers applied, IfNeeded webhooks called once more when a later one changed the object),
``validate`` a validating one (after validation; also calls mutating webhooks on DELETE,
which upstream asks without an object to change).  Errors are upstream's: a denial is
``admission webhook "NAME" denied the request: MESSAGE`` with the webhook's code (400 by
default), a webhook that cannot be called under failurePolicy Fail is a 500
``failed calling webhook "NAME": …``.  Warnings go to the client as Warning headers.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any

import orjson

from kubelite.api import errors, meta
from kubelite.api.errors import StatusError
from kubelite.api.patch.jsonpatch import json_patch
from kubelite.api.resources import NAMESPACES, ResourceInfo
from kubelite.apiserver.audit import annotate
from kubelite.apiserver.registry import AdmissionAttributes, Registry, default_for_admission
from kubelite.apiserver.security import CURRENT_USER
from kubelite.apiserver.webhooks import matching
from kubelite.apiserver.webhooks.client import CallError, WebhookClient
from kubelite.apiserver.webhooks.conversion import ConversionWebhooks
from kubelite.apiserver.webhooks.policies import ValidatingPolicies, observe_generations
from kubelite.apiserver.webhooks.shared import convert, request_options, warn
from kubelite.apiserver.webhooks.source import CONFIG_RESOURCES, Hook, WebhookSource

log = logging.getLogger(__name__)
Obj = dict[str, Any]
REVIEW_VERSION = "admission.k8s.io/v1"

class Webhooks:
    """Admission webhooks of one API server."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.source = WebhookSource(registry)
        self.client = WebhookClient(registry)
        self.conversion = ConversionWebhooks(self.client)

    def install(self) -> None:
        """Register the registry hooks: mutating webhooks last among the mutating hooks;
        policies, then validating webhooks, first among the validating ones (before quota,
        as upstream orders its plugins); and the CRD conversion webhooks."""
        self.registry.mutating.append(self.mutate)
        self.registry.mutating_active = lambda: bool(self.source.mutating)
        self.registry.converter = self.conversion
        policies = ValidatingPolicies(self.registry, self.source, self.conversion)
        self.registry.validating[0:0] = [policies.validate, self.validate]

    async def start(self) -> None:
        """Load the configurations."""
        await self.source.reload()
        await observe_generations(self.registry, self.source.policies)

    async def stop(self) -> None:
        """Close connections to webhooks."""
        await self.client.close()

    async def changed(self, info: ResourceInfo) -> None:
        """After a write: reload the cache when ``info`` is a webhook configuration."""
        if self.source.is_configuration(info):
            await self.source.reload()
            await observe_generations(self.registry, self.source.policies)

    # -- selection -----------------------------------------------------------------------------
    async def _namespace_labels(self, attrs: AdmissionAttributes) -> dict[str, str] | None:
        """Labels namespaceSelector applies to; None for cluster-scoped objects (never exempt)."""
        if attrs.info.group == "" and attrs.info.plural == "namespaces":
            return matching.labels_of(attrs.obj if attrs.obj is not None else attrs.old)
        if not attrs.namespace:
            return None
        try:
            ns = await self.registry.get(NAMESPACES, "", attrs.namespace)
        except errors.NotFound:
            return {}
        return matching.labels_of(ns)

    async def _selected(self, hooks: tuple[Hook, ...], attrs: AdmissionAttributes,
                        operation: str) -> list[tuple[Hook, ResourceInfo]]:
        if not hooks or (attrs.info.group, attrs.info.plural) in CONFIG_RESOURCES:
            return []
        out: list[tuple[Hook, ResourceInfo]] = []
        ns_labels: dict[str, str] | None = None
        ns_read = False
        for hook in hooks:
            target = matching.matching_resource(hook, operation, attrs.info, attrs.subresource, attrs.namespace)
            if target is None:
                continue
            if hook.namespace_selector.requirements or hook.namespace_selector.nothing:
                if not ns_read:
                    ns_labels, ns_read = await self._namespace_labels(attrs), True
                if ns_labels is not None and not hook.namespace_selector.matches(ns_labels):
                    continue
            if not matching.object_selector_matches(hook, attrs.obj, attrs.old):
                continue
            out.append((hook, target))
        return out

    # -- the review ---------------------------------------------------------------------------
    async def _review(self, hook: Hook, target: ResourceInfo, attrs: AdmissionAttributes, operation: str,
                      uid: str) -> Obj:
        info = attrs.info
        user = CURRENT_USER.get()

        async def converted(obj: Obj | None) -> Obj | None:
            return None if obj is None else await convert(obj, info, target, self.conversion)

        options = request_options(attrs, operation)
        request: Obj = {
            "uid": uid,
            "kind": {"group": target.group, "version": target.version, "kind": target.kind},
            "resource": {"group": target.group, "version": target.version, "resource": target.plural},
            "requestKind": {"group": info.group, "version": info.version, "kind": info.kind},
            "requestResource": {"group": info.group, "version": info.version, "resource": info.plural},
            "name": attrs.name,
            "operation": operation,
            "userInfo": user.info() if user is not None else {},
            "object": await converted(attrs.obj),
            "oldObject": await converted(attrs.old),
            "dryRun": attrs.dry_run,
            "options": options,
        }
        if attrs.subresource:
            request["subResource"] = attrs.subresource
            request["requestSubResource"] = attrs.subresource
        if attrs.namespace:
            request["namespace"] = attrs.namespace
        return {"apiVersion": REVIEW_VERSION, "kind": "AdmissionReview", "request": request}

    def _check_conditions(self, hook: Hook, review: Obj, attrs: AdmissionAttributes) -> bool:
        req = review["request"]
        try:
            return matching.conditions_match(hook, {"object": req["object"], "oldObject": req["oldObject"],
                                                    "request": req})
        except matching.MatchConditionError as e:
            raise errors.forbidden(f'{errors.qualified(attrs.info.plural, attrs.info.group)} "{attrs.name}" '
                                   f"is forbidden: {e}") from None

    async def _call(self, hook: Hook, review: Obj) -> Obj:
        """The hook's AdmissionResponse (CallError when there is none to use)."""
        if review["request"]["dryRun"] and hook.spec.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        answer = await self.client.call(hook.spec, review)
        if answer.get("apiVersion") != REVIEW_VERSION or answer.get("kind") != "AdmissionReview":
            raise CallError("received invalid webhook response: expected webhook response of "
                            f"admission.k8s.io/v1, Kind=AdmissionReview, got {answer.get('apiVersion')}, "
                            f"Kind={answer.get('kind')}")
        response = answer.get("response")
        if not isinstance(response, dict):
            raise CallError("received invalid webhook response: webhook response was absent")
        uid = review["request"]["uid"]
        if response.get("uid") != uid:
            raise CallError(f'received invalid webhook response: expected response.uid="{uid}", '
                            f'got "{response.get("uid") or ""}"')
        for w in response.get("warnings") or []:
            warn(str(w))
        notes = response.get("auditAnnotations")
        if isinstance(notes, dict):  # into the request's audit event, keyed by the webhook's name
            for key, value in notes.items():
                annotate(f"{hook.name}/{key}", str(value))
        if not response.get("allowed"):
            raise _denied(hook.name, response.get("status"))
        return response

    def _failed(self, hook: Hook, e: CallError) -> StatusError | None:
        """failurePolicy: the error to return, or None to go on without the webhook."""
        message = f'failed calling webhook "{hook.name}": {e}'
        if (hook.spec.get("failurePolicy") or "Fail") == "Ignore":
            log.warning("Failed calling webhook, failing open %s: %s", hook.name, message)
            return None
        log.warning("Failed calling webhook, failing closed %s: %s", hook.name, message)
        return errors.internal(message)

    # -- mutating ------------------------------------------------------------------------------
    async def mutate(self, attrs: AdmissionAttributes) -> bool:
        """Mutating admission hook: call the matching mutating webhooks in order."""
        if not self.source.mutating:
            return False
        selected = await self._selected(self.source.mutating, attrs, attrs.operation)
        if not selected:
            return False
        assert attrs.obj is not None
        changed = False
        invoked: list[tuple[Hook, ResourceInfo]] = []   # IfNeeded webhooks called so far
        again: list[tuple[Hook, ResourceInfo]] = []     # ... that a later change calls once more
        for hook, target in selected:
            if await self._mutate_one(hook, target, attrs):
                changed = True
                again.extend(x for x in invoked if x not in again)
            if hook.spec.get("reinvocationPolicy") == "IfNeeded":
                invoked.append((hook, target))
        if again:
            # One more round, in the original order, for the webhooks that asked for it.
            for hook, target in [x for x in selected if x in again]:
                await self._mutate_one(hook, target, attrs)
        return changed

    async def _mutate_one(self, hook: Hook, target: ResourceInfo, attrs: AdmissionAttributes) -> bool:
        assert attrs.obj is not None
        uid = _uid()
        review = await self._review(hook, target, attrs, attrs.operation, uid)
        if not self._check_conditions(hook, review, attrs):
            return False
        try:
            response = await self._call(hook, review)
        except CallError as e:
            err = self._failed(hook, e)
            if err is not None:
                raise err from None
            return False
        patch = response.get("patch")
        if not patch:
            return False
        if response.get("patchType") != "JSONPatch":
            err = self._failed(hook, CallError(f'unsupported patch type "{response.get("patchType") or ""}"'))
            if err is not None:
                raise err
            return False
        try:
            ops = orjson.loads(base64.b64decode(str(patch), validate=True))
        except (binascii.Error, orjson.JSONDecodeError) as e:
            err = self._failed(hook, CallError(f"received undecodable patch in webhook response: {e}"))
            if err is not None:
                raise err from None
            return False
        try:
            patched = json_patch(review["request"]["object"], ops)
        except StatusError as e:
            raise errors.internal(f"admission webhook \"{hook.name}\" returned an invalid patch: {e}") from None
        patched = await convert(patched, target, attrs.info, self.conversion)
        if patched == attrs.obj:
            return False
        default_for_admission(attrs.info, patched, attrs.old)
        attrs.obj.clear()
        attrs.obj.update(patched)
        return True

    # -- validating ----------------------------------------------------------------------------
    async def validate(self, attrs: AdmissionAttributes) -> None:
        """Validating admission hook: the matching validating webhooks, in parallel."""
        if attrs.operation == "DELETE" and self.source.mutating:
            # Upstream asks mutating webhooks about deletions too; there is nothing to patch.
            for hook, target in await self._selected(self.source.mutating, attrs, "DELETE"):
                await self._ask(hook, target, attrs, mutating=True)
        if not self.source.validating:
            return
        selected = await self._selected(self.source.validating, attrs, attrs.operation)
        if not selected:
            return
        results = await asyncio.gather(*(self._ask(h, t, attrs, mutating=False) for h, t in selected),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _ask(self, hook: Hook, target: ResourceInfo, attrs: AdmissionAttributes, *, mutating: bool) -> None:
        review = await self._review(hook, target, attrs, attrs.operation, _uid())
        if not self._check_conditions(hook, review, attrs):
            return
        try:
            response = await self._call(hook, review)
        except CallError as e:
            err = self._failed(hook, e)
            if err is not None:
                raise err from None
            return
        if response.get("patch") and not mutating:
            err = self._failed(hook, CallError("received invalid webhook response: validating webhooks may not "
                                               "return patches"))
            if err is not None:
                raise err
        elif response.get("patch"):
            raise errors.internal(f'admission webhook "{hook.name}" attempted to modify the object, which is not '
                                  "supported for this operation")


def _uid() -> str:
    return meta.new_uid()


def _denied(name: str, status: Any) -> StatusError:
    """ToStatusErr: the webhook's Status with upstream's message; at least 400."""
    st = status if isinstance(status, dict) else {}
    prefix = f'admission webhook "{name}" denied the request'
    if st.get("message"):
        message = f"{prefix}: {st['message']}"
    elif st.get("reason"):
        message = f"{prefix}: {st['reason']}"
    else:
        message = f"{prefix} without explanation"
    raw = st.get("code")
    code = raw if isinstance(raw, int) and raw >= 400 else 400
    details = st.get("details") if isinstance(st.get("details"), dict) else None
    return errors.status_error(code, str(st.get("reason") or ""), message, details)
