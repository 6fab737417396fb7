"""The garbage collector: ownerReferences decide what goes when an owner goes.

Background: dependents whose owners are all gone are deleted. Foreground: an owner with the
`foregroundDeletion` finalizer stays until its dependents are gone. Orphan: the `orphan`
finalizer makes dependents drop their reference to the owner, then the owner goes.
"""

from __future__ import annotations

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import Resource, of
from kubesvc.client.informer import Informer, InformerFactory, key_of
from kubesvc.controllers.base import Controller, Obj

# The kinds that own or are owned by something in kubesvc.
WATCHED = (of("apps/v1", "Deployment"), of("apps/v1", "ReplicaSet"), of("v1", "Pod"),
           of("v1", "Service"), of("discovery.k8s.io/v1", "EndpointSlice"),
           of("v1", "Endpoints"), of("v1", "ConfigMap"), of("v1", "Secret"))
RECHECK_DELAY = 0.5


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, informers: InformerFactory) -> None:
        super().__init__(informers)
        self.by_kind: dict[str, tuple[Resource, Informer]] = {}
        for res in WATCHED:
            inf = self.informer(res)
            self.by_kind[res.kind] = (res, inf)
            inf.add_handlers(self._changed, lambda _o, n: self._changed(n), self._deleted)

    def _changed(self, obj: Obj) -> None:
        self.enqueue(f"{obj['kind']}|{key_of(obj)}")

    def _deleted(self, obj: Obj) -> None:
        uid = obj["metadata"]["uid"]
        for dependent_key in self._dependents_keys(uid):
            self.enqueue(dependent_key)

    def _dependents(self, uid: str) -> list[tuple[Resource, Obj]]:
        out = []
        for res, inf in self.by_kind.values():
            for obj in inf.cache.values():
                if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or []):
                    out.append((res, obj))
        return out

    def _dependents_keys(self, uid: str) -> list[str]:
        return [f"{res.kind}|{key_of(obj)}" for res, obj in self._dependents(uid)]

    def _owner_exists(self, ref: Obj, namespace: str | None) -> bool:
        entry = self.by_kind.get(ref.get("kind", ""))
        if entry is None:
            return True  # a kind we don't watch: never collect on its account
        res, inf = entry
        owner = inf.get(ref.get("name", ""), namespace if res.namespaced else None)
        return owner is not None and owner["metadata"]["uid"] == ref.get("uid")

    async def reconcile(self, key: str) -> None:
        kind, _, obj_key = key.partition("|")
        res, inf = self.by_kind[kind]
        obj = inf.cache.get(obj_key)
        if obj is None:
            return
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and "orphan" in finalizers:
            await self._orphan(res, obj)
        elif meta.get("deletionTimestamp") and "foregroundDeletion" in finalizers:
            await self._foreground(res, obj)
        refs = meta.get("ownerReferences") or []
        if refs and not meta.get("deletionTimestamp") and not any(
                self._owner_exists(r, meta.get("namespace")) for r in refs):
            await self._delete(res, obj, "Background")

    async def _delete(self, res: Resource, obj: Obj, propagation: str) -> None:
        meta = obj["metadata"]
        try:
            await self.client.delete(res, meta["name"], meta.get("namespace"),
                                     propagation=propagation,
                                     preconditions={"uid": meta["uid"]})
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    async def _foreground(self, res: Resource, obj: Obj) -> None:
        dependents = self._dependents(obj["metadata"]["uid"])
        if dependents:
            for dep_res, dep in dependents:
                if not dep["metadata"].get("deletionTimestamp"):
                    await self._delete(dep_res, dep, "Foreground")
            self.enqueue_after(f"{res.kind}|{key_of(obj)}", RECHECK_DELAY)
            return
        await self._drop_finalizer(res, obj, "foregroundDeletion")

    async def _orphan(self, res: Resource, obj: Obj) -> None:
        uid = obj["metadata"]["uid"]
        for dep_res, dep in self._dependents(uid):
            refs = [r for r in dep["metadata"].get("ownerReferences") or []
                    if r.get("uid") != uid]
            meta = dep["metadata"]
            try:
                await self.client.patch(dep_res, meta["name"], {"metadata": {
                    "ownerReferences": refs or None, "resourceVersion": meta["resourceVersion"]}},
                    meta.get("namespace"))
            except ApiError as err:
                if err.code != 404:
                    raise
        await self._drop_finalizer(res, obj, "orphan")

    async def _drop_finalizer(self, res: Resource, obj: Obj, finalizer: str) -> None:
        meta = obj["metadata"]
        remaining = [f for f in meta.get("finalizers") or [] if f != finalizer]
        try:
            await self.client.patch(res, meta["name"], {"metadata": {
                "finalizers": remaining or None, "resourceVersion": meta["resourceVersion"]}},
                meta.get("namespace"))
        except ApiError as err:
            if err.code != 404:
                raise
