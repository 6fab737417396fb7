"""The service proxy on real namespaces (root), in both modes, fed through a real API server.

Topology, all of it made here and named kp<pid>…:

    outside 192.0.2.1 ── eth0 192.0.2.2  node  kbr0 10.244.0.1/24 ─┬─ pod1   10.244.0.2
    (stands for the host / a LB client)  (rules here)              ├─ pod2   10.244.0.3
                                                                    └─ client 10.244.0.4

pod1 and pod2 serve HTTP on :80 (the page is their name) and answer UDP on :5353 with their
name. The node forwards (only inside its own namespace), calls iptables for bridged traffic and
hairpins its bridge ports, as the research's setup did. The outside namespace routes the
LoadBalancer and external IPs to the node. Traffic never leaves these namespaces; the last
test checks that nothing of them is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import pytest_asyncio

from kubesvc.client.informer import InformerFactory
from kubesvc.client.rest import Client
from kubesvc.kernel.netns import list_netns, open_socket
from kubesvc.proxy.proxier import ServiceProxy, cleanup, programmed_rules
from kubesvc.testing import Cluster, free_port

pytestmark = [pytest.mark.root, pytest.mark.asyncio(loop_scope="module")]

PREFIX = f"kp{os.getpid() % 10000}"
TOOLS = ("ip", "bridge", "nft", "iptables-restore", "iptables-save", "conntrack", "nsenter",
         "busybox", "sysctl")
NODE_NAME = "node-a"
NODE_IP = "192.0.2.2"
OUTSIDE_IP = "192.0.2.1"
EXTERNAL_IP = "203.0.113.10"
PODS = {"pod1": "10.244.0.2", "pod2": "10.244.0.3", "client": "10.244.0.4"}
BACKENDS = ("pod1", "pod2")
T = TypeVar("T")


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass
class Topology:
    node: str = f"{PREFIX}n"
    outside: str = f"{PREFIX}x"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, pod: str) -> str:
        return f"{PREFIX}{pod}"

    @property
    def namespaces(self) -> list[str]:
        return [self.node, self.outside, *(self.ns(p) for p in PODS)]

    def build(self, www: Path) -> None:
        for ns in self.namespaces:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        n = self.node
        sh("ip", "-n", n, "link", "add", "kbr0", "type", "bridge")
        sh("ip", "-n", n, "addr", "add", "10.244.0.1/24", "dev", "kbr0")
        sh("ip", "-n", n, "link", "set", "kbr0", "up")
        for pod, ip in PODS.items():
            port = f"v{pod}"
            sh("ip", "-n", n, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", self.ns(pod))
            sh("ip", "-n", n, "link", "set", port, "master", "kbr0", "up")
            sh("bridge", "-n", n, "link", "set", "dev", port, "hairpin", "on")
            sh("ip", "-n", self.ns(pod), "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", self.ns(pod), "link", "set", "eth0", "up")
            sh("ip", "-n", self.ns(pod), "route", "add", "default", "via", "10.244.0.1")
        sh("ip", "-n", n, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
           "netns", self.outside)
        sh("ip", "-n", n, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        sh("ip", "-n", n, "link", "set", "eth0", "up")
        sh("ip", "-n", self.outside, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        sh("ip", "-n", self.outside, "link", "set", "eth0", "up")
        sh("ip", "-n", self.outside, "route", "add", f"{EXTERNAL_IP}/32", "via", NODE_IP)
        # The node itself reaches ClusterIPs through the bridge, from the bridge's address.
        sh("ip", "-n", n, "route", "add", "10.96.0.0/12", "dev", "kbr0", "src", "10.244.0.1")
        sh("ip", "netns", "exec", n, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
           "net.bridge.bridge-nf-call-iptables=1")
        echo = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "s.bind(('0.0.0.0',5353))\nwhile True:\n d,a=s.recvfrom(2048)\n"
                " s.sendto(sys.argv[1].encode(),a)\n")
        for pod in BACKENDS:
            root = www / pod
            root.mkdir()
            (root / "index.html").write_text(pod)
            self._spawn(pod, "busybox", "httpd", "-f", "-p", "80", "-h", str(root))
            self._spawn(pod, sys.executable, "-c", echo, pod)

    def _spawn(self, pod: str, *argv: str) -> None:
        self.processes.append(subprocess.Popen(
            ["ip", "netns", "exec", self.ns(pod), *argv],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def route_to_node(self, ip: str) -> None:
        sh("ip", "-n", self.outside, "route", "replace", f"{ip}/32", "via", NODE_IP)

    def teardown(self) -> None:
        for proc in self.processes:
            proc.kill()
            proc.wait()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def _require_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("the proxy integration tests need root (network namespaces)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing tools: {', '.join(missing)}")


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    _require_root_and_tools()
    topo = Topology()
    try:
        topo.build(tmp_path_factory.mktemp("www"))
        yield topo
    finally:
        topo.teardown()
    assert not list_netns(PREFIX), "namespaces left behind"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


class RunningProxy:
    """A ServiceProxy for the node namespace, running in this event loop."""

    def __init__(self, cluster: Cluster, topo: Topology, mode: str) -> None:
        self.cluster = cluster
        self.topo = topo
        self.mode = mode
        self.metrics_port = free_port()
        self._stop: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        client = Client.for_cluster(self.cluster.config)
        factory = InformerFactory(client)
        proxy = ServiceProxy(factory, mode=self.mode, node_name=NODE_NAME, node_ips=[NODE_IP],
                             netns=self.topo.node, pod_cidr="10.244.0.0/24",
                             cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12",
                             metrics_port=self.metrics_port, min_sync_period=0.05)
        factory.start()
        task = asyncio.create_task(proxy.run())

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await factory.stop()
            await client.close()

        self._stop = stop

    async def stop(self) -> None:
        if self._stop is not None:
            await self._stop()
            self._stop = None


@pytest_asyncio.fixture(scope="module", loop_scope="module",
                        params=["nftables", "iptables"])
async def proxy(request: pytest.FixtureRequest, cluster: Cluster,
                topology: Topology) -> AsyncIterator[RunningProxy]:
    running = RunningProxy(cluster, topology, request.param)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
        await cleanup(request.param, topology.node)
        for kind in ("service", "endpointslice"):
            cluster.kubectl("delete", kind, "-l", "kubesvc-test=proxy", "--wait=false")


def service(name: str, ip: str, *, port: int = 80, protocol: str = "TCP",
            **spec: Any) -> dict[str, Any]:
    spec_ports = [{"name": "p", "port": port, "protocol": protocol,
                   **({"nodePort": spec.pop("nodePort")} if "nodePort" in spec else {})}]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"kubesvc-test": "proxy"}},
            "spec": {"clusterIP": ip, "ports": spec_ports, **spec}}


def endpoint_slice(service_name: str, pods: list[str], *, port: int = 80,
                   protocol: str = "TCP") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-test", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name,
                                    "endpointslice.kubernetes.io/managed-by": "kubesvc-test",
                                    "kubesvc-test": "proxy"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [PODS[p]], "conditions": {"ready": True},
                           "nodeName": NODE_NAME} for p in pods],
            "ports": [{"name": "p", "port": port, "protocol": protocol}]}


async def http_get(netns: str, host: str, port: int = 80, timeout: float = 3.0) -> str:
    """GET / from inside `netns`; the body. Refusals raise ConnectionRefusedError."""
    loop = asyncio.get_running_loop()
    sock = await open_socket(netns)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        await loop.sock_sendall(sock, f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout):
            data += chunk
    finally:
        sock.close()
    return data.decode().partition("\r\n\r\n")[2]


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    """The first result of `check` that does not raise, retrying until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except (OSError, AssertionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def answers(netns: str, host: str, port: int = 80, n: int = 100) -> Counter[str]:
    return Counter([await http_get(netns, host, port) for _ in range(n)])


async def test_cluster_ip_from_a_client_pod(proxy: RunningProxy, cluster: Cluster,
                                            topology: Topology) -> None:
    cluster.apply(service("web", "10.96.100.10"), endpoint_slice("web", ["pod1", "pod2"]))
    client = topology.ns("client")
    assert await eventually(lambda: http_get(client, "10.96.100.10")) in BACKENDS
    # The seed's own check, with busybox wget from the client pod.
    out = subprocess.run(["ip", "netns", "exec", client, "timeout", "5", "busybox", "wget",
                          "-qO-", "http://10.96.100.10/"], capture_output=True, text=True)
    assert out.stdout in BACKENDS
    seen = await answers(client, "10.96.100.10")
    assert set(seen) == set(BACKENDS), seen


async def test_from_the_node_and_hairpin(proxy: RunningProxy, cluster: Cluster,
                                         topology: Topology) -> None:
    cluster.apply(service("web", "10.96.100.10"), endpoint_slice("web", ["pod1", "pod2"]),
                  service("self", "10.96.100.11"), endpoint_slice("self", ["pod1"]))
    await eventually(lambda: http_get(topology.ns("pod1"), "10.96.100.11"))
    assert set(await answers(topology.node, "10.96.100.10", n=40)) == set(BACKENDS)
    # pod1 through a Service that sends it to itself half of the time, then always.
    assert set(await answers(topology.ns("pod1"), "10.96.100.10", n=40)) == set(BACKENDS)
    assert await answers(topology.ns("pod1"), "10.96.100.11", n=10) == Counter(pod1=10)


async def test_node_port_load_balancer_and_external_ip(proxy: RunningProxy, cluster: Cluster,
                                                       topology: Topology) -> None:
    cluster.apply(service("lb", "10.96.100.12", type="LoadBalancer", nodePort=30080,
                          externalIPs=[EXTERNAL_IP]),
                  endpoint_slice("lb", ["pod1", "pod2"]))
    lb_ip = await eventually(lambda: _lb_ip(cluster, "lb"))
    topology.route_to_node(lb_ip)
    outside = topology.outside
    assert await eventually(lambda: http_get(outside, NODE_IP, 30080)) in BACKENDS
    for target, port in ((NODE_IP, 30080), (lb_ip, 80), (EXTERNAL_IP, 80)):
        assert set(await answers(outside, target, port, n=30)) == set(BACKENDS), target


async def _lb_ip(cluster: Cluster, name: str) -> str:
    out = cluster.kubectl("get", "service", name, "-o",
                          "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout
    assert out, "no LoadBalancer IP yet"
    return out


async def test_service_without_endpoints_refuses_at_once(
        proxy: RunningProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("gone", "10.96.100.13"), endpoint_slice("gone", ["pod2"]))
    client = topology.ns("client")
    await eventually(lambda: http_get(client, "10.96.100.13"))
    cluster.apply(endpoint_slice("gone", []))

    async def refused(netns: str) -> None:
        try:
            await http_get(netns, "10.96.100.13", timeout=5.0)
        except ConnectionRefusedError:
            return
        raise AssertionError("still answered")

    await eventually(lambda: refused(client))
    # Refused, not timed out, from a pod and from the node alike.
    for netns in (client, topology.node):
        with pytest.raises(ConnectionRefusedError):
            await http_get(netns, "10.96.100.13", timeout=5.0)


async def test_session_affinity_keeps_a_client_on_one_pod(
        proxy: RunningProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("sticky", "10.96.100.14", sessionAffinity="ClientIP",
                          sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}}),
                  endpoint_slice("sticky", ["pod1", "pod2"]))
    client = topology.ns("client")
    await eventually(lambda: http_get(client, "10.96.100.14"))
    seen = await answers(client, "10.96.100.14", n=30)
    assert len(seen) == 1, seen


