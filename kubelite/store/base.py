"""The store interface the API server uses; backends: SQLite (embedded) and etcd.

Semantics follow etcd v3 as the API server uses it:
- every write gets the next global revision; an object's resourceVersion is the
  revision of its last write (``mod_revision``);
- ``update``/``delete`` are compare-and-swap on ``mod_revision``;
- ``watch(prefix, from_revision)`` delivers, in revision order, every change with a
  revision greater than ``from_revision``; a revision older than the retained history
  raises ``Compacted`` (the API server answers 410 Expired).
Values are opaque bytes (the API server stores JSON without resourceVersion).
"""
from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KV:
    """One stored value and its revisions."""

    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """A change: PUT (create or update) or DELETE; ``kv`` is the new state, or for a
    DELETE the last state with ``mod_revision`` set to the deletion's revision."""

    type: str
    kv: KV
    prev: KV | None = None

    @property
    def revision(self) -> int:
        """The revision at which this change happened."""
        return self.kv.mod_revision


class StoreError(Exception):
    """Base of store failures."""


class KeyExists(StoreError):
    """create() of a key that exists."""


class KeyNotFound(StoreError):
    """update()/delete() of a key that does not exist."""


class RevisionMismatch(StoreError):
    """Compare-and-swap failed: the key changed since the caller read it."""

    def __init__(self, current: KV | None):
        super().__init__("revision mismatch")
        self.current = current


class Compacted(StoreError):
    """The requested revision is older than the retained history."""

    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Watch(abc.ABC):
    """An open watch; iterate for events, ``close()`` to stop."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[Event]: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class Store(abc.ABC):
    """An MVCC key-value store with a global revision."""

    @property
    @abc.abstractmethod
    def revision(self) -> int:
        """The current (latest) revision."""

    @abc.abstractmethod
    async def get(self, key: str) -> KV | None: ...

    @abc.abstractmethod
    async def list(self, prefix: str) -> tuple[list[KV], int]:
        """Every live key under prefix (sorted by key) and the revision of the snapshot."""

    async def list_at(self, prefix: str, revision: int) -> list[KV]:
        """Every key under prefix as it was at ``revision`` (raises Compacted when that
        history is gone).  Backends that keep no history can only serve the present."""
        items, rev = await self.list(prefix)
        if revision < rev:
            raise Compacted(revision, rev)
        return items

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> KV: ...

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_revision: int | None) -> KV:
        """Replace a value; ``expected_revision`` None means unconditional."""

    @abc.abstractmethod
    async def delete(self, key: str, expected_revision: int | None) -> KV:
        """Delete a key; returns the deleted KV with the deletion's revision."""

    @abc.abstractmethod
    def watch(self, prefix: str, from_revision: int) -> Watch:
        """Changes under prefix with revision > from_revision (raises Compacted)."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history at and below ``revision``."""

    @abc.abstractmethod
    async def close(self) -> None: ...
