"""The store interface the API server uses (a Protocol); the backend is SQLite (embedded).

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

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


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


class StoreUnavailable(StoreError):
    """The backend cannot be reached (an etcd down or refusing us): the request fails, the server does not."""


class Compacted(StoreError):
    """The requested revision is older than the retained history."""

    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Watch(Protocol):
    """An open watch; iterate for events, ``close()`` to stop."""

    def __aiter__(self) -> AsyncIterator[Event]:
        """The changes, in revision order, until the watch is closed."""
        ...

    def close(self) -> None:
        """Stop the watch; iteration ends after the events already queued."""
        ...


class Store(Protocol):
    """An MVCC key-value store with a global revision: the API server's only view of storage."""

    @property
    def revision(self) -> int:
        """The current (latest) revision."""
        ...

    async def get(self, key: str) -> KV | None:
        """The live value of a key, or None."""
        ...

    async def list(self, prefix: str) -> tuple[builtins.list[KV], int]:
        """Every live key under prefix (sorted by key) and the revision of the snapshot."""
        ...

    async def list_at(self, prefix: str, revision: int) -> builtins.list[KV]:
        """Every key under prefix as it was at ``revision`` (raises Compacted when that
        history is gone)."""
        ...

    async def create(self, key: str, value: bytes) -> KV:
        """Store a new key (raises KeyExists)."""
        ...

    async def update(self, key: str, value: bytes, expected_revision: int | None) -> KV:
        """Replace a value; ``expected_revision`` None means unconditional."""
        ...

    async def delete(self, key: str, expected_revision: int | None) -> KV:
        """Delete a key; returns the deleted KV with the deletion's revision."""
        ...

    def watch(self, prefix: str, from_revision: int) -> Watch:
        """Changes under prefix with revision > from_revision (raises Compacted)."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history at and below ``revision``."""
        ...

    async def close(self) -> None:
        """Close every watch and release the backend."""
        ...
