"""The Deployment controller: a ReplicaSet per pod template (named by the template's hash),
rolled by RollingUpdate (maxSurge/maxUnavailable, gated on available pods) or Recreate."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from kubesvc.api import selectors
from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client.informer import InformerFactory, key_of
from kubesvc.controllers import pods as podutil
from kubesvc.controllers.base import Controller, Obj

DEPLOYMENTS = of("apps/v1", "Deployment")
REPLICASETS = of("apps/v1", "ReplicaSet")
PODS = of("v1", "Pod")
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# The alphabet Kubernetes' SafeEncodeString uses: no vowels, so hashes never spell words.
SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """FNV-1a of the pod template, safe-encoded, as the name suffix of its ReplicaSet."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE[ord(c) % len(SAFE)] for c in str(h))


def _strip_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    (t.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return t


def _resolve(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def _replicas(rs: Obj) -> int:
    return int(rs["spec"].get("replicas", 0))


def _revision(rs: Obj) -> int:
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, informers: InformerFactory) -> None:
        super().__init__(informers)
        self.deployments = self.informer(DEPLOYMENTS)
        self.replicasets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS)
        self.deployments.add_handlers(self.enqueue_obj, lambda _o, n: self.enqueue_obj(n))
        self.replicasets.add_handlers(self._rs_changed, lambda _o, n: self._rs_changed(n),
                                      self._rs_changed)
        self.pods.add_handlers(on_delete=self._pod_deleted)

    def _rs_changed(self, rs: Obj) -> None:
        ref = podutil.controller_of(rs)
        if ref is not None and ref.get("kind") == "Deployment":
            self.enqueue(f"{rs['metadata']['namespace']}/{ref['name']}")

    def _pod_deleted(self, pod: Obj) -> None:
        # Recreate waits for old pods to be gone, which no ReplicaSet event announces.
        ref = podutil.controller_of(pod)
        if ref is None:
            return
        rs = self.replicasets.get(ref["name"], pod["metadata"]["namespace"])
        if rs is not None:
            self._rs_changed(rs)

    async def reconcile(self, key: str) -> None:
        d = self.deployments.cache.get(key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        owned = await self._claim(d)
        new_rs, old = await self._split(d, owned)
        spec = d["spec"]
        if not spec.get("paused"):
            if (spec.get("strategy") or {}).get("type") == "Recreate":
                new_rs = await self._recreate(d, new_rs, old)
            else:
                new_rs = await self._rolling(d, new_rs, old)
        elif new_rs is not None and len([r for r in old if _replicas(r)]) == 0:
            new_rs = await self._scale(new_rs, int(spec.get("replicas", 1)), d)
        await self._cleanup(d, old)
        await self._update_status(d, new_rs, old)

    async def _claim(self, d: Obj) -> list[Obj]:
        uid = d["metadata"]["uid"]
        sel = selectors.from_label_selector(d["spec"].get("selector"))
        owned = []
        for rs in self.replicasets.list(d["metadata"]["namespace"]):
            ref = podutil.controller_of(rs)
            if ref is not None:
                if ref.get("uid") == uid:
                    owned.append(rs)
                continue
            labels = rs["metadata"].get("labels") or {}
            if selectors.matches(sel, labels) and not rs["metadata"].get("deletionTimestamp"):
                refs = [*rs["metadata"].get("ownerReferences", []), podutil.owner_ref(d)]
                try:
                    owned.append(await self.client.patch(REPLICASETS, rs["metadata"]["name"], {
                        "metadata": {"ownerReferences": refs,
                                     "resourceVersion": rs["metadata"]["resourceVersion"]}},
                        rs["metadata"]["namespace"]))
                except ApiError as err:
                    if err.code not in (404, 409):
                        raise
        return owned

    async def _split(self, d: Obj, owned: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        """The ReplicaSet of the current template (created if missing) and the others."""
        template = d["spec"]["template"]
        new_rs = next((rs for rs in owned if _strip_hash(rs["spec"]["template"]) ==
                       _strip_hash(template)), None)
        old = [rs for rs in owned if rs is not new_rs]
        revision = max([_revision(rs) for rs in old] or [0]) + 1
        if new_rs is None:
            if d["spec"].get("paused"):
                # A paused Deployment rolls nothing out: its new template waits for resume.
                return None, old
            new_rs = await self._create_rs(d, old, revision)
        elif _revision(new_rs) < revision - 1 or _revision(new_rs) == 0:
            # Rolling back to an old template makes its ReplicaSet the newest revision.
            new_rs = await self._annotate(new_rs, {REVISION: str(revision)})
        if new_rs is not None:
            ann = d["metadata"].get("annotations") or {}
            want = (new_rs["metadata"].get("annotations") or {}).get(REVISION)
            if want and ann.get(REVISION) != want:
                await self._patch_deployment(d, {"metadata": {"annotations": {REVISION: want}}})
        return new_rs, old

    async def _create_rs(self, d: Obj, old: list[Obj], revision: int) -> Obj | None:
        collisions = int((d.get("status") or {}).get("collisionCount", 0))
        hash_ = template_hash(d["spec"]["template"], collisions)
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hash_
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = hash_
        replicas = int(d["spec"].get("replicas", 1))
        strategy = d["spec"].get("strategy") or {}
        initial = 0
        if strategy.get("type") != "Recreate":
            surge = _resolve((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"),
                             replicas, True)
            total = sum(_replicas(rs) for rs in old)
            initial = replicas if not old else max(0, min(replicas, replicas + surge - total))
        elif not any(_replicas(rs) for rs in old):
            initial = replicas
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{hash_}",
                "namespace": d["metadata"]["namespace"],
                "labels": template["metadata"]["labels"],
                "annotations": {REVISION: str(revision), DESIRED: str(replicas),
                                MAX_REPLICAS: str(replicas + _resolve(
                                    (strategy.get("rollingUpdate") or {}).get("maxSurge", 0),
                                    replicas, True))},
                "ownerReferences": [podutil.owner_ref(d)],
            },
            "spec": {"replicas": initial, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                     "selector": selector, "template": template},
        }
        try:
            return await self.client.create(REPLICASETS, rs)
        except ApiError as err:
            if err.code != 409:
                raise
            existing = self.replicasets.get(rs["metadata"]["name"], d["metadata"]["namespace"])
            if existing is not None and _strip_hash(existing["spec"]["template"]) == \
                    _strip_hash(d["spec"]["template"]):
                return existing
            # A ReplicaSet of another template holds the name: change the hash, as Kubernetes
            # does with status.collisionCount.
            await self.client.patch(DEPLOYMENTS, d["metadata"]["name"], {
                "status": {"collisionCount": collisions + 1}}, d["metadata"]["namespace"],
                subresource="status")
            return None

    async def _annotate(self, rs: Obj, annotations: dict[str, str]) -> Obj:
        result: Obj = await self.client.patch(REPLICASETS, rs["metadata"]["name"],
                                              {"metadata": {"annotations": annotations}},
                                              rs["metadata"]["namespace"])
        return result

    async def _patch_deployment(self, d: Obj, patch: Obj) -> None:
        await self.client.patch(DEPLOYMENTS, d["metadata"]["name"], patch,
                                d["metadata"]["namespace"])

    async def _scale(self, rs: Obj, replicas: int, d: Obj) -> Obj:
        if _replicas(rs) == replicas and (rs["metadata"].get("annotations") or {}).get(
                DESIRED) == str(d["spec"].get("replicas", 1)):
            return rs
        result: Obj = await self.client.patch(REPLICASETS, rs["metadata"]["name"], {
            "metadata": {"annotations": {DESIRED: str(d["spec"].get("replicas", 1))},
                         "resourceVersion": rs["metadata"]["resourceVersion"]},
            "spec": {"replicas": replicas}}, rs["metadata"]["namespace"])
        return result

    def _available(self, rs: Obj) -> int:
        return int((rs.get("status") or {}).get("availableReplicas", 0))

    async def _rolling(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> Obj | None:
        """One step of a rolling update, with Kubernetes' arithmetic: grow the new ReplicaSet
        within maxSurge, then shrink old ones while at least replicas - maxUnavailable pods
        stay available (unavailable old pods go first)."""
        if new_rs is None:
            return None
        replicas = int(d["spec"].get("replicas", 1))
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        surge = _resolve(ru.get("maxSurge", "25%"), replicas, True)
        unavailable = _resolve(ru.get("maxUnavailable", "25%"), replicas, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        if not any(_replicas(rs) for rs in old):
            return await self._scale(new_rs, replicas, d)
        total = _replicas(new_rs) + sum(_replicas(rs) for rs in old)
        if _replicas(new_rs) > replicas:
            new_rs = await self._scale(new_rs, replicas, d)
        elif _replicas(new_rs) < replicas and total < replicas + surge:
            grow = min(replicas + surge - total, replicas - _replicas(new_rs))
            new_rs = await self._scale(new_rs, _replicas(new_rs) + grow, d)
        total = _replicas(new_rs) + sum(_replicas(rs) for rs in old)
        min_available = replicas - unavailable
        new_unavailable = _replicas(new_rs) - self._available(new_rs)
        budget = total - min_available - new_unavailable
        if budget <= 0:
            return new_rs
        by_age = sorted((rs for rs in old if _replicas(rs)), key=_revision)
        sizes = {rs["metadata"]["uid"]: _replicas(rs) for rs in by_age}
        for rs in by_age:
            unhealthy = sizes[rs["metadata"]["uid"]] - self._available(rs)
            drop = min(budget, max(unhealthy, 0))
            sizes[rs["metadata"]["uid"]] -= drop
            budget -= drop
        available = self._available(new_rs) + sum(self._available(rs) for rs in by_age)
        removable = available - min_available
        for rs in by_age:
            drop = min(sizes[rs["metadata"]["uid"]], max(removable, 0))
            sizes[rs["metadata"]["uid"]] -= drop
            removable -= drop
        for rs in by_age:
            if sizes[rs["metadata"]["uid"]] != _replicas(rs):
                await self._scale(rs, sizes[rs["metadata"]["uid"]], d)
        return new_rs

    async def _recreate(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> Obj | None:
        for rs in old:
            if _replicas(rs):
                await self._scale(rs, 0, d)
        old_uids = {rs["metadata"]["uid"] for rs in old}
        running = [p for p in self.pods.list(d["metadata"]["namespace"])
                   if (podutil.controller_of(p) or {}).get("uid") in old_uids]
        if running or new_rs is None:
            return new_rs
        return await self._scale(new_rs, int(d["spec"].get("replicas", 1)), d)

    async def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        limit = int(d["spec"].get("revisionHistoryLimit", 10))
        idle = sorted((rs for rs in old if not _replicas(rs) and
                       not (rs.get("status") or {}).get("replicas")), key=_revision)
        for rs in idle[:max(0, len(idle) - limit)]:
            try:
                await self.client.delete(REPLICASETS, rs["metadata"]["name"],
                                         rs["metadata"]["namespace"])
            except ApiError as err:
                if err.code != 404:
                    raise

    async def _update_status(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> None:
        all_rs = ([new_rs] if new_rs else []) + old
        replicas = int(d["spec"].get("replicas", 1))
        st = [rs.get("status") or {} for rs in all_rs]
        available = sum(int(s.get("availableReplicas", 0)) for s in st)
        total = sum(int(s.get("replicas", 0)) for s in st)
        updated = int((new_rs or {}).get("status", {}).get("replicas", 0)) if new_rs else 0
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = _resolve(ru.get("maxUnavailable", "25%"), replicas, False)
        old_status = d.get("status") or {}
        status: dict[str, Any] = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": sum(int(s.get("readyReplicas", 0)) for s in st),
            "availableReplicas": available,
            "unavailableReplicas": max(0, replicas - available),
            "conditions": copy.deepcopy(old_status.get("conditions") or []),
        }
        if "collisionCount" in old_status:
            status["collisionCount"] = old_status["collisionCount"]
        now = podutil.now_rfc3339()
        ok = available >= replicas - max_unavailable
        podutil.set_condition(status, {
            "type": "Available", "status": "True" if ok else "False",
            "reason": "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
            "message": "Deployment has minimum availability." if ok else
            "Deployment does not have minimum availability.",
            "lastUpdateTime": now, "lastTransitionTime": now})
        name = (new_rs or {}).get("metadata", {}).get("name", "")
        done = new_rs is not None and updated == replicas and available >= replicas and \
            total == replicas
        podutil.set_condition(status, {
            "type": "Progressing", "status": "True",
            "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
            "message": f'ReplicaSet "{name}" has successfully progressed.' if done else
            f'ReplicaSet "{name}" is progressing.',
            "lastUpdateTime": now, "lastTransitionTime": now})
        status = {k: v for k, v in status.items()
                  if v or k in ("observedGeneration", "replicas", "conditions")}
        if _same_status(status, old_status):
            return
        try:
            await self.client.update(DEPLOYMENTS, {**d, "status": status}, subresource="status")
        except ApiError as err:
            if err.code == 409:
                self.enqueue(key_of(d))
            elif err.code != 404:
                raise


def _same_status(new: Obj, old: Obj) -> bool:
    """Equal but for condition timestamps that only move when something changed."""
    def strip(s: Obj) -> Obj:
        s = copy.deepcopy(s)
        for c in s.get("conditions") or []:
            c.pop("lastUpdateTime", None)
            c.pop("lastTransitionTime", None)
        return s
    return strip(new) == strip(old)