def answered_by(sock: socket.socket, host: str, port: int,
                pod: str) -> Callable[[], Awaitable[str]]:
    """A check for `eventually`: a datagram from `sock` to host:port is answered by `pod`."""
    async def check() -> str:
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(sock, b"?", (host, port))
        answer = (await asyncio.wait_for(loop.sock_recv(sock, 100), 1.0)).decode()
        assert answer == pod, answer
        return answer
    return check


async def udp_client(topo: Topology) -> socket.socket:
    """A client pod's UDP socket: every datagram it sends belongs to one conntrack entry."""
    sock = await open_socket(topo.ns("client"), socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))  # a fresh flow: not one an earlier test left in conntrack
    return sock


async def test_udp_keeps_working_across_an_endpoint_change(
        proxy: RunningProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("dns", "10.96.100.15", port=53, protocol="UDP"),
                  endpoint_slice("dns", ["pod1"], port=5353, protocol="UDP"))
    sock = await udp_client(topology)
    try:
        # The Service may still hold the previous test's endpoint until the proxy syncs.
        await eventually(answered_by(sock, "10.96.100.15", 53, "pod1"))
        cluster.apply(endpoint_slice("dns", ["pod2"], port=5353, protocol="UDP"))
        await eventually(answered_by(sock, "10.96.100.15", 53, "pod2"))
    finally:
        sock.close()


