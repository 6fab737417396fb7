"""Informers: list, then watch from that resourceVersion, keep a local cache, call handlers.

A `410 Gone` (or any broken stream) leads to a fresh list, and the cache is reconciled
against it so handlers still see every add, update and delete exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import Resource
from kubesvc.client.rest import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]

RETRY_DELAY = 1.0


def key_of(obj: Obj) -> str:
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else meta["name"]


class _Relist(Exception):
    pass


class Informer:
    def __init__(self, client: Client, res: Resource, namespace: str | None = None, *,
                 label_selector: str = "", field_selector: str = "") -> None:
        self.client = client
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self._on_add: list[AddHandler] = []
        self._on_update: list[UpdateHandler] = []
        self._on_delete: list[DeleteHandler] = []

    def add_handlers(self, on_add: AddHandler | None = None,
                     on_update: UpdateHandler | None = None,
                     on_delete: DeleteHandler | None = None) -> None:
        """Register handlers; a handler added late first sees the cached objects as adds,
        as client-go's AddEventHandler does, so shared informers can be joined any time."""
        if on_add:
            self._on_add.append(on_add)
            for obj in list(self.cache.values()):
                self._call(on_add, obj)
        if on_update:
            self._on_update.append(on_update)
        if on_delete:
            self._on_delete.append(on_delete)

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        return self.cache.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return list(self.cache.values())
        return [o for o in self.cache.values() if o["metadata"].get("namespace") == namespace]

    async def run(self) -> None:
        while True:
            try:
                rv = await self._relist()
                self.synced.set()
                while True:
                    rv = await self._watch(rv)
            except asyncio.CancelledError:
                raise
            except _Relist:
                continue
            except Exception as exc:  # the server restarting or unreachable: try again
                log.debug("informer %s: %s", self.res.plural, exc)
                await asyncio.sleep(RETRY_DELAY)

    async def _relist(self) -> str:
        items, rv = await self.client.list(self.res, self.namespace,
                                           label_selector=self.label_selector,
                                           field_selector=self.field_selector)
        fresh = {key_of(o): o for o in items}
        for key, old in list(self.cache.items()):
            if key not in fresh:
                del self.cache[key]
                self._fire_delete(old)
        for key, obj in fresh.items():
            self._apply(key, obj)
        return rv

    def _apply(self, key: str, obj: Obj) -> None:
        old = self.cache.get(key)
        self.cache[key] = obj
        if old is None:
            for h in self._on_add:
                self._call(h, obj)
        elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
            for u in self._on_update:
                self._call(u, old, obj)

    def _fire_delete(self, obj: Obj) -> None:
        for h in self._on_delete:
            self._call(h, obj)

    @staticmethod
    def _call(handler: Callable[..., None], *args: Obj) -> None:
        try:
            handler(*args)
        except Exception:  # one faulty handler must not stop the informer
            log.exception("informer handler failed")

    async def _watch(self, rv: str) -> str:
        async for kind, obj in self.client.watch(
                self.res, self.namespace, resource_version=rv,
                label_selector=self.label_selector, field_selector=self.field_selector):
            if kind == "ERROR":
                raise _Relist() if obj.get("code") == 410 else ApiError(
                    obj.get("code", 500), obj.get("reason", ""), obj.get("message", ""))
            rv = obj["metadata"].get("resourceVersion", rv)
            if kind == "BOOKMARK":
                continue
            key = key_of(obj)
            if kind == "DELETED":
                old = self.cache.pop(key, None)
                if old is not None:
                    self._fire_delete(obj)
            else:
                self._apply(key, obj)
        return rv


class InformerFactory:
    """One shared informer per resource type, so components watching the same kind share one
    watch and one cache."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[str, Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def get(self, res: Resource) -> Informer:
        informer = self._informers.get(res.api_version + "/" + res.plural)
        if informer is None:
            informer = Informer(self.client, res)
            self._informers[res.api_version + "/" + res.plural] = informer
            if self._tasks:  # already started: a late informer starts at once
                self._tasks.append(asyncio.create_task(informer.run()))
        return informer

    def start(self) -> None:
        for informer in self._informers.values():
            self._tasks.append(asyncio.create_task(informer.run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
