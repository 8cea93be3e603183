"""Generic REST storage for every resource: the only code that touches the store.

Each verb reads and writes through ``Store`` with compare-and-swap and maps store
failures to upstream's Status errors.  Objects are stored as JSON without their
resourceVersion; the store's ``mod_revision`` becomes ``metadata.resourceVersion`` on
the way out, so there is one global, monotonically increasing version as in etcd.
A resource that is another API's view of stored objects (events.k8s.io Events) is
converted by ``encode``/``decode`` alone; every verb works on the view.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import copy
import dataclasses
import datetime as dt
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol

import orjson

from kubelite.api import conversion, errors, meta
from kubelite.api.defaults import apply_defaults
from kubelite.api.resources import SERVICES, ResourceInfo
from kubelite.apiserver import strategies
from kubelite.apiserver.allocators import Reservation, ServiceAllocator
from kubelite.store.base import KV, Compacted, KeyExists, KeyNotFound, RevisionMismatch, Store

Obj = dict[str, Any]
Mutator = Callable[[Obj], Obj]
# Admission that needs more than the object (who writes, what else is stored): called with
# (resource, new object, old object or None) before validation; raises a StatusError.
Admission = Callable[[ResourceInfo, Obj, "Obj | None"], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class AdmissionAttributes:
    """One write as validating admission sees it, after defaulting and validation."""

    info: ResourceInfo
    operation: str  # CREATE, UPDATE or DELETE
    namespace: str
    name: str
    obj: Obj | None  # None for DELETE
    old: Obj | None  # None for CREATE
    subresource: str = ""
    dry_run: bool = False
    options: Obj | None = None  # the DeleteOptions of a DELETE


# Validating admission (quota, webhooks, policies): sees the final object and may only refuse
# by raising a StatusError; it runs after validation, as upstream's validating plugins do.
ValidatingAdmission = Callable[[AdmissionAttributes], Awaitable[None]]


class CreateLookups(Protocol):
    """Where a create finds its Namespace and a pod its ServiceAccount (``lookups.Lookups``)."""

    async def namespace(self, name: str) -> Obj | None:
        """The Namespace, or None when it does not exist."""
        ...

    async def service_account(self, ns: str, name: str) -> Obj | None:
        """The ServiceAccount, or None when it does not exist."""
        ...


class Converter(Protocol):
    """Converts objects between versions where the store cannot (CRD conversion webhooks)."""

    def applies(self, info: ResourceInfo) -> bool:
        """Whether reads and writes of ``info`` go through this converter."""
        ...

    async def convert(self, info: ResourceInfo, objs: list[Obj], api_version: str, *,
                      many: bool = False) -> list[Obj]:
        """``objs`` in ``api_version`` (a StatusError when they cannot be converted)."""
        ...
# Mutating admission (webhooks): sees the defaulted object after the ``admission`` hooks, may
# change ``attrs.obj`` in place and says whether it did; a changed object goes through the
# ``admission`` hooks once more (a custom resource's schema) before validation.
MutatingAdmission = Callable[[AdmissionAttributes], Awaitable[bool]]


def default_for_admission(info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
    """Upstream's decode-time defaults, for mutating admission to see: built-in kinds only
    (a custom resource's schema defaults are applied by its own admission hook)."""
    from kubelite.apiextensions.info import CustomResourceInfo
    if not isinstance(info, CustomResourceInfo):
        apply_defaults(info.kind, info.api_version, obj, create=old is None)


def decode(kv: KV, info: ResourceInfo) -> Obj:
    """Stored bytes → object (as ``info``'s API serves it) with resourceVersion set."""
    obj = conversion.from_storage(info, orjson.loads(kv.value))
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    obj.setdefault("apiVersion", info.api_version)
    obj.setdefault("kind", info.kind)
    return obj


def json_copy(obj: Obj) -> Obj:
    """A deep copy of a JSON-shaped object: an orjson round trip, several times cheaper than
    copy.deepcopy on an object as big as a pod (every update copies one); deepcopy for what
    JSON cannot carry."""
    try:
        return orjson.loads(orjson.dumps(obj))
    except (TypeError, orjson.JSONEncodeError):
        return copy.deepcopy(obj)


def encode(obj: Obj, info: ResourceInfo) -> bytes:
    """Object → stored bytes (resourceVersion is the store's business)."""
    stored = conversion.to_storage(info, obj)
    md = stored.get("metadata") or {}
    rv = md.pop("resourceVersion", None)
    try:
        return orjson.dumps(stored)
    finally:
        if rv is not None:
            md["resourceVersion"] = rv


# Kinds whose strategy says GarbageCollectionPolicy Unsupported upstream (events): a
# propagationPolicy on their deletion is ignored.
GC_UNSUPPORTED = frozenset({"Event"})

# The revision of a continue token that goes on at the newest revision (after a 410).
LATEST = -1


def encode_continue(rv: int, start_key: str) -> str:
    """An opaque continue token: the list's revision and the next key."""
    return base64.urlsafe_b64encode(orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start_key})).decode()


