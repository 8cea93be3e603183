"""The seams between the client library and the components that use it.

Controllers, the scheduler, the proxy and the node agent talk to the cluster through
three collaborators, and each is described here by what its users call, not by the
class that happens to implement it (client-go does the same with its Interface types):

- ``APIClient`` → ``resource(info)`` → a ``ResourceAPI``: CRUD, patch and watch for one
  resource kind (``rest.Client`` / ``rest.ResourceClient``);
- ``SharedInformerFactory`` → ``informer(info)`` → a ``SharedInformer``: a cached,
  watched view of one resource whose handlers only enqueue keys (``informer.py``);
- ``Recorder``: fire-and-forget Events (``events.EventRecorder``).

tests/fakeapi.py implements the same three, so every controller runs unchanged against
the in-memory fake and the real server, and mypy holds both to this one description.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from kubelite.api.resources import ResourceInfo

Obj = dict[str, Any]

AddFunc = Callable[[Obj], None]
UpdateFunc = Callable[[Obj, Obj], None]
DeleteFunc = Callable[[Obj], None]


class ResourceAPI(Protocol):
    """CRUD, patch and watch for one resource kind (a client-go typed client)."""

    async def get(self, name: str, namespace: str = "") -> Obj:
        """GET one object; raises NotFound when it does not exist."""

    async def list(self, namespace: str = "", *, label_selector: str = "", field_selector: str = "",
                   resource_version: str | None = None, limit: int | None = None,
                   continue_: str | None = None) -> Obj:
        """LIST objects (every namespace when ``namespace`` is empty)."""

    async def create(self, obj: Obj, namespace: str = "", *, field_manager: str = "",
                     dry_run: bool = False) -> Obj:
        """POST a new object; raises AlreadyExists for a taken name."""

    async def update(self, obj: Obj, *, subresource: str = "", field_manager: str = "") -> Obj:
        """PUT an object (or a subresource of it); raises Conflict on a stale resourceVersion."""

    async def update_status(self, obj: Obj) -> Obj:
        """PUT the /status subresource."""

    async def patch(self, name: str, patch: Any, namespace: str = "", *, patch_type: str = "merge",
                    subresource: str = "", field_manager: str = "", force: bool | None = None) -> Obj:
        """PATCH an object; ``patch_type`` is json, merge, strategic or apply."""

    async def delete(self, name: str, namespace: str = "", *, grace_period_seconds: int | None = None,
                     propagation_policy: str | None = None, preconditions: Obj | None = None) -> Obj:
        """DELETE one object with DeleteOptions."""

    async def delete_collection(self, namespace: str = "", *, propagation_policy: str | None = None) -> Obj:
        """DELETE every object of the collection (of one namespace)."""

    async def create_subresource(self, name: str, namespace: str, subresource: str, body: Obj) -> Obj:
        """POST to a subresource such as binding or eviction."""

    async def get_subresource(self, name: str, namespace: str, subresource: str) -> Obj:
        """GET a subresource such as scale; raises NotFound when the object does not exist."""

    def watch(self, namespace: str = "", *, resource_version: str | None = None, label_selector: str = "",
              field_selector: str = "", timeout_seconds: int | None = None,
              allow_bookmarks: bool = True) -> AsyncIterator[tuple[str, Obj]]:
        """Yield (type, object) watch events until the stream ends; ERROR events raise."""


class APIClient(Protocol):
    """A connection to one API server, handing out per-resource clients."""

    def resource(self, info: ResourceInfo) -> ResourceAPI:
        """The typed client of one resource kind."""


class Lister(Protocol):
    """Read access to an informer's cache (client-go's Lister)."""

    def get(self, key: str) -> Obj | None:
        """The cached object for a ``namespace/name`` (or ``name``) key."""

    def get_by_name(self, namespace: str, name: str) -> Obj | None:
        """The cached object by namespace and name."""

    def list(self, namespace: str | None = None) -> list[Obj]:
        """Cached objects, of one namespace or of all."""


class SharedInformer(Lister, Protocol):
    """A cache kept current by list+watch that calls handlers on every change."""

    def add_handler(self, on_add: AddFunc | None = None, on_update: UpdateFunc | None = None,
                    on_delete: DeleteFunc | None = None) -> None:
        """Register handlers; objects already cached are replayed as adds."""

    def add_index(self, name: str, values: Callable[[Obj], tuple[str, ...]]) -> None:
        """Keep a named index of the cache by ``values(obj)`` (idempotent per name)."""

    def by_index(self, name: str, value: str) -> list[Obj]:
        """Cached objects filed under ``value`` in index ``name``."""

    def start(self) -> None:
        """Start listing and watching (idempotent)."""

    async def wait_synced(self) -> None:
        """Wait until the first list is in the cache."""


class SharedInformerFactory(Protocol):
    """One shared informer per resource (and scope) for every user in a process."""

    def informer(self, info: ResourceInfo, *, namespace: str = "", label_selector: str = "",
                 field_selector: str = "") -> SharedInformer:
        """The shared informer of a resource, created on first request."""

    def start(self) -> None:
        """Start every informer created so far."""

    async def wait_synced(self) -> None:
        """Wait until every informer has listed once."""

    async def stop(self) -> None:
        """Stop every informer."""


class Recorder(Protocol):
    """Records core/v1 Events about objects; never fails the caller."""

    def event(self, obj: Obj, type_: str, reason: str, message: str, *, field_path: str = "") -> None:
        """Record one event (returns at once)."""
