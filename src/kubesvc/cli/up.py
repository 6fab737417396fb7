"""`kubesvc up`: every component of a one-host cluster in one process, like k3s.

Start-up is gated by readiness: certificates, state, the API server listening, then the
components that are its clients; the kubeconfig is written once the cluster answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from kubesvc.api.allocators import IPAllocator
from kubesvc.api.errors import ApiError
from kubesvc.api.resources import of
from kubesvc.apiserver.podproxy import PodProxy
from kubesvc.apiserver.server import ApiServerProcess
from kubesvc.client.informer import InformerFactory
from kubesvc.client.rest import Client
from kubesvc.config import kubeconfig
from kubesvc.config.cluster import ClusterConfig
from kubesvc.controllers.base import Controller
from kubesvc.controllers.deployment import DeploymentController
from kubesvc.controllers.endpoints import EndpointsController
from kubesvc.controllers.gc import GarbageCollector
from kubesvc.controllers.loadbalancer import LoadBalancerController
from kubesvc.controllers.namespace import NamespaceController
from kubesvc.controllers.nodeipam import NodeIpamController
from kubesvc.controllers.replicaset import ReplicaSetController
from kubesvc.controllers.scheduler import Scheduler
from kubesvc.dns.server import ClusterDNS
from kubesvc.kernel.ipvs import require_ipvs
from kubesvc.kernel.netns import open_socket
from kubesvc.kernel.nodenet import NodeNetwork
from kubesvc.node.agent import KUBELET_PORT, NodeAgent
from kubesvc.node.kubelet import KubeletServer
from kubesvc.node.lbaddresses import LoadBalancerAddresses
from kubesvc.node.runtime import Runtime
from kubesvc.node.static import StaticPod
from kubesvc.proxy.proxier import ServiceProxy
from kubesvc.storage.sqlite import SQLiteStore

log = logging.getLogger(__name__)

Step = Callable[[str], None]
NODES = of("v1", "Node")
POD_CIDR_POLLS = 200
# Pods get this long to stop when the cluster is shut down.
STOP_GRACE = 5
DNS_METRICS_PORT = 9153
DNS_PORTS = [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
             {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
             {"name": "metrics", "containerPort": DNS_METRICS_PORT, "protocol": "TCP"}]


class AlreadyRunning(Exception):
    pass


def running_pid(config: ClusterConfig) -> int | None:
    """The pid of the `kubesvc up` that owns this state directory, if it is alive."""
    try:
        pid = int(config.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def server_hosts(config: ClusterConfig) -> list[str]:
    first_service_ip = "10.96.0.1"
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             f"kubernetes.default.svc.{config.cluster_domain}"]
    return sorted({"127.0.0.1", config.api_address, first_service_ip, *names})


def cluster_kubeconfig(config: ClusterConfig) -> Path:
    """A kubeconfig with only this cluster, for `kubesvc kubectl` and for scripts."""
    return config.state_dir / "kubeconfig"


def lb_pool(config: ClusterConfig, node: NodeNetwork) -> IPAllocator | None:
    """The LoadBalancer address pool: none, an explicit range or CIDR, or (auto) the top of
    the isolated node's link subnet, which the host reaches directly as it reaches the node."""
    if config.lb_pool == "none" or (config.lb_pool == "auto" and not config.isolated):
        return None
    if config.lb_pool == "auto":
        net = ipaddress.ip_network(f"{node.node_ip}/24", strict=False)
        return IPAllocator.for_pool(f"{net[200]}-{net[250]}")
    return IPAllocator.for_pool(config.lb_pool)


def dns_upstreams(config: ClusterConfig) -> list[str] | None:
    if config.dns_upstream == "auto":
        return None
    if config.dns_upstream == "none":
        return []
    return [a.strip() for a in config.dns_upstream.split(",") if a.strip()]


