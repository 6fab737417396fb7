"""Mirror pods for the components `kubesvc up` runs in its own process (API server,
controllers, scheduler, service proxy, DNS), as the kubelet keeps them for static pods: Pod
objects in kube-system, annotated `kubernetes.io/config.mirror`, that the agent does not run
but reports on. `kubectl get pods -n kube-system` then lists them as minikube lists its
control plane, and a Service can select them: kube-dns's endpoints are the DNS mirror pod's
address, computed like any other Service's."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
MIRROR = "kubernetes.io/config.mirror"
NAMESPACE = "kube-system"


@dataclass
class StaticPod:
    component: str  # e.g. "coredns": the pod is "<component>-<node>"
    labels: dict[str, str]
    ports: list[Obj] = field(default_factory=list)
    ready: Callable[[], bool] = lambda: True

    def name(self, node: str) -> str:
        return f"{self.component}-{node}"

    def manifest(self, node: str) -> Obj:
        spec = {"containers": [{"name": self.component, "image": f"kubesvc/{self.component}",
                                "ports": self.ports}],
                "hostNetwork": True, "nodeName": node, "priorityClassName":
                "system-node-critical", "restartPolicy": "Always"}
        digest = hashlib.sha256(repr((self.component, self.labels, self.ports)).encode())
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": self.name(node), "namespace": NAMESPACE,
                             "labels": {"tier": "control-plane", **self.labels},
                             "annotations": {MIRROR: digest.hexdigest()[:32],
                                             "kubernetes.io/config.source": "kubesvc"}},
                "spec": spec}


def is_mirror(pod: Obj) -> bool:
    return MIRROR in (pod["metadata"].get("annotations") or {})


def mirror_status(pod: Obj, ready: bool, node_ip: str, started: str) -> Obj:
    """A Running pod on the node's address; Ready while the component says so."""
    def condition(kind: str, ok: bool) -> Obj:
        old = next((c for c in (pod.get("status") or {}).get("conditions") or []
                    if c["type"] == kind), None)
        status = "True" if ok else "False"
        since = old["lastTransitionTime"] if old and old["status"] == status else started
        return {"type": kind, "status": status, "lastProbeTime": None,
                "lastTransitionTime": since}

    containers = [{"name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
                   "restartCount": 0, "started": True,
                   "state": {"running": {"startedAt": started}}}
                  for c in pod["spec"]["containers"]]
    return {"phase": "Running", "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
            "podIP": node_ip, "podIPs": [{"ip": node_ip}], "startTime": started,
            "qosClass": "BestEffort", "containerStatuses": containers,
            "conditions": [condition("PodReadyToStartContainers", True),
                           condition("Initialized", True), condition("Ready", ready),
                           condition("ContainersReady", ready),
                           condition("PodScheduled", True)]}