def decode_continue(token: str) -> tuple[int, str]:
    """Parse a continue token (400 when it is not ours)."""
    try:
        d = orjson.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        return int(d["rv"]), str(d["start"])
    except Exception:
        raise errors.bad_request("continue key is not valid: invalid continue token") from None


class Registry:
    """CRUD + watch over the store for every ResourceInfo."""

    def __init__(self, store: Store, allocator: ServiceAllocator):
        self.store = store
        self.allocator = allocator
        self._watch_objects: collections.OrderedDict[tuple[str, int, str], Obj] = collections.OrderedDict()
        self.admission: list[Admission] = []
        self.validating: list[ValidatingAdmission] = []
        self.mutating: list[MutatingAdmission] = []
        # Whether the mutating hooks may change an object now (webhooks configured); None:
        # assume they may. Where they cannot, an update's copy of the object may be shallow.
        self.mutating_active: Callable[[], bool] | None = None
        self.converter: Converter | None = None
        # Namespaces and ServiceAccounts for creates from the server's in-memory copies
        # (apiserver/lookups.py); None: read from the store each time.
        self.lookups: CreateLookups | None = None

    # -- helpers -----------------------------------------------------------------------
    def _key(self, info: ResourceInfo, ns: str, name: str) -> str:
        return info.store_key(ns, name)

    def _converts(self, info: ResourceInfo) -> bool:
        return self.converter is not None and self.converter.applies(info)

    async def _remove(self, info: ResourceInfo, kv: KV, gone: Obj) -> KV | None:
        """Delete ``kv`` if it is still the version read (None when it is not) and give back the
        ClusterIPs and NodePorts ``gone`` held when it is a Service: every final delete does both."""
        try:
            kv2 = await self.store.delete(kv.key, kv.mod_revision)
        except RevisionMismatch:
            return None
        if info is SERVICES:
            await self.allocator.release_service(gone)
        return kv2

    async def _decode(self, kv: KV, info: ResourceInfo) -> Obj:
        """decode(), through the converter where one applies."""
        if not self._converts(info):
            return decode(kv, info)
        return (await self._decode_many([kv], info, many=False))[0]

    async def _decode_many(self, kvs: list[KV], info: ResourceInfo, *, many: bool = True) -> list[Obj]:
        """decode() of several values, converted in one call where a converter applies."""
        if self.converter is None or not self.converter.applies(info):
            return [decode(kv, info) for kv in kvs]
        raws = []
        for kv in kvs:
            raw = orjson.loads(kv.value)
            raw.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
            raws.append(raw)
        out = await self.converter.convert(info, raws, info.api_version, many=many)
        for obj in out:
            obj.setdefault("apiVersion", info.api_version)
            obj.setdefault("kind", info.kind)
        return out

    async def _encode(self, obj: Obj, info: ResourceInfo) -> bytes:
        """encode(), through the converter where one applies."""
        if self.converter is None or not self.converter.applies(info):
            return encode(obj, info)
        stored = (await self.converter.convert(info, [obj], info.storage_api_version))[0]
        md = {k: v for k, v in (stored.get("metadata") or {}).items() if k != "resourceVersion"}
        return orjson.dumps({**stored, "metadata": md})

    async def _read(self, info: ResourceInfo, ns: str, name: str, *, shared: bool = False) -> tuple[Obj, KV]:
        """The stored object and its KV; ``shared``: possibly the one object every watcher
        and shared reader sees, which the caller must not change."""
        kv = await self.store.get(self._key(info, ns, name))
        if kv is None:
            raise errors.not_found(info.plural, info.group, name)
        if shared:
            return await self._decode_shared(kv, info), kv
        return await self._decode(kv, info), kv

    def _written(self, info: ResourceInfo, obj: Obj, kv: KV) -> Obj | None:
        """The object just encoded into ``kv``, as decode(kv) would give it, without decoding
        it again; also what watchers of that revision get (so nobody may change it after).
        None where the stored form differs from the served one (converted views)."""
        if info.storage_api_version or self._converts(info):
            return None
        md = obj["metadata"]
        # decode() appends resourceVersion last: keep the same key order.
        md.pop("resourceVersion", None)
        md["resourceVersion"] = str(kv.mod_revision)
        obj.setdefault("apiVersion", info.api_version)
        obj.setdefault("kind", info.kind)
        self._remember((kv.key, kv.mod_revision, info.api_version), obj)
        return obj

    async def get(self, info: ResourceInfo, ns: str, name: str) -> Obj:
        """GET one object."""
        return (await self._read(info, ns, name))[0]

    async def list(self, info: ResourceInfo, ns: str, *, predicate: Callable[[Obj], bool] | None = None,
                   limit: int = 0, continue_: str = "", shared: bool = False) -> tuple[list[Obj], int, str, int | None]:
        """LIST → (items, revision, continue token, remainingItemCount); ``shared``: items may be
        the decoded objects watchers share (read-only for the caller), decoded once per revision."""
        prefix = info.store_prefix() + (f"{ns}/" if info.namespaced and ns else "")
        start = ""
        kvs: list[KV]
        if continue_:
            # Later pages come from the first page's snapshot, as etcd serves them.
            rev, start = decode_continue(continue_)
            if rev == LATEST:
                kvs, rev = await self.store.list(prefix)
            else:
                try:
                    kvs = await self.store.list_at(prefix, rev)
                except Compacted:
                    # As upstream: the snapshot is gone, but the client may go on from the
                    # same key at the newest revision, knowing the result is inconsistent.
                    raise errors.gone(
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter, or use the continue "
                        "token in this response to retrieve the remainder of the results. Continuing with "
                        "the provided token results in an inconsistent list - objects that were created, "
                        "modified, or deleted between the time the first chunk was returned and now may "
                        "show up in the list.", continue_token=encode_continue(LATEST, start)) from None
        else:
            kvs, rev = await self.store.list(prefix)
        items: list[Obj] = []
        next_token = ""
        remaining: int | None = None
        converted: list[Obj] | None = None
        if self._converts(info):
            # One conversion for the whole list, as upstream converts a list.
            kvs = [kv for kv in kvs if not start or kv.key >= start]
            converted = await self._decode_many(kvs, info)
        for i, kv in enumerate(kvs):
            if start and kv.key < start:
                continue
            if converted is not None:
                obj = converted[i]
            elif shared:
                obj = self._decoded(kv, info)
            else:
                obj = decode(kv, info)
            if predicate is not None and not predicate(obj):
                continue
            if limit and len(items) >= limit:
                next_token = encode_continue(rev, kv.key)
                if predicate is None:
                    remaining = len([k for k in kvs[i:]])
                break
            items.append(obj)
        return items, rev, next_token, remaining

    # -- create ------------------------------------------------------------------------
    async def create(self, info: ResourceInfo, ns: str, obj: Obj, *, dry_run: bool = False,
                     field_manager: str = "", manager_fn: Callable[[Obj | None, Obj], None] | None = None) -> Obj:
        """POST: default, validate, allocate, store."""
        md = obj.setdefault("metadata", {})
        if info.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                md["name"] = md["generateName"] + meta.rand_suffix()
            else:
                raise errors.invalid(info.kind, info.group, "", [errors.Cause(
                    "FieldValueRequired", "Required value: name or generateName is required", "metadata.name")])
        if info.namespaced and info.kind != "Namespace" and ns:
            await self._check_namespace(info, ns, md["name"])
        md.pop("resourceVersion", None)
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = meta.rfc3339()
        sa = await self._service_account(ns, obj) if info.kind == "Pod" and not info.group else None
        strategies.prepare_for_create(info, obj, service_account=sa)
        for admit in self.admission:
            await admit(info, obj, None)
        if self.mutating and await self._mutate(AdmissionAttributes(
                info, "CREATE", ns if info.namespaced else "", md["name"], obj, None, dry_run=dry_run)):
            for admit in self.admission:
                await admit(info, obj, None)
        strategies.default_and_validate(info, obj, None)
        reservation = await self.allocator.reserve(obj, None, dry_run=dry_run) if info is SERVICES else None
        try:
            return await self._store_new(info, ns, obj, dry_run=dry_run, manager_fn=manager_fn)
        except BaseException:
            if reservation is not None:  # the Service was not written: its values go back
                await self.allocator.release(reservation.ips, reservation.ports)
            raise

    async def _store_new(self, info: ResourceInfo, ns: str, obj: Obj, *, dry_run: bool,
                         manager_fn: Callable[[Obj | None, Obj], None] | None) -> Obj:
        """The end of a create: validating admission, then the store's create."""
        md = obj["metadata"]
        await self._validate_admission(AdmissionAttributes(
            info, "CREATE", ns if info.namespaced else "", md["name"], obj, None, dry_run=dry_run))
        if manager_fn:
            manager_fn(None, obj)
        key = self._key(info, ns, md["name"])
        if dry_run:
            if await self.store.get(key) is not None:
                raise errors.already_exists(info.plural, info.group, md["name"])
            return obj
        # generateName collisions are retried by upstream clients; we just draw again.
        for _ in range(5):
            value = await self._encode(obj, info)
            try:
                kv = await self.store.create(key, value)
                out = self._written(info, obj, kv)
                return out if out is not None else await self._decode(kv, info)
            except KeyExists:
                if not md.get("generateName") or obj is None:
                    raise errors.already_exists(info.plural, info.group, md["name"]) from None
                md["name"] = md["generateName"] + meta.rand_suffix()
                key = self._key(info, ns, md["name"])
        raise errors.already_exists(info.plural, info.group, md["name"])

    async def _mutate(self, attrs: AdmissionAttributes) -> bool:
        """Mutating admission on the defaulted object; whether any hook changed it."""
        assert attrs.obj is not None
        default_for_admission(attrs.info, attrs.obj, attrs.old)
        changed = False
        for hook in self.mutating:
            changed = await hook(attrs) or changed
        return changed

    async def _validate_admission(self, attrs: AdmissionAttributes) -> None:
        for check in self.validating:
            await check(attrs)

    async def _service_account(self, ns: str, pod: Obj) -> Obj | None:
        """The ServiceAccount a new pod names (``default`` when it names none), if it exists."""
        from kubelite.api.resources import SERVICEACCOUNTS
        spec = pod.get("spec") or {}
        name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        if self.lookups is not None:
            return await self.lookups.service_account(ns, name)
        kv = await self.store.get(SERVICEACCOUNTS.store_key(ns, name))
        return decode(kv, SERVICEACCOUNTS) if kv is not None else None

    async def _check_namespace(self, info: ResourceInfo, ns: str, name: str) -> None:
        from kubelite.api.resources import NAMESPACES
        nso: Obj | None
        if self.lookups is not None:
            nso = await self.lookups.namespace(ns)
        else:
            kv = await self.store.get(NAMESPACES.store_key("", ns))
            nso = orjson.loads(kv.value) if kv is not None else None
        if nso is None:
            raise errors.not_found("namespaces", "", ns)
        if nso.get("metadata", {}).get("deletionTimestamp") and info.kind not in ("Event",):
            raise errors.forbidden(
                f'{errors.qualified(info.plural, info.group)} "{name}" is forbidden: unable to create new content in '
                f'namespace {ns} because it is being terminated')

    # -- update / patch ----------------------------------------------------------------
    async def guaranteed_update(self, info: ResourceInfo, ns: str, name: str, mutate: Mutator, *,
                                subresource: str = "", dry_run: bool = False, expected_rv: str = "",
                                manager_fn: Callable[[Obj | None, Obj], None] | None = None,
                                create_if_missing: Callable[[], Obj] | None = None,
                                copy_fn: Mutator = json_copy) -> tuple[Obj, bool]:
        """Read, mutate, validate and compare-and-swap; retried on races.

        A precondition resourceVersion (from the client's object) turns a race into 409
        instead of a retry.  ``copy_fn`` gives ``mutate`` its own copy of the stored object
        (which is shared, read-only): a writer that replaces a few fields may copy only the
        dicts on their way, but mutating webhooks may change anything, so they get a deep copy.
        Returns (object, created)."""
        for _ in range(64):
            try:
                # Shared: old is only read (mutate gets a copy), so a cached decode serves.
                old, kv = await self._read(info, ns, name, shared=True)
            except errors.NotFound:
                if create_if_missing is None:
                    raise
                return await self.create(info, ns, create_if_missing(), dry_run=dry_run,
                                         manager_fn=manager_fn), True
            reservation: Reservation | None = None
            committed = False
            try:
                deep = copy_fn is json_copy or self._may_mutate()
                new = mutate((json_copy if deep else copy_fn)(old))
                new_rv = new.get("metadata", {}).get("resourceVersion") or expected_rv
                if new_rv and new_rv != old["metadata"]["resourceVersion"]:
                    raise errors.conflict(info.plural, info.group, name)
                nmd = new.setdefault("metadata", {})
                if nmd.get("name") and nmd["name"] != name:
                    raise errors.bad_request(
                        f'the name of the object ({nmd["name"]}) does not match the name on the URL ({name})')
                if info.namespaced and nmd.get("namespace") and nmd["namespace"] != ns:
                    raise errors.bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request")
                strategies.prepare_for_update(info, new, old, subresource)
                for admit in self.admission:
                    await admit(info, new, old)
                if not deep and self._may_mutate():  # a webhook appeared meanwhile: it gets its own copy
                    new = json_copy(new)
                if self.mutating and await self._mutate(AdmissionAttributes(
                        info, "UPDATE", ns if info.namespaced else "", name, new, old,
                        subresource=subresource, dry_run=dry_run)):
                    for admit in self.admission:
                        await admit(info, new, old)
                if info is SERVICES and subresource != "status":
                    self.allocator.keep_allocated(new, old)
                strategies.default_and_validate(info, new, old, subresource)
                if info is SERVICES and subresource != "status":
                    reservation = await self.allocator.reserve(new, old, dry_run=dry_run)
                await self._validate_admission(AdmissionAttributes(
                    info, "UPDATE", ns if info.namespaced else "", name, new, old,
                    subresource=subresource, dry_run=dry_run))
                if manager_fn:
                    manager_fn(old, new)
                if self._same(old, new):
                    return old, False  # no-op writes do not move resourceVersion (upstream too)
                if dry_run:
                    return new, False
                if self._finalized(new):
                    kv2 = await self._remove(info, kv, old)
                    if kv2 is None:
                        continue
                    out = await self._decode(KV(kv.key, await self._encode(new, info), kv2.mod_revision,
                                                kv2.create_revision), info)
                    return out, False
                value = await self._encode(new, info)
                try:
                    kv2 = await self.store.update(kv.key, value, kv.mod_revision)
                except RevisionMismatch:
                    # Someone wrote meanwhile: read again. A client's own resourceVersion is then
                    # stale and the check above answers 409; a patch is applied to the new state.
                    continue
                except KeyNotFound:
                    raise errors.not_found(info.plural, info.group, name) from None
                committed = True
                if reservation is not None:
                    await self.allocator.release(reservation.freed_ips, reservation.freed_ports)
                written = self._written(info, new, kv2)
                return (written if written is not None else await self._decode(kv2, info)), False
            finally:
                if reservation is not None and not committed:  # not written: its new values go back
                    await self.allocator.release(reservation.ips, reservation.ports)
        raise errors.conflict(info.plural, info.group, name, "too many concurrent writes")

    def _may_mutate(self) -> bool:
        """Whether mutating admission could change an object beyond its defaults right now."""
        return bool(self.mutating) and (self.mutating_active is None or self.mutating_active())

    @staticmethod
    def _same(old: Obj, new: Obj) -> bool:
        """Whether a write changes nothing. Managers count (a second applier of the same
        values becomes a co-owner, which must be stored); their timestamps alone do not,
        as upstream ignores managedFields changes that only move times."""
        def comparable(obj: Obj) -> Obj:
            md = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
            md["managedFields"] = [{k: v for k, v in e.items() if k != "time"}
                                   for e in obj["metadata"].get("managedFields") or []]
            return dict(obj, metadata=md)
        return comparable(old) == comparable(new)

    @staticmethod
    def _finalized(obj: Obj) -> bool:
        """An object being deleted whose last finalizer is gone is removed by this write."""
        md = obj["metadata"]
        if not md.get("deletionTimestamp") or md.get("finalizers"):
            return False
        if obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
            return False
        # A pod waiting for its kubelet keeps existing until deleted with grace 0.
        return not (obj.get("kind") == "Pod" and md.get("deletionGracePeriodSeconds", 0) != 0)

    # -- delete ------------------------------------------------------------------------
    async def delete(self, info: ResourceInfo, ns: str, name: str, options: Obj, *,
                     dry_run: bool = False) -> tuple[Obj, bool]:
        """DELETE → (object, deleted_now); graceful pods and finalizers keep the object."""
        for _ in range(64):
            obj, kv = await self._read(info, ns, name)
            md = obj["metadata"]
            await self._validate_admission(AdmissionAttributes(
                info, "DELETE", ns if info.namespaced else "", name, None, obj, dry_run=dry_run, options=options))
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise errors.conflict(info.plural, info.group, name,
                                      f"Precondition failed: UID in precondition: {pre['uid']}, "
                                      f"UID in object meta: {md.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
                raise errors.conflict(info.plural, info.group, name,
                                      f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                      f"ResourceVersion in object meta: {md.get('resourceVersion')}")
            new = json_copy(obj)
            nmd = new["metadata"]
            policy = options.get("propagationPolicy")
            if options.get("orphanDependents") is True and not policy:
                policy = "Orphan"
            if info.kind in GC_UNSUPPORTED:
                # The garbage collector ignores these kinds, so an orphan or foreground
                # finalizer would never be removed: upstream ignores the policy for them.
                policy = None
            fins = list(nmd.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in fins:
                fins.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in fins:
                fins.append("orphan")
            if policy == "Background" and nmd.get("deletionTimestamp"):
                # Background on an object already being deleted drops the other policies' finalizers.
                fins = [f for f in fins if f not in ("orphan", "foregroundDeletion")]
            if fins:
                nmd["finalizers"] = fins
            grace = self._grace(info, new, options)
            keep = bool(fins) or grace > 0 or (info.kind == "Namespace")
            if not keep:
                if dry_run:
                    return obj, True
                kv2 = await self._remove(info, kv, obj)
                if kv2 is None:
                    continue
                out = await self._decode(KV(kv.key, kv.value, kv2.mod_revision, kv2.create_revision), info)
                return out, True
            now = meta.now()
            if not nmd.get("deletionTimestamp"):
                nmd["deletionTimestamp"] = meta.rfc3339(_after(now, grace))
                nmd["deletionGracePeriodSeconds"] = grace
            elif info.kind == "Pod" and grace < int(nmd.get("deletionGracePeriodSeconds") or 0):
                # A shorter grace period may replace a longer one, never the reverse.
                nmd["deletionTimestamp"] = meta.rfc3339(_after(now, grace))
                nmd["deletionGracePeriodSeconds"] = grace
            if info.kind == "Namespace":
                new.setdefault("status", {})["phase"] = "Terminating"
            if info.kind == "Pod" and grace == 0 and not fins:
                if dry_run:
                    return new, True
                kv2 = await self._remove(info, kv, obj)
                if kv2 is None:
                    continue
                return await self._decode(KV(kv.key, kv.value, kv2.mod_revision, kv2.create_revision), info), True
            if new == obj:
                return obj, False
            if dry_run:
                return new, False
            value = await self._encode(new, info)
            try:
                kv2 = await self.store.update(kv.key, value, kv.mod_revision)
            except RevisionMismatch:
                continue
            return await self._decode(kv2, info), False
        raise errors.conflict(info.plural, info.group, name, "too many concurrent writes")

    @staticmethod
    def _grace(info: ResourceInfo, obj: Obj, options: Obj) -> int:
        if info.kind != "Pod":
            return 0
        spec, status = obj.get("spec", {}), obj.get("status", {})
        g = options.get("gracePeriodSeconds")
        if g is None:
            g = spec.get("terminationGracePeriodSeconds", 30)
        g = max(int(g), 0)
        # Upstream: unscheduled or finished pods go at once.
        if not spec.get("nodeName") or status.get("phase") in ("Failed", "Succeeded"):
            g = 0
        return g

    # -- watch -------------------------------------------------------------------------
    async def open_watch(self, info: ResourceInfo, ns: str, from_rv: int | None,
                         initial: bool) -> AsyncGenerator[tuple[str, Obj, Obj | None]]:
        """Open a watch now (410 Gone raised here) and return (type, object, previous) events:
        synthetic ADDED first when ``initial``, then changes."""
        prefix = info.store_prefix() + (f"{ns}/" if info.namespaced and ns else "")
        if initial:
            kvs, rev = await self.store.list(prefix)
            w = self.store.watch(prefix, rev)
        else:
            rev = from_rv if from_rv is not None else self.store.revision
            try:
                w = self.store.watch(prefix, rev)
            except Compacted as c:
                raise errors.gone(f"too old resource version: {c.requested} ({c.oldest})") from None
            kvs = []

        shared = self._decode_shared

        async def events() -> AsyncGenerator[tuple[str, Obj, Obj | None]]:
            try:
                for kv in kvs:
                    yield "ADDED", await self._decode(kv, info), None
                if initial:
                    yield "INITIAL_END", {"metadata": {"resourceVersion": str(rev)}}, None
                async for ev in w:
                    obj = await shared(ev.kv, info)
                    if ev.type == "DELETE":
                        yield "DELETED", obj, obj
                    elif ev.prev is None:
                        yield "ADDED", obj, None
                    else:
                        yield "MODIFIED", obj, await shared(ev.prev, info)
            finally:
                w.close()
        return events()

    async def _decode_shared(self, kv: KV, info: ResourceInfo) -> Obj:
        """Decode a watched value once for every watcher (like the API server's watch
        cache): each change reaches many watchers, and watchers never modify objects.
        Keyed by apiVersion too: one stored Event is two objects, one per API."""
        if not self._converts(info):
            return self._decoded(kv, info)
        k = (kv.key, kv.mod_revision, info.api_version)
        obj = self._watch_objects.get(k)
        if obj is None:
            obj = await self._decode(kv, info)
            self._remember(k, obj)
        return obj

    def _decoded(self, kv: KV, info: ResourceInfo) -> Obj:
        """_decode_shared for a resource without a converter (no await needed)."""
        k = (kv.key, kv.mod_revision, info.api_version)
        obj = self._watch_objects.get(k)
        if obj is None:
            obj = decode(kv, info)
            self._remember(k, obj)
        return obj

    def _remember(self, k: tuple[str, int, str], obj: Obj) -> None:
        """Keep a decoded revision for the next shared reader (bounded, oldest out first)."""
        self._watch_objects[k] = obj
        if len(self._watch_objects) > 4096:
            self._watch_objects.popitem(last=False)

    async def compact(self, keep: int = 10_000) -> None:
        """Drop history older than the last ``keep`` revisions (periodic)."""
        target = self.store.revision - keep
        if target > 0:
            await self.store.compact(target)


def _after(now: dt.datetime, seconds: int) -> dt.datetime:
    """now + seconds, held at the last representable time for an absurd grace period (any
    int64 is a valid gracePeriodSeconds)."""
    try:
        return now + dt.timedelta(seconds=seconds)
    except OverflowError:
        return dt.datetime.max.replace(tzinfo=dt.UTC)


async def run_compactor(registry: Registry, stop: asyncio.Event, interval: float = 300.0,
                        keep: int = 10_000) -> None:
    """Compact the store every ``interval`` seconds keeping ``keep`` revisions, like the
    API server's etcd compactor."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            await registry.compact(keep)