async def test_metrics_and_healthz(proxy: RunningProxy, cluster: Cluster) -> None:
    port = proxy.metrics_port
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
            assert (await resp.json())["lastUpdated"]
        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
    assert "kubeproxy_sync_proxy_rules_duration_seconds_count" in text
    assert 'kubesvc_proxy_synced{kind="endpoints"}' in text
    assert "kubeproxy_network_programming_duration_seconds_count" in text


async def test_a_new_proxy_moves_udp_flows_off_endpoints_that_left_meanwhile(
        proxy: RunningProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("dns2", "10.96.100.16", port=53, protocol="UDP"),
                  endpoint_slice("dns2", ["pod1"], port=5353, protocol="UDP"))
    sock = await udp_client(topology)
    try:
        await eventually(answered_by(sock, "10.96.100.16", 53, "pod1"))
        await proxy.stop()
        cluster.apply(endpoint_slice("dns2", ["pod2"], port=5353, protocol="UDP"))
        # The flow stays alive meanwhile; pod1 still answers, as it would until the entry
        # expired if the new proxy only compared its snapshots (it has no previous one).
        await answered_by(sock, "10.96.100.16", 53, "pod1")()
        await proxy.start()
        await eventually(answered_by(sock, "10.96.100.16", 53, "pod2"))
    finally:
        sock.close()


