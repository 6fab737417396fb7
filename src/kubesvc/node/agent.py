"""The node agent (a kubelet without a container engine): registers the Node, keeps its Lease
fresh, runs the pods bound to it through the runtime, probes them and writes their status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from kubesvc.api import servicelinks
from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.client import events
from kubesvc.client.informer import Informer, key_of
from kubesvc.client.rest import Client
from kubesvc.kernel.nodenet import NodeNetwork
from kubesvc.node.envvars import container_env
from kubesvc.node.probes import ContainerProber
from kubesvc.node.runtime import ContainerNotFound, PodState, Runtime
from kubesvc.node.static import NAMESPACE as STATIC_NAMESPACE
from kubesvc.node.static import StaticPod, is_mirror, mirror_status

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NODES = of("v1", "Node")
PODS = of("v1", "Pod")
LEASES = of("coordination.k8s.io/v1", "Lease")
SERVICES = of("v1", "Service")
KUBELET_PORT = 10250
KUBELET_VERSION = "v1.37.0"
HEARTBEAT = 10.0
STATUS_POLL = 1.0
COMPONENT = "kubelet"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeAgent:
    def __init__(self, client: Client, node_name: str, node: NodeNetwork, runtime: Runtime,
                 static: list[StaticPod] | None = None) -> None:
        self.client = client
        self.static = {s.name(node_name): s for s in static or []}
        self.node_name = node_name
        self.node = node
        self.runtime = runtime
        self.pods = Informer(client, PODS, field_selector=f"spec.nodeName={node_name}")
        self.pods.add_handlers(self._enqueue, lambda _o, n: self._enqueue(n), self._enqueue)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._uids: dict[str, str] = {}  # pod key -> uid, for pods gone from the API
        self._probers: dict[tuple[str, str], tuple[str, ContainerProber]] = {}
        self._last_status: dict[str, Obj] = {}
        self._started: dict[str, str] = {}  # uid -> startTime
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the Node ------------------------------------------------------------------------

    def _node_status(self) -> Obj:
        stamp = now()
        cpus = os.cpu_count() or 1
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
        capacity = {"cpu": str(cpus), "memory": f"{memory}Ki", "pods": "110",
                    "ephemeral-storage": "0"}

        def condition(kind: str, status: str, reason: str, message: str) -> Obj:
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}

        uname = platform.uname()
        return {
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                          "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                          "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": self.node.node_ip},
                          {"type": "Hostname", "address": self.node_name}],
            "capacity": capacity, "allocatable": capacity,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "nodeInfo": {
                "architecture": "amd64" if uname.machine == "x86_64" else uname.machine,
                "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "machineID": _read("/etc/machine-id"),
                "systemUUID": _read("/etc/machine-id"),
                "containerRuntimeVersion": "kubesvc://0.1.0",
                "kernelVersion": uname.release,
                "kubeProxyVersion": "",
                "kubeletVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "osImage": _os_image(),
            },
        }

    async def register(self, pod_cidr: str) -> None:
        """Create or refresh the Node object with its addresses and a Ready condition."""
        labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/control-plane": ""}
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": labels},
                "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}}
        try:
            current = await self.client.get(NODES, self.node_name)
        except ApiError as err:
            if err.code != 404:
                raise
            current = await self.client.create(NODES, node)
        else:
            current = await self.client.patch(NODES, self.node_name,
                                              {"metadata": {"labels": labels}})
        await self.client.update(NODES, {**current, "status": self._node_status()},
                                 subresource="status")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self._renew_lease()
                node = await self.client.get(NODES, self.node_name)
                await self.client.update(NODES, {**node, "status": self._node_status()},
                                         subresource="status")
            except (ApiError, OSError) as exc:
                log.warning("node heartbeat failed: %s", exc)

    async def _renew_lease(self) -> None:
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": 40,
                          "renewTime": _micro_now()}}
        try:
            current = await self.client.get(LEASES, self.node_name, "kube-node-lease")
        except ApiError as err:
            if err.code != 404:
                raise
            await self.client.create(LEASES, lease)
            return
        current["spec"] = lease["spec"]
        await self.client.update(LEASES, current)

    # -- pods ----------------------------------------------------------------------------

    def _enqueue(self, pod: Obj) -> None:
        key = key_of(pod)
        self._uids[key] = pod["metadata"]["uid"]
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    async def run(self) -> None:
        await self._renew_lease()
        pods_task = asyncio.create_task(self.pods.run())
        try:
            await self.pods.synced.wait()
            await self._forget_strays()
            for name in self.static:
                self._queue_key(f"{STATIC_NAMESPACE}/{name}")
            await asyncio.gather(self._heartbeat(), self._poll(),
                                 *(self._worker() for _ in range(4)))
        finally:
            pods_task.cancel()
            for _, prober in self._probers.values():
                await prober.stop()

    async def _forget_strays(self) -> None:
        """Pods left on disk by an earlier run whose objects are gone: stop them."""
        live = {p["metadata"]["uid"] for p in self.pods.list()}
        for uid in self.runtime.known_pods():
            if uid not in live:
                log.info("stopping pod %s, which no longer exists", uid)
                await self.runtime.stop_pod(uid, 0)

    async def _poll(self) -> None:
        """Container states change in the shims; re-read them for every pod regularly."""
        while True:
            await asyncio.sleep(STATUS_POLL)
            for pod in self.pods.list():
                self._enqueue(pod)

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self._sync(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("syncing pod %s failed", key)

    async def _sync(self, key: str) -> None:
        pod = self.pods.cache.get(key)
        namespace, _, name = key.partition("/")
        if namespace == STATIC_NAMESPACE and name in self.static:
            await self._sync_static(self.static[name], pod)
            return
        if pod is not None and is_mirror(pod):  # of a component this node no longer runs
            await self._remove(pod)
            return
        if pod is None:
            uid = self._uids.pop(key, None)
            if uid is not None:
                await self._stop(uid, 0)
            return
        uid = pod["metadata"]["uid"]
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            await self._stop(uid, int(meta.get("deletionGracePeriodSeconds") or 0))
            await self._remove(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and self.runtime.pod_state(uid) is None:
            return
        state = self.runtime.pod_state(uid)
        if state is None or not state.sandbox_ready:
            try:
                await self.runtime.run_pod(pod, await self._env(pod))
            except ApiError as exc:
                await events.record(self.client, pod, "Warning", "Failed", str(exc),
                                    COMPONENT, self.node_name)
                return
            state = self.runtime.pod_state(uid)
        if uid not in self._started:
            self._started[uid] = now()
        if state is not None:
            self._probe(pod, state)
            await self._write_status(pod, state)

    async def _sync_static(self, static: StaticPod, pod: Obj | None) -> None:
        """Keep the mirror pod of an in-process component, and its status, current."""
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            if pod is not None:
                await self._remove(pod)
            try:
                await self.client.create(PODS, static.manifest(self.node_name))
            except ApiError as err:
                if err.code != 409:
                    raise
            return
        uid = pod["metadata"]["uid"]
        started = self._started.setdefault(uid, now())
        status = mirror_status(pod, static.ready(), self.node.node_ip, started)
        if status != pod.get("status"):
            await self._put_status(pod, status)

    async def _stop(self, uid: str, grace: int) -> None:
        for (puid, name), (_, prober) in list(self._probers.items()):
            if puid == uid:
                await prober.stop()
                del self._probers[(puid, name)]
        await self.runtime.stop_pod(uid, grace)
        self._last_status.pop(uid, None)
        self._started.pop(uid, None)

    async def _remove(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["name"], meta["namespace"], grace_period=0,
                                     preconditions={"uid": meta["uid"]})
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    async def _env(self, pod: Obj) -> dict[str, list[tuple[str, str]]]:
        spec = pod["spec"]
        namespace = pod["metadata"]["namespace"]
        # Read now rather than from a cache: a Service created just before the pod (the seed
        # applies both at once) must be in the pod's environment.
        services, _ = await self.client.list(SERVICES, namespace)
        if namespace != "default":
            services.append(await self.client.get(SERVICES, "kubernetes", "default"))
        links = servicelinks.service_env(namespace, spec.get("enableServiceLinks", True),
                                         services)
        out = {}
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            out[container["name"]] = links + await container_env(
                self.client, pod, container, self.node.node_ip)
        return out

    # -- probes and status ---------------------------------------------------------------

    def _probe(self, pod: Obj, state: PodState) -> None:
        uid = pod["metadata"]["uid"]
        specs = {c["name"]: c for c in pod["spec"].get("containers") or []}
        for status in state.containers:
            key = (uid, status.name)
            current = self._probers.get(key)
            if current is not None and current[0] == status.container_id and status.running:
                continue
            if current is not None:
                self._background(current[1].stop())
                del self._probers[key]
            if not status.running or status.name not in specs:
                continue
            try:
                target = self.runtime.probe_target(uid, status.name)
            except ContainerNotFound:
                continue
            prober = ContainerProber(specs[status.name], target,
                                     self._probe_event(pod, status.name))
            self._probers[key] = (status.container_id, prober)
            prober.start()

    def _probe_event(self, pod: Obj, container: str) -> Any:
        uid = pod["metadata"]["uid"]
        key = key_of(pod)

        def on_event(event: str, message: str) -> None:
            if event in ("liveness-failed", "startup-failed"):
                kind = "Liveness" if event == "liveness-failed" else "Startup"
                self._background(self._restart(pod, uid, container, kind, message))
            elif event == "unready" and message:
                self._background(events.record(
                    self.client, pod, "Warning", "Unhealthy",
                    f"Readiness probe failed: {message}", COMPONENT, self.node_name))
            self._queue_key(key)

        return on_event

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        # Keep a reference until done, or the task may be collected mid-flight.
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _queue_key(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    async def _restart(self, pod: Obj, uid: str, container: str, kind: str,
                       message: str) -> None:
        await events.record(self.client, pod, "Warning", "Unhealthy",
                            f"{kind} probe failed: {message}", COMPONENT, self.node_name)
        await events.record(self.client, pod, "Normal", "Killing",
                            f"Container {container} failed {kind.lower()} probe, will be "
                            "restarted", COMPONENT, self.node_name)
        with contextlib.suppress(ContainerNotFound):  # it stopped meanwhile
            await self.runtime.restart_container(uid, container)

    def _status(self, pod: Obj, state: PodState) -> Obj:
        uid = pod["metadata"]["uid"]
        containers = []
        all_ready = bool(state.containers)
        for cs in state.containers:
            prober = self._probers.get((uid, cs.name))
            ready = bool(prober and prober[0] == cs.container_id and prober[1].ready
                         and cs.running)
            started = bool(prober and prober[1].started) if cs.running else False
            all_ready = all_ready and ready
            containers.append(cs.to_k8s(ready=ready, started=started))
        inits = [s.to_k8s(ready=s.terminated is not None and
                          s.terminated.get("exitCode") == 0) for s in state.init_containers]
        old = pod.get("status") or {}
        phase = state.phase()
        initialized = all(s.terminated is not None and s.terminated.get("exitCode") == 0
                          for s in state.init_containers)
        stamp = now()

        def condition(kind: str, ok: bool, reason: str = "") -> Obj:
            previous = next((c for c in old.get("conditions") or [] if c["type"] == kind), None)
            status = "True" if ok else "False"
            since = previous["lastTransitionTime"] if previous and \
                previous.get("status") == status else stamp
            cond = {"type": kind, "status": status, "lastProbeTime": None,
                    "lastTransitionTime": since}
            if reason and not ok:
                cond["reason"] = reason
            return cond

        ready = all_ready and phase == "Running"
        status: Obj = {
            "phase": phase,
            "conditions": [
                condition("PodReadyToStartContainers", state.sandbox_ready),
                condition("Initialized", initialized, "ContainersNotInitialized"),
                condition("Ready", ready, "ContainersNotReady"),
                condition("ContainersReady", ready, "ContainersNotReady"),
                condition("PodScheduled", True),
            ],
            "hostIP": self.node.node_ip,
            "hostIPs": [{"ip": self.node.node_ip}],
            "podIP": state.ip,
            "podIPs": [{"ip": state.ip}],
            "startTime": self._started.get(uid, stamp),
            "containerStatuses": containers,
            "qosClass": old.get("qosClass", "BestEffort"),
        }
        if inits:
            status["initContainerStatuses"] = inits
        return status

    async def _write_status(self, pod: Obj, state: PodState) -> None:
        uid = pod["metadata"]["uid"]
        status = self._status(pod, state)
        if status == self._last_status.get(uid) or status == pod.get("status"):
            return
        await self._put_status(pod, status)

    async def _put_status(self, pod: Obj, status: Obj) -> None:
        uid = pod["metadata"]["uid"]
        try:
            await self.client.update(PODS, {**pod, "status": status}, subresource="status")
        except ApiError as err:
            if err.code == 409:
                self._queue_key(key_of(pod))
                return
            if err.code != 404:
                raise
        self._last_status[uid] = status


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"
