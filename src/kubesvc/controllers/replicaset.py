"""The ReplicaSet controller: keeps `replicas` active pods matching the selector, adopting
orphans and releasing pods that no longer match, and reports status."""

from __future__ import annotations

import time
from typing import Any

from kubesvc.api import selectors
from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client.informer import InformerFactory, key_of
from kubesvc.controllers import pods as podutil
from kubesvc.controllers.base import Controller, Obj

REPLICASETS = of("apps/v1", "ReplicaSet")
PODS = of("v1", "Pod")
# Creations and deletions not yet seen in the cache are trusted for this long, so a slow
# watch does not make the controller create a pod twice.
EXPECTATION_TTL = 30.0
BURST = 500


class ReplicaSetController(Controller):
    name = "replicaset"

    def __init__(self, informers: InformerFactory) -> None:
        super().__init__(informers)
        self.replicasets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS)
        self.replicasets.add_handlers(self.enqueue_obj, lambda _o, n: self.enqueue_obj(n),
                                      self.enqueue_obj)
        self.pods.add_handlers(self._pod_added, self._pod_updated, self._pod_deleted)
        # rs key -> (pending creations, uids pending deletion, when set)
        self._expect: dict[str, tuple[int, set[str], float]] = {}

    def _owners(self, pod: Obj) -> list[str]:
        ref = podutil.controller_of(pod)
        ns = pod["metadata"].get("namespace")
        if ref is not None:
            return [f"{ns}/{ref['name']}"] if ref.get("kind") == "ReplicaSet" else []
        labels = pod["metadata"].get("labels") or {}
        return [key_of(rs) for rs in self.replicasets.list(ns) if selectors.matches(
            selectors.from_label_selector(rs["spec"].get("selector")), labels)]

    def _pod_added(self, pod: Obj) -> None:
        for key in self._owners(pod):
            adds, dels, when = self._expect.get(key, (0, set(), 0.0))
            if adds:
                self._expect[key] = (adds - 1, dels, when)
            self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        for key in set(self._owners(old)) | set(self._owners(new)):
            self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        for key in self._owners(pod):
            entry = self._expect.get(key)
            if entry:
                entry[1].discard(pod["metadata"]["uid"])
            self.enqueue(key)

    def _satisfied(self, key: str) -> bool:
        entry = self._expect.get(key)
        if entry is None:
            return True
        adds, dels, when = entry
        if (adds <= 0 and not dels) or time.monotonic() - when > EXPECTATION_TTL:
            del self._expect[key]
            return True
        return False

    async def reconcile(self, key: str) -> None:
        rs = self.replicasets.cache.get(key)
        if rs is None:
            self._expect.pop(key, None)
            return
        ns = rs["metadata"]["namespace"]
        selector = selectors.from_label_selector(rs["spec"].get("selector"))
        owned = await self._claim(rs, selector)
        active = [p for p in owned if podutil.is_active(p)]
        if self._satisfied(key) and not rs["metadata"].get("deletionTimestamp"):
            diff = len(active) - int(rs["spec"].get("replicas", 1))
            if diff < 0:
                await self._create(rs, key, min(-diff, BURST))
            elif diff > 0:
                await self._delete(key, ns, _deletion_order(active)[:diff])
        await self._update_status(rs, owned)

    async def _claim(self, rs: Obj, selector: selectors.Selector) -> list[Obj]:
        """Pods this ReplicaSet controls, after adopting matching orphans and releasing
        pods whose labels no longer match."""
        uid = rs["metadata"]["uid"]
        owned = []
        for pod in self.pods.list(rs["metadata"]["namespace"]):
            ref = podutil.controller_of(pod)
            labels = pod["metadata"].get("labels") or {}
            match = selectors.matches(selector, labels)
            if ref is not None and ref.get("uid") == uid:
                if match:
                    owned.append(pod)
                else:
                    await self._set_owners(pod, [r for r in pod["metadata"].get(
                        "ownerReferences", []) if r.get("uid") != uid])
            elif ref is None and match and not pod["metadata"].get("deletionTimestamp") \
                    and not rs["metadata"].get("deletionTimestamp"):
                refs = [*pod["metadata"].get("ownerReferences", []), podutil.owner_ref(rs)]
                if await self._set_owners(pod, refs):
                    owned.append(pod)
        return owned

    async def _set_owners(self, pod: Obj, refs: list[Obj]) -> bool:
        meta = pod["metadata"]
        try:
            await self.client.patch(PODS, meta["name"], {"metadata": {
                "ownerReferences": refs or None, "resourceVersion": meta["resourceVersion"]}},
                meta["namespace"])
        except ApiError as err:
            if err.code in (404, 409):
                return False
            raise
        return True

    async def _create(self, rs: Obj, key: str, count: int) -> None:
        template = podutil.template_copy(rs["spec"]["template"])
        meta = template.setdefault("metadata", {})
        meta["generateName"] = rs["metadata"]["name"] + "-"
        meta["ownerReferences"] = [podutil.owner_ref(rs)]
        meta.pop("name", None)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
               "spec": template.get("spec", {})}
        self._expect[key] = (count, set(), time.monotonic())
        for _ in range(count):
            try:
                await self.client.create(PODS, pod, rs["metadata"]["namespace"])
            except ApiError:
                adds, dels, when = self._expect.get(key, (1, set(), 0.0))
                self._expect[key] = (adds - 1, dels, when)
                raise

    async def _delete(self, key: str, namespace: str, victims: list[Obj]) -> None:
        uids = {p["metadata"]["uid"] for p in victims}
        self._expect[key] = (0, uids, time.monotonic())
        for pod in victims:
            try:
                await self.client.delete(PODS, pod["metadata"]["name"], namespace)
            except ApiError as err:
                uids.discard(pod["metadata"]["uid"])
                if err.code != 404:
                    raise

    async def _update_status(self, rs: Obj, owned: list[Obj]) -> None:
        min_ready = int(rs["spec"].get("minReadySeconds", 0))
        active = [p for p in owned if podutil.is_active(p)]
        template_labels = (rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
        status: dict[str, Any] = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1 for p in active if all((p["metadata"].get("labels") or {}).get(k) == v
                                         for k, v in template_labels.items())),
            "readyReplicas": sum(1 for p in active if podutil.is_ready(p)),
            "availableReplicas": sum(1 for p in active if podutil.is_available(p, min_ready)),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        status = {k: v for k, v in status.items() if v or k in ("replicas",
                                                                "observedGeneration")}
        if min_ready and status.get("readyReplicas", 0) > status.get("availableReplicas", 0):
            self.enqueue_after(key_of(rs), float(min_ready))
        if status == rs.get("status"):
            return
        meta = rs["metadata"]
        try:
            await self.client.update(REPLICASETS, {**rs, "status": status}, subresource="status")
        except ApiError as err:
            if err.code not in (404, 409):
                raise
            if err.code == 409:
                self.enqueue(f"{meta['namespace']}/{meta['name']}")


def _deletion_order(pods: list[Obj]) -> list[Obj]:
    """Which pods go first when scaling down: unscheduled, then not ready, then the newest."""
    def rank(pod: Obj) -> tuple[int, int, str]:
        scheduled = 1 if pod["spec"].get("nodeName") else 0
        ready = 1 if podutil.is_ready(pod) else 0
        created = pod["metadata"].get("creationTimestamp", "")
        return scheduled, ready, _invert(created)
    return sorted(pods, key=rank)


def _invert(timestamp: str) -> str:
    # Newest first within a rank: sort by the timestamp descending.
    return "".join(chr(0x10FFFF - ord(c)) for c in timestamp)
