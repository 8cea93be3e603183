"""An in-memory API for driving controllers step by step without a server.

``FakeAPI`` stores objects the way the API server does for the parts controllers rely on
(resourceVersion, uid, generateName, generation on spec changes, main resource vs
/status, merge patches with uid/resourceVersion preconditions) and delivers every write
to its informers at once, like an instant watch, and to open ``watch`` streams.  Errors
are the layered classes of kubelite.client.errors (NotFound, Conflict, AlreadyExists).
``client`` and ``factory`` are typed as the APIClient / SharedInformerFactory protocols of
kubelite/client/protocols.py, so ``mypy tests/fakeapi.py`` holds the fakes to the same
seams as the real client.  ``failures`` injects an error into one verb of one resource
(``("watch", plural)`` makes open and new watch streams raise it).  ``Driver`` runs
controllers' queues to quiescence; ``FakeKubelet`` makes pods Running and Ready.
"""
from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from kubelite.api import meta
from kubelite.api.resources import ResourceInfo
from kubelite.client.errors import AlreadyExists, Conflict, MethodNotAllowed, NotFound
from kubelite.client.protocols import AddFunc, APIClient, DeleteFunc, SharedInformerFactory, UpdateFunc
from kubelite.client.workqueue import WorkQueue

Obj = dict[str, Any]