async def dns_sockets(node: NodeNetwork) -> tuple[socket.socket, socket.socket, socket.socket]:
    """The DNS server's sockets on the node's address, in the node's namespace, so that
    kube-dns's endpoint (the DNS mirror pod's address) is where it listens."""
    udp = await open_socket(node.netns, socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((node.node_ip, 53))
    tcp = await open_socket(node.netns, socket.AF_INET, socket.SOCK_STREAM)
    metrics = await open_socket(node.netns, socket.AF_INET, socket.SOCK_STREAM)
    for sock, port in ((tcp, 53), (metrics, DNS_METRICS_PORT)):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((node.node_ip, port))
    return udp, tcp, metrics


async def _wait_for_pod_cidr(client: Client, name: str) -> str:
    """Register the Node and wait for the node-IPAM controller to give it a pod CIDR."""
    try:
        await client.create(NODES, {"metadata": {"name": name}, "spec": {}})
    except ApiError as err:
        if err.code != 409:
            raise
    for _ in range(POD_CIDR_POLLS):
        node = await client.get(NODES, name)
        if (node.get("spec") or {}).get("podCIDR"):
            return str(node["spec"]["podCIDR"])
        await asyncio.sleep(0.05)
    raise RuntimeError(f"node {name} got no pod CIDR")


class Components:
    """Everything one `kubesvc up` runs, started in dependency order and stopped in reverse."""

    def __init__(self, config: ClusterConfig, step: Step) -> None:
        self.config = config
        self.step = step
        self.tasks: list[asyncio.Task[None]] = []
        self.store: SQLiteStore | None = None
        self.api: ApiServerProcess | None = None
        self.client: Client | None = None
        self.informers: InformerFactory | None = None
        self.node: NodeNetwork | None = None
        self.runtime: Runtime | None = None
        self.kubelet: KubeletServer | None = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.create_task(coro))

    async def start(self) -> None:
        config, step = self.config, self.step
        step("certificates")
        config.pki.ensure(server_hosts(config))
        config.save()
        step("state")
        self.store = SQLiteStore(config.database)
        step("API server")
        self.api = ApiServerProcess(config, self.store, stream=None)
        await self.api.start()
        self.client = client = Client.for_cluster(config)
        self.informers = informers = InformerFactory(client)
        step("controllers")
        controllers: list[Controller] = [
            NamespaceController(informers), GarbageCollector(informers),
            ReplicaSetController(informers), DeploymentController(informers),
            Scheduler(informers), NodeIpamController(informers, config.cluster_cidr),
            EndpointsController(informers)]
        informers.start()
        for controller in controllers:
            self._spawn(controller.run())
        await asyncio.gather(*(i.synced.wait() for c in controllers for i in c.informers))
        self.api.api.ready.set()
        step("node")
        await self._start_node(client, informers)

    async def _start_node(self, client: Client, informers: InformerFactory) -> None:
        config = self.config
        assert self.api is not None
        pod_cidr = await _wait_for_pod_cidr(client, config.name)
        self.node = node = NodeNetwork(config.name, pod_cidr, config.isolated,
                                       cluster_cidr=config.cluster_cidr,
                                       service_cidr=config.service_cidr)
        await node.setup()
        for warning in node.warnings:
            log.warning("%s", warning)
        self.runtime = runtime = Runtime(config.state_dir / "node", node,
                                         config.cluster_domain)
        proxy = ServiceProxy(informers, mode=config.proxy_mode, node_name=config.name,
                             node_ips=[node.node_ip], netns=node.netns, pod_cidr=pod_cidr,
                             cluster_cidr=config.cluster_cidr,
                             service_cidr=config.service_cidr,
                             scheduler=config.proxy_scheduler,
                             iptables_backend=config.iptables_backend)
        self._spawn(proxy.run())
        dns = ClusterDNS(informers, zone=config.cluster_domain,
                         upstreams=dns_upstreams(config))
        self._spawn(dns.serve(*await dns_sockets(node)))
        api = self.api.api
        static = [
            StaticPod("kube-apiserver", {"component": "kube-apiserver"},
                      ready=api.ready.is_set),
            StaticPod("kube-controller-manager", {"component": "kube-controller-manager"}),
            StaticPod("kube-scheduler", {"component": "kube-scheduler"}),
            StaticPod("kube-proxy", {"k8s-app": "kube-proxy"},
                      ready=lambda: proxy.health.healthy(time.time())),
            StaticPod("coredns", {"k8s-app": "kube-dns"}, DNS_PORTS, ready=lambda: dns.ready),
        ]
        agent = NodeAgent(client, config.name, node, runtime, static)
        await agent.register(pod_cidr)
        self.kubelet = KubeletServer(runtime, agent.pods, config.pki, config.name)
        await self.kubelet.start(node.node_ip, KUBELET_PORT)
        self.api.api.stream = PodProxy(self.api.registry, config.pki)
        await self.api.advertise(node.host_ip)
        balancer = LoadBalancerController(informers, lb_pool(config, node))
        self._spawn(agent.run())
        self._spawn(balancer.run())
        if node.isolated:
            self._spawn(LoadBalancerAddresses(informers, node).run())

    async def stop(self) -> None:
        """Stop every component; pods and the node network go too (a crash leaves them
        running, and the next start adopts them)."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.kubelet is not None:
            await self.kubelet.stop()
        if self.runtime is not None:
            await self.runtime.stop_all_pods(STOP_GRACE)
        if self.node is not None:
            await self.node.teardown()
        if self.informers is not None:
            await self.informers.stop()
        if self.client is not None:
            await self.client.close()
        if self.api is not None:
            await self.api.stop()
        if self.store is not None:
            await self.store.close()


async def run(config: ClusterConfig, step: Step, ready: Callable[[], None],
              user_kubeconfig: Path | None) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    if (pid := running_pid(config)) is not None and pid != os.getpid():
        raise AlreadyRunning(f"kubesvc is already running for {config.state_dir} (pid {pid})")
    if config.proxy_mode == "ipvs":
        await require_ipvs()  # before anything starts: IPVSUnavailable names the module
    config.pid_file.write_text(f"{os.getpid()}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    components = Components(config, step)
    try:
        await components.start()
        step("kubeconfig")
        kubeconfig.merge(cluster_kubeconfig(config), config.name, config.server_url, config.pki)
        if user_kubeconfig is not None:
            kubeconfig.merge(user_kubeconfig, config.name, config.server_url, config.pki)
        ready()
        await stop.wait()
    finally:
        await components.stop()
        with contextlib.suppress(OSError):
            if running_pid(config) == os.getpid():
                config.pid_file.unlink()