async def test_rules_outlive_the_proxy_and_cleanup_removes_them(
        proxy: RunningProxy, cluster: Cluster, topology: Topology) -> None:
    mode = proxy.mode
    cluster.apply(service("web", "10.96.100.10"), endpoint_slice("web", ["pod1", "pod2"]))
    client = topology.ns("client")
    await eventually(lambda: http_get(client, "10.96.100.10"))
    loop = asyncio.get_running_loop()
    held = await open_socket(client)  # established before the proxy goes away
    await loop.sock_connect(held, ("10.96.100.10", 80))
    try:
        await proxy.stop()
        assert await http_get(client, "10.96.100.10") in BACKENDS
        await loop.sock_sendall(held, b"GET / HTTP/1.0\r\n\r\n")
        assert (await asyncio.wait_for(loop.sock_recv(held, 4096), 3.0)).startswith(b"HTTP/")
    finally:
        held.close()
    # A new proxy takes over the same rules and keeps serving changes.
    await proxy.start()
    cluster.apply(endpoint_slice("web", ["pod2"]))

    async def only_pod2() -> None:
        assert await answers(client, "10.96.100.10", n=10) == Counter(pod2=10)

    await eventually(only_pod2)
    assert "10.96.100.10" in await programmed_rules(mode, topology.node)
    await proxy.stop()
    await cleanup(mode, topology.node)
    assert "10.96.100.10" not in await programmed_rules(mode, topology.node)
    with pytest.raises(OSError):
        await http_get(client, "10.96.100.10", timeout=1.0)

