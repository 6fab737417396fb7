"""The scheduler: binds each pod without a node to a Ready node, spreading pods evenly."""

from __future__ import annotations

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client import events
from kubesvc.client.informer import InformerFactory
from kubesvc.client.rest import path_of
from kubesvc.controllers import pods as podutil
from kubesvc.controllers.base import Controller, Obj

PODS = of("v1", "Pod")
NODES = of("v1", "Node")
RETRY_UNSCHEDULABLE = 2.0


class Scheduler(Controller):
    name = "default-scheduler"

    def __init__(self, informers: InformerFactory) -> None:
        super().__init__(informers)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.pods.add_handlers(self._pod, lambda _o, n: self._pod(n))
        self.nodes.add_handlers(lambda _n: self._retry_all(), lambda _o, _n: None)

    def _pod(self, pod: Obj) -> None:
        if not pod["spec"].get("nodeName") and podutil.is_active(pod):
            self.enqueue_obj(pod)

    def _retry_all(self) -> None:
        for pod in self.pods.list():
            self._pod(pod)

    def _fits(self, pod: Obj, node: Obj) -> bool:
        if podutil.condition(node, "Ready") is None or \
                (podutil.condition(node, "Ready") or {}).get("status") != "True":
            return False
        if (node.get("spec") or {}).get("unschedulable"):
            return False
        labels = node["metadata"].get("labels") or {}
        wanted = pod["spec"].get("nodeSelector") or {}
        return all(labels.get(k) == v for k, v in wanted.items())

    async def reconcile(self, key: str) -> None:
        pod = self.pods.cache.get(key)
        if pod is None or pod["spec"].get("nodeName") or not podutil.is_active(pod):
            return
        load: dict[str, int] = {}
        for other in self.pods.list():
            node_name = other["spec"].get("nodeName")
            if node_name and podutil.is_active(other):
                load[node_name] = load.get(node_name, 0) + 1
        candidates = [n for n in self.nodes.list() if self._fits(pod, n)]
        if not candidates:
            total = len(self.nodes.list())
            await events.record(self.client, pod, "Warning", "FailedScheduling",
                                f"0/{total} nodes are available: no Ready node matches the "
                                "pod.", self.name)
            self.enqueue_after(key, RETRY_UNSCHEDULABLE)
            return
        node = min(candidates, key=lambda n: (load.get(n["metadata"]["name"], 0),
                                              n["metadata"]["name"]))
        name = node["metadata"]["name"]
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": name}}
        try:
            await self.client.request(
                "POST", path_of(PODS, meta["namespace"], meta["name"], "binding"), body=binding)
        except ApiError as err:
            if err.code in (404, 409):
                return
            raise
        await events.record(self.client, pod, "Normal", "Scheduled",
                            f"Successfully assigned {meta['namespace']}/{meta['name']} to "
                            f"{name}", self.name)
