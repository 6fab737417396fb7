"""Namespace lifecycle: removing a terminating namespace's content, then the namespace; and
the `default` ServiceAccount every namespace has."""

from __future__ import annotations

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of, stored_resources
from kubesvc.client.informer import InformerFactory
from kubesvc.controllers.base import Controller, Obj

NAMESPACES = of("v1", "Namespace")
SERVICE_ACCOUNTS = of("v1", "ServiceAccount")
RECHECK_DELAY = 0.5


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, informers: InformerFactory) -> None:
        super().__init__(informers)
        self.namespaces = self.informer(NAMESPACES)
        self.namespaces.add_handlers(self.enqueue_obj, lambda _o, n: self.enqueue_obj(n))

    async def reconcile(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None:
            return
        if (ns.get("status") or {}).get("phase") == "Terminating":
            await self._drain(key, ns)
        else:
            await self._ensure_service_account(key)

    async def _ensure_service_account(self, namespace: str) -> None:
        try:
            await self.client.create(SERVICE_ACCOUNTS, {"metadata": {"name": "default"}},
                                     namespace)
        except ApiError as err:
            if err.code not in (409, 403):
                raise

    async def _drain(self, name: str, ns: Obj) -> None:
        remaining = 0
        for res in stored_resources():
            if not res.namespaced:
                continue
            items, _ = await self.client.list(res, name)
            remaining += len(items)
            for obj in items:
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(res, obj["metadata"]["name"], name,
                                             propagation="Background")
                except ApiError as err:
                    if err.code != 404:
                        raise
        if remaining:
            self.enqueue_after(name, RECHECK_DELAY)
            return
        spec = dict(ns.get("spec") or {})
        spec["finalizers"] = []
        try:
            await self.client.patch(NAMESPACES, name, {"spec": spec})
        except ApiError as err:
            if err.code != 404:
                raise