class FakeClock:
    """A manual clock; every create moves it 1 s so creation order is unambiguous."""

    def __init__(self, start: dt.datetime | None = None):
        self.t = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class FakeInformer:
    """The Informer surface: cache, handlers, list/get."""

    def __init__(self, info: ResourceInfo):
        self.info = info
        self._cache: dict[str, Obj] = {}
        self._handlers: list[tuple[AddFunc | None, UpdateFunc | None, DeleteFunc | None]] = []
        self._indexers: dict[str, Callable[[Obj], tuple[str, ...]]] = {}

    def add_handler(self, on_add: AddFunc | None = None, on_update: UpdateFunc | None = None,
                    on_delete: DeleteFunc | None = None) -> None:
        self._handlers.append((on_add, on_update, on_delete))
        if on_add:
            for o in list(self._cache.values()):
                on_add(o)

    def get(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def get_by_name(self, namespace: str, name: str) -> Obj | None:
        return self._cache.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> list[Obj]:
        return [o for o in self._cache.values() if namespace is None or meta.namespace(o) == namespace]

    def add_index(self, name: str, values: Callable[[Obj], tuple[str, ...]]) -> None:
        self._indexers.setdefault(name, values)

    def by_index(self, name: str, value: str) -> list[Obj]:
        values = self._indexers[name]
        return [o for o in self._cache.values() if value in values(o)]

    def start(self) -> None:
        return None

    async def wait_synced(self) -> None:
        return None

    def deliver(self, typ: str, obj: Obj) -> None:
        k = meta.key(obj)
        obj = copy.deepcopy(obj)
        if typ == "DELETED":
            old = self._cache.pop(k, None)
            for _, _, d in self._handlers:
                if d:
                    d(old or obj)
            return
        old = self._cache.get(k)
        self._cache[k] = obj
        for a, u, _ in self._handlers:
            if old is None and a:
                a(obj)
            elif old is not None and u:
                u(old, obj)


class FakeAPI:
    """Objects by resource plural; writes notify informers and ``observers``."""

    def __init__(self, clock: FakeClock | None = None):
        self.clock = clock or FakeClock()
        self.objects: dict[str, dict[str, Obj]] = {}
        self.informers: dict[str, FakeInformer] = {}
        self.infos: dict[str, ResourceInfo] = {}
        self._rv = itertools.count(1)
        self._uid = itertools.count(1)
        self.log: list[tuple[str, str, Obj]] = []  # (verb, plural, object after the write)
        self.observers: list[Callable[[str, str, Obj], None]] = []
        self.failures: dict[tuple[str, str], Exception] = {}  # (verb, plural) -> error to raise
        self.watchers: dict[str, list[asyncio.Queue[tuple[str, Obj]]]] = {}  # plural -> open watch streams

    # -- the client / factory surface ------------------------------------------------------
    @property
    def client(self) -> APIClient:
        return self

    @property
    def factory(self) -> SharedInformerFactory:
        return self

    def resource(self, info: ResourceInfo) -> FakeResource:
        self.infos[info.plural] = info
        return FakeResource(self, info)

    def informer(self, info: ResourceInfo, *, namespace: str = "", label_selector: str = "",
                 field_selector: str = "") -> FakeInformer:
        self.infos[info.plural] = info
        if info.plural not in self.informers:
            inf = FakeInformer(info)
            for o in self.objects.get(info.plural, {}).values():
                inf.deliver("ADDED", o)
            self.informers[info.plural] = inf
        return self.informers[info.plural]

    def start(self) -> None:
        return None

    async def wait_synced(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    # -- store -----------------------------------------------------------------------------
    def _emit(self, verb: str, plural: str, typ: str, obj: Obj) -> None:
        self.log.append((verb, plural, copy.deepcopy(obj)))
        inf = self.informers.get(plural)
        if inf is not None:
            inf.deliver(typ, obj)
        for q in self.watchers.get(plural, []):
            q.put_nowait((typ, copy.deepcopy(obj)))
        for fn in self.observers:
            fn(verb, plural, obj)

    def _fail(self, verb: str, plural: str) -> None:
        err = self.failures.get((verb, plural))
        if err is not None:
            raise err

    def items(self, plural: str, namespace: str | None = None) -> list[Obj]:
        return [copy.deepcopy(o) for o in self.objects.get(plural, {}).values()
                if namespace is None or meta.namespace(o) == namespace]

    def get_obj(self, plural: str, namespace: str, name: str) -> Obj:
        o = self.objects.get(plural, {}).get(f"{namespace}/{name}")
        if o is None:
            raise NotFound(404, "NotFound", f'{plural} "{name}" not found')
        return copy.deepcopy(o)

    def create(self, info: ResourceInfo, obj: Obj, namespace: str) -> Obj:
        self._fail("create", info.plural)
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if not md.get("name"):
            md["name"] = md["generateName"] + meta.rand_suffix()
        md["namespace"] = namespace or md.get("namespace", "default")
        store = self.objects.setdefault(info.plural, {})
        k = f"{md['namespace']}/{md['name']}"
        if k in store:
            raise AlreadyExists(409, "AlreadyExists", f'{info.plural}.{info.group} "{md["name"]}" already exists')
        self.clock.advance(1)
        md["uid"] = f"uid-{next(self._uid)}"
        md["creationTimestamp"] = meta.rfc3339(self.clock())
        md["resourceVersion"] = str(next(self._rv))
        obj["kind"], obj["apiVersion"] = info.kind, info.api_version
        if info.kind in ("Deployment", "ReplicaSet"):
            md["generation"] = 1
            obj["status"] = {}
        if info.kind == "Pod":
            obj["status"] = {"phase": "Pending"}
        store[k] = obj
        self._emit("create", info.plural, "ADDED", obj)
        return copy.deepcopy(obj)

    def update(self, info: ResourceInfo, obj: Obj, subresource: str = "") -> Obj:
        self._fail("update_status" if subresource == "status" else "update", info.plural)
        md = obj["metadata"]
        k = f"{md['namespace']}/{md['name']}"
        old = self.objects.get(info.plural, {}).get(k)
        if old is None:
            raise NotFound(404, "NotFound", f'{info.plural} "{md["name"]}" not found')
        if md.get("resourceVersion") and md["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", f'Operation cannot be fulfilled on {info.plural} "{md["name"]}": '
                                               "the object has been modified; please apply your changes to the "
                                               "latest version and try again")
        new = copy.deepcopy(obj)
        nmd = new["metadata"]
        for f in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if f in old["metadata"]:
                nmd[f] = old["metadata"][f]
        if subresource == "status":
            new["spec"] = copy.deepcopy(old.get("spec"))
            if info.kind == "Deployment":
                nmd["labels"] = copy.deepcopy(old["metadata"].get("labels"))
        else:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            changed = new.get("spec") != old.get("spec")
            if info.kind == "Deployment":
                changed = changed or meta.annotations_of(new) != meta.annotations_of(old)
            if info.kind in ("Deployment", "ReplicaSet") and changed:
                nmd["generation"] = int(old["metadata"].get("generation") or 1) + 1
        nmd["resourceVersion"] = str(next(self._rv))
        new["kind"], new["apiVersion"] = info.kind, info.api_version
        self.objects[info.plural][k] = new
        self._emit("update_status" if subresource == "status" else "update", info.plural, "MODIFIED", new)
        return copy.deepcopy(new)

    def patch(self, info: ResourceInfo, name: str, body: Obj, namespace: str) -> Obj:
        self._fail("patch", info.plural)
        cur = self.get_obj(info.plural, namespace, name)
        body = copy.deepcopy(body)
        pmd = body.get("metadata") or {}
        # The one strategic-merge directive controllers send: drop values from a metadata list.
        for k in [k for k in pmd if k.startswith("$deleteFromPrimitiveList/")]:
            gone = set(pmd.pop(k))
            lst = k.split("/", 1)[1]
            cur["metadata"][lst] = [v for v in cur["metadata"].get(lst) or [] if v not in gone]
        if pmd.get("uid") and pmd["uid"] != cur["metadata"]["uid"]:
            raise Conflict(409, "Conflict", "Precondition failed: UID in precondition")
        new = merge_patch(cur, body)
        if "resourceVersion" not in pmd:
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        return self.update(info, new)

    def delete(self, info: ResourceInfo, name: str, namespace: str) -> Obj:
        self._fail("delete", info.plural)
        cur = self.get_obj(info.plural, namespace, name)
        del self.objects[info.plural][f"{namespace}/{name}"]
        cur["metadata"]["resourceVersion"] = str(next(self._rv))
        self._emit("delete", info.plural, "DELETED", cur)
        return cur


class FakeResource:
    """The ResourceClient surface over a FakeAPI."""

    def __init__(self, api: FakeAPI, info: ResourceInfo):
        self.api, self.info = api, info

    async def get(self, name: str, namespace: str = "") -> Obj:
        return self.api.get_obj(self.info.plural, namespace, name)

    async def list(self, namespace: str = "", **_: Any) -> Obj:
        return {"items": self.api.items(self.info.plural, namespace or None), "metadata": {}}

    async def create(self, obj: Obj, namespace: str = "", **_: Any) -> Obj:
        return self.api.create(self.info, obj, namespace or obj.get("metadata", {}).get("namespace", ""))

    async def update(self, obj: Obj, *, subresource: str = "", **_: Any) -> Obj:
        return self.api.update(self.info, obj, subresource)

    async def update_status(self, obj: Obj) -> Obj:
        return self.api.update(self.info, obj, "status")

    async def patch(self, name: str, patch: Any, namespace: str = "", **_: Any) -> Obj:
        return self.api.patch(self.info, name, patch, namespace)

    async def delete(self, name: str, namespace: str = "", **_: Any) -> Obj:
        return self.api.delete(self.info, name, namespace)

    async def delete_collection(self, namespace: str = "", **_: Any) -> Obj:
        for o in self.api.items(self.info.plural, namespace or None):
            self.api.delete(self.info, meta.name(o), meta.namespace(o))
        return {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    async def create_subresource(self, name: str, namespace: str, subresource: str, body: Obj) -> Obj:
        raise MethodNotAllowed(405, "MethodNotAllowed", f"the fake API serves no {subresource} subresource")

    async def get_subresource(self, name: str, namespace: str, subresource: str) -> Obj:
        raise MethodNotAllowed(405, "MethodNotAllowed", f"the fake API serves no {subresource} subresource")

    async def watch(self, namespace: str = "", **_: Any) -> AsyncIterator[tuple[str, Obj]]:
        """Every later write of this resource, as watch events (no history: starts now)."""
        self.api._fail("watch", self.info.plural)
        q: asyncio.Queue[tuple[str, Obj]] = asyncio.Queue()
        streams = self.api.watchers.setdefault(self.info.plural, [])
        streams.append(q)
        try:
            while True:
                typ, obj = await q.get()
                self.api._fail("watch", self.info.plural)
                if not namespace or meta.namespace(obj) == namespace:
                    yield typ, obj
        finally:
            streams.remove(q)


class RecordingRecorder:
    """EventRecorder stand-in: keeps (object name, type, reason, message)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def event(self, obj: Obj, type_: str, reason: str, message: str, **_: Any) -> None:
        self.events.append((meta.name(obj), type_, reason, message))

    def messages(self, reason: str) -> list[str]:
        return [m for _, _, r, m in self.events if r == reason]


class Syncable(Protocol):
    """What the Driver needs of a controller: its queue and its sync."""

    queue: WorkQueue

    def sync(self, key: str) -> Awaitable[None]: ...


class Driver:
    """Runs controllers' work queues until nothing is left to do."""

    def __init__(self, *controllers: Syncable, max_rounds: int = 10_000):
        self.controllers = controllers
        self.max_rounds = max_rounds
        self.errors: list[tuple[str, Exception]] = []

    async def settle(self) -> None:
        retries: dict[str, int] = {}
        for _ in range(self.max_rounds):
            busy = False
            for c in self.controllers:
                if len(c.queue) == 0:
                    continue
                busy = True
                key = await c.queue.get()
                assert key is not None  # the Driver never shuts a queue down
                try:
                    await c.sync(key)
                except Exception as e:
                    self.errors.append((key, e))
                    n = retries.get(key, 0)
                    retries[key] = n + 1
                    if n < 20:
                        c.queue.add(key)
                finally:
                    c.queue.done(key)
            if not busy:
                return
        raise AssertionError("controllers did not settle")


class FakeKubelet:
    """Makes pods Running/Ready on node-1 when told, oldest first."""

    def __init__(self, api: FakeAPI, pods_info: ResourceInfo):
        self.api, self.info = api, pods_info

    def pending(self, namespace: str = "default", pred: Callable[[Obj], bool] | None = None) -> list[Obj]:
        pods = [p for p in self.api.items(self.info.plural, namespace)
                if not _ready(p) and not meta.is_deleting(p) and (pred is None or pred(p))]
        return sorted(pods, key=lambda p: (p["metadata"]["creationTimestamp"], meta.name(p)))

    def make_ready(self, n: int, namespace: str = "default", pred: Callable[[Obj], bool] | None = None) -> int:
        done = 0
        for p in self.pending(namespace, pred)[:n]:
            t = meta.rfc3339(self.api.clock())
            p["spec"]["nodeName"] = "node-1"  # the scheduler's binding
            p = self.api.update(self.info, p)
            p["status"] = {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": t}]}
            self.api.update(self.info, p, "status")
            done += 1
        return done


def _ready(p: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (p.get("status") or {}).get("conditions") or [])


async def until(pred: Callable[[], object], *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll a condition until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
