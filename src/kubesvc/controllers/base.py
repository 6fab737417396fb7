"""A controller is a key queue and a reconciler: handlers enqueue keys, workers reconcile them
from the informer caches (level-triggered), failures requeue with back-off."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Any

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import Resource
from kubesvc.client.informer import Informer, InformerFactory, key_of

log = logging.getLogger(__name__)

Obj = dict[str, Any]

MIN_BACKOFF = 0.05
MAX_BACKOFF = 30.0


class Controller(ABC):
    name = "controller"

    def __init__(self, informers: InformerFactory) -> None:
        self.client = informers.client
        self.factory = informers
        self.informers: list[Informer] = []
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._failures: dict[str, int] = {}

    def informer(self, res: Resource) -> Informer:
        """The shared informer for res; the controller starts once all of them synced."""
        informer = self.factory.get(res)
        self.informers.append(informer)
        return informer

    def enqueue(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def enqueue_obj(self, obj: Obj) -> None:
        self.enqueue(key_of(obj))

    def enqueue_after(self, key: str, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.enqueue, key)

    @abstractmethod
    async def reconcile(self, key: str) -> None:
        """Bring the world in line with the cached state of `key`."""

    async def run(self, workers: int = 1) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self.informers))
        await asyncio.gather(*(self._worker() for _ in range(workers)))

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self.reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                count = self._failures.get(key, 0) + 1
                self._failures[key] = count
                delay = min(MIN_BACKOFF * 2 ** count, MAX_BACKOFF)
                level = logging.DEBUG if isinstance(exc, ApiError) and exc.code == 409 \
                    else logging.WARNING
                log.log(level, "%s: reconciling %s failed (%s); retrying in %.2fs",
                        self.name, key, exc, delay)
                self.enqueue_after(key, delay)


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return namespace or None, name
