"""The storage interface: get, list, create, update, delete and watch over a global revision.

Every write gets the next revision, which becomes the object's `metadata.resourceVersion`; a
watch replays the event log from a revision and then follows live writes, as etcd does. A
backend implements the primitives; the watch fan-out is shared.
"""

from __future__ import annotations

import asyncio
import copy
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


class StoreError(Exception):
    pass


class KeyExists(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class RevisionConflict(StoreError):
    pass


class Compacted(StoreError):
    """The requested revision is older than the retained event log (HTTP 410 Gone)."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class Event:
    type: str  # ADDED, MODIFIED or DELETED
    key: str
    value: Obj  # the object as of this revision (for DELETED: its last state)
    rev: int
    # The previous state for live MODIFIED events, so a filtered watch can tell an object
    # that stopped matching (sent as DELETED) from one that never did.
    prev: Obj | None = None


Events = list[Event]

# A watcher that falls this far behind is cut off; its client re-lists, as with etcd.
MAX_PENDING_EVENTS = 50_000


class Watch:
    """Events under a key prefix, in revision order, until closed."""

    def __init__(self, store: Store, prefix: str) -> None:
        self._store = store
        self.prefix = prefix
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.closed = False

    def push(self, event: Event) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= MAX_PENDING_EVENTS:
            self.close()
            return
        self._queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._store._watchers.discard(self)
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event


def set_revision(value: Obj, rev: int) -> Obj:
    out = copy.deepcopy(value)
    out.setdefault("metadata", {})["resourceVersion"] = str(rev)
    return out


class Store(ABC):
    def __init__(self) -> None:
        self._watchers: set[Watch] = set()

    @property
    @abstractmethod
    def revision(self) -> int:
        """The revision of the latest write."""

    @abstractmethod
    async def get(self, key: str) -> Obj | None: ...

    @abstractmethod
    async def list(self, prefix: str) -> tuple[list[Obj], int]:
        """Objects under prefix, sorted by key, and the revision they were read at."""

    @abstractmethod
    async def create(self, key: str, value: Obj) -> Obj: ...

    @abstractmethod
    async def update(self, key: str, value: Obj, expected_rev: int | None = None) -> Obj:
        """Replace; with expected_rev, only if the stored object is still at that revision."""

    @abstractmethod
    async def delete(self, key: str, expected_rev: int | None = None) -> Obj:
        """Remove and return the last state, at the revision of the deletion."""

    @abstractmethod
    def _history(self, prefix: str, after: int) -> Events:
        """Logged events under prefix with revision > after; raises Compacted."""

    @abstractmethod
    async def close(self) -> None: ...

    def watch(self, prefix: str, since: int) -> Watch:
        """Events under prefix after revision `since` (0: only new ones)."""
        w = Watch(self, prefix)
        if since:
            for event in self._history(prefix, since):
                w.push(event)
        self._watchers.add(w)
        return w

    def _notify(self, event: Event) -> None:
        for w in list(self._watchers):
            if event.key.startswith(w.prefix):
                w.push(event)

    def close_watches(self) -> None:
        for w in list(self._watchers):
            w.close()
