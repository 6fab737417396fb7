"""userspace mode on real namespaces (root): the seed's walkthrough, each scheduler over live
backends, retries, affinity, UDP, and Services coming and going.

One `kubesvc up --proxy-mode userspace` serves the walkthrough with real pods; the rest runs a
ServiceProxy in this process against that cluster's API, for a topology made here (ku<pid>…):

    outside 192.0.2.1 ── eth0 192.0.2.2  node  kbr0 10.244.0.1/24 ─┬─ pod1   10.244.0.2
                                          (relay workers, rules)    ├─ pod2   10.244.0.3
                                                                    └─ client 10.244.0.4 (+.20-.23)

pod1 and pod2 serve HTTP on :80 (the page is their name), a TCP echo on :7 that prefixes their
name, and UDP on :5353 answering with their name. Traffic never leaves these namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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

import pytest
import pytest_asyncio

from kubesvc.client.informer import InformerFactory
from kubesvc.client.rest import Client
from kubesvc.kernel.netns import list_netns, open_socket
from kubesvc.proxy.proxier import ServiceProxy, cleanup, programmed_rules
from kubesvc.proxy.schedulers import DestinationHashing, Scheduler, SourceHashing
from kubesvc.proxy.types import ServicePortName
from kubesvc.proxy.userspace import UserspaceDataplane
from kubesvc.testing import Cluster
from kubesvc.walkthrough import Walkthrough

pytestmark = [pytest.mark.root, pytest.mark.asyncio(loop_scope="module")]

PREFIX = f"ku{os.getpid() % 10000}"
TOOLS = ("ip", "bridge", "nft", "conntrack", "nsenter", "busybox", "sysctl")
NODE_NAME = "node-u"
NODE_IP, OUTSIDE_IP, EXTERNAL_IP = "192.0.2.2", "192.0.2.1", "203.0.113.10"
PODS = {"pod1": "10.244.0.2", "pod2": "10.244.0.3", "client": "10.244.0.4"}
BACKENDS = ("pod1", "pod2")
CLIENT_SOURCES = [f"10.244.0.{n}" for n in range(20, 24)]
TITLE = "<title>Welcome to nginx!</title>"
T = TypeVar("T")

ECHO = """import socket, sys, threading
def serve(conn):
    with conn:
        while data := conn.recv(4096):
            conn.sendall(sys.argv[1].encode() + b":" + data)
server = socket.create_server(("0.0.0.0", 7))
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""
UDP_ECHO = """import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(sys.argv[1].encode(), a)
"""


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass
class Topology:
    www: Path
    node: str = f"{PREFIX}n"
    outside: str = f"{PREFIX}x"
    httpd: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, pod: str) -> str:
        return f"{PREFIX}{pod}"

    @property
    def namespaces(self) -> list[str]:
        return [self.node, self.outside, *(self.ns(p) for p in PODS)]

    def build(self) -> None:
        for ns in self.namespaces:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        n = self.node
        sh("ip", "-n", n, "link", "add", "kbr0", "type", "bridge")
        sh("ip", "-n", n, "addr", "add", "10.244.0.1/24", "dev", "kbr0")
        sh("ip", "-n", n, "link", "set", "kbr0", "up")
        for pod, ip in PODS.items():
            sh("ip", "-n", n, "link", "add", f"v{pod}", "type", "veth", "peer", "name", "eth0",
               "netns", self.ns(pod))
            sh("ip", "-n", n, "link", "set", f"v{pod}", "master", "kbr0", "up")
            sh("ip", "-n", self.ns(pod), "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", self.ns(pod), "link", "set", "eth0", "up")
            sh("ip", "-n", self.ns(pod), "route", "add", "default", "via", "10.244.0.1")
        for ip in CLIENT_SOURCES:
            sh("ip", "-n", self.ns("client"), "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", n, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
           "netns", self.outside)
        sh("ip", "-n", n, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        sh("ip", "-n", n, "link", "set", "eth0", "up")
        sh("ip", "-n", self.outside, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        sh("ip", "-n", self.outside, "link", "set", "eth0", "up")
        sh("ip", "-n", self.outside, "route", "add", f"{EXTERNAL_IP}/32", "via", NODE_IP)
        sh("ip", "-n", n, "route", "add", "10.96.0.0/12", "dev", "kbr0", "src", "10.244.0.1")
        sh("ip", "netns", "exec", n, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        for pod in BACKENDS:
            (self.www / pod).mkdir()
            (self.www / pod / "index.html").write_text(pod)
            self.start_httpd(pod)
            self.processes.append(self._spawn(pod, sys.executable, "-c", ECHO, pod))
            self.processes.append(self._spawn(pod, sys.executable, "-c", UDP_ECHO, pod))

    def _spawn(self, pod: str, *argv: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", self.ns(pod), *argv],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_httpd(self, pod: str) -> None:
        self.httpd[pod] = self._spawn(pod, "busybox", "httpd", "-f", "-p", "80", "-h",
                                      str(self.www / pod))

    def kill_httpd(self, pod: str) -> None:
        proc = self.httpd.pop(pod)
        proc.kill()
        proc.wait()

    def teardown(self) -> None:
        for proc in [*self.httpd.values(), *self.processes]:
            proc.kill()
            proc.wait()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    if os.geteuid() != 0:
        pytest.fail("the userspace proxy tests need root (network namespaces)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing tools: {', '.join(missing)}")
    topo = Topology(tmp_path_factory.mktemp("www"))
    try:
        topo.build()
        yield topo
    finally:
        topo.teardown()
    assert not list_netns(PREFIX), "namespaces left behind"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"),
                      extra_args=["--proxy-mode", "userspace"])
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def proxy(cluster: Cluster, topology: Topology) -> AsyncIterator[ServiceProxy]:
    client = Client.for_cluster(cluster.config)
    factory = InformerFactory(client)
    proxy = ServiceProxy(factory, mode="userspace", node_name=NODE_NAME, node_ips=[NODE_IP],
                         netns=topology.node, pod_cidr="10.244.0.0/24",
                         cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12",
                         min_sync_period=0.05)
    factory.start()
    task = asyncio.create_task(proxy.run())
    try:
        yield proxy
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await factory.stop()
        await client.close()
        await cleanup("userspace", topology.node)
        for kind in ("service", "endpointslice", "pod"):
            cluster.kubectl("delete", kind, "-l", "kubesvc-test=userspace", "--wait=false")


def service(name: str, ip: str, *, port: int = 80, protocol: str = "TCP", scheduler: str = "",
            **spec: Any) -> dict[str, Any]:
    spec_port = {"name": "p", "port": port, "protocol": protocol}
    if "nodePort" in spec:
        spec_port["nodePort"] = spec.pop("nodePort")
    annotations = {"kubesvc.io/scheduler": scheduler} if scheduler else {}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations,
                         "labels": {"kubesvc-test": "userspace"}},
            "spec": {"clusterIP": ip, "ports": [spec_port], **spec}}


def endpoint_slice(service_name: str, pods: list[str], *, port: int = 80,
                   protocol: str = "TCP") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-test", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name,
                                    "endpointslice.kubernetes.io/managed-by": "kubesvc-test",
                                    "kubesvc-test": "userspace"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [PODS[p]], "conditions": {"ready": True},
                           "nodeName": NODE_NAME} for p in pods],
            "ports": [{"name": "p", "port": port, "protocol": protocol}]}


async def connect(netns: str, host: str, port: int = 80,
                  source: str | None = None) -> socket.socket:
    sock = await open_socket(netns)
    if source:
        sock.bind((source, 0))
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), 3)
    except BaseException:
        sock.close()
        raise
    return sock


async def http_get(netns: str, host: str, port: int = 80, source: str | None = None) -> str:
    """GET / from inside `netns`; the body."""
    loop = asyncio.get_running_loop()
    sock = await connect(netns, host, port, source)
    try:
        await loop.sock_sendall(sock, f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), 5):
            data += chunk
    finally:
        sock.close()
    return data.decode().partition("\r\n\r\n")[2]


async def exchange(sock: socket.socket, message: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, message)
    return await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except (OSError, AssertionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def answers(netns: str, host: str, n: int, port: int = 80) -> list[str]:
    return [await http_get(netns, host, port) for _ in range(n)]


async def test_the_seed_walkthrough_reaches_nginx_through_the_cluster_ip(
        cluster: Cluster) -> None:
    """The seed's ClusterIP steps, in a real cluster whose own proxy runs in userspace mode."""
    tour = Walkthrough(cluster.kubeconfig, echo=lambda _line: None)
    examples = tour.examples
    tour.kubectl("apply", "-f", str(examples / "server.yaml"), "-f",
                 str(examples / "service.yaml"), "-f", str(examples / "client.yaml"))
    tour.kubectl("rollout", "status", "deployment/nginx", "--timeout=120s")
    tour.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s")
    cluster_ip = cluster.kubectl("get", "service", "nginx", "-o",
                                 "jsonpath={.spec.clusterIP}").stdout
    assert TITLE in tour.kubectl("exec", "client", "--", "wget", "-q", "-O", "-", cluster_ip)
    assert TITLE in tour.kubectl("exec", "client", "--", "wget", "-q", "-O", "-", "nginx")
    assert TITLE in tour.kubectl("exec", "client", "--", "sh", "-c",
                                 "wget -q -O - $NGINX_SERVICE_HOST")


async def test_cluster_ip_node_port_load_balancer_and_external_ip(
        proxy: ServiceProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("web", "10.96.200.10", type="LoadBalancer", nodePort=30280,
                          externalIPs=[EXTERNAL_IP]),
                  endpoint_slice("web", ["pod1", "pod2"]))
    client = topology.ns("client")
    await portal(topology, "10.96.200.10")
    assert await http_get(client, "10.96.200.10") in BACKENDS
    out = subprocess.run(["ip", "netns", "exec", client, "timeout", "5", "busybox", "wget",
                          "-qO-", "http://10.96.200.10/"], capture_output=True, text=True)
    assert out.stdout in BACKENDS
    assert set(await answers(topology.node, "10.96.200.10", 10)) == set(BACKENDS)
    lb_ip = await eventually(lambda: _lb_ip(cluster, "web"))
    subprocess.run(["ip", "-n", topology.outside, "route", "replace", f"{lb_ip}/32", "via",
                    NODE_IP], check=True)
    await portal(topology, lb_ip)
    for host, port in ((NODE_IP, 30280), (lb_ip, 80), (EXTERNAL_IP, 80)):
        assert set(await answers(topology.outside, host, 10, port)) == set(BACKENDS), host
    assert "10.96.200.10 . tcp . 80" in await programmed_rules("userspace", topology.node)


async def _lb_ip(cluster: Cluster, name: str) -> str:
    out = cluster.kubectl("get", "service", name, "-o",
                          "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout
    assert out, "no LoadBalancer IP yet"
    return out


def pick(scheduler: Scheduler, client: str, dest: str) -> int:
    """What kubesvc's own picker says the relay will choose."""
    index = scheduler.pick(client, dest)
    assert index is not None
    return index


async def portal(topology: Topology, ip: str, port: int = 80, present: bool = True) -> None:
    """Wait until the rules redirect (or, `present` False, no longer redirect) ip:port: a
    connection sent before would only time out."""
    async def check() -> None:
        rules = await programmed_rules("userspace", topology.node)
        assert (f"{ip} . tcp . {port} :" in rules) == present

    await eventually(check)


async def scheduled(cluster: Cluster, topology: Topology, name: str, ip: str, scheduler: str,
                    **spec: Any) -> str:
    cluster.apply(service(name, ip, scheduler=scheduler, **spec),
                  endpoint_slice(name, ["pod1", "pod2"]))
    await portal(topology, ip)
    return topology.ns("client")


async def test_rr_alternates(proxy: ServiceProxy, cluster: Cluster,
                             topology: Topology) -> None:
    client = await scheduled(cluster, topology, "rr", "10.96.200.20", "")  # rr by default
    seen = await answers(client, "10.96.200.20", 8)
    assert all(a != b for a, b in itertools.pairwise(seen)), seen


async def test_wrr_follows_the_pods_weights(proxy: ServiceProxy, cluster: Cluster,
                                           topology: Topology) -> None:
    for pod, weight in (("pod1", "3"), ("pod2", "1")):
        cluster.apply({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": f"weighted-{pod}", "namespace": "default",
                                    "labels": {"kubesvc-test": "userspace"},
                                    "annotations": {"kubesvc.io/weight": weight}},
                       "spec": {"nodeName": "elsewhere",
                                "containers": [{"name": "c", "image": "busybox"}]}})
        cluster.kubectl("patch", "pod", f"weighted-{pod}", "--subresource=status",
                        "--type=merge", "-p",
                        f'{{"status": {{"podIP": "{PODS[pod]}", '
                        f'"podIPs": [{{"ip": "{PODS[pod]}"}}]}}}}')
    try:
        client = await scheduled(cluster, topology, "wrr", "10.96.200.21", "wrr")

        async def weighted() -> None:
            seen = Counter(await answers(client, "10.96.200.21", 8))
            assert seen == {"pod1": 6, "pod2": 2}, seen

        await eventually(weighted)
    finally:  # the other tests' backends weigh 1
        cluster.kubectl("delete", "pod", "weighted-pod1", "weighted-pod2", "--grace-period=0",
                        "--force", "--wait=false")
        await eventually(lambda: _unweighted(proxy))


async def _unweighted(proxy: ServiceProxy) -> None:
    assert {proxy.weights.weight(PODS[p]) for p in BACKENDS} == {1}


@pytest.mark.parametrize("scheduler", ["lc", "sed", "nq"])
async def test_a_held_connection_sends_new_ones_to_the_other_backend(
        proxy: ServiceProxy, cluster: Cluster, topology: Topology, scheduler: str) -> None:
    ip = {"lc": "10.96.200.22", "sed": "10.96.200.23", "nq": "10.96.200.24"}[scheduler]
    cluster.apply(service(scheduler, ip, port=7, scheduler=scheduler),
                  endpoint_slice(scheduler, ["pod1", "pod2"], port=7))
    client = topology.ns("client")
    await portal(topology, ip, 7)
    held = await connect(client, ip, 7)
    try:
        holder = (await exchange(held, b"hi")).decode().split(":")[0]
        for _ in range(3):  # each new one, while the first is held, goes to the idle backend
            other = await connect(client, ip, 7)
            try:
                assert (await exchange(other, b"hi")).decode().split(":")[0] != holder
            finally:
                other.close()
            await eventually(lambda: _relayed(proxy, scheduler, 1))  # only the held one
    finally:
        held.close()


async def _relayed(proxy: ServiceProxy, name: str, count: int) -> None:
    """Wait until the relay has seen the client close: a half-closed relay still counts."""
    assert isinstance(proxy.dataplane, UserspaceDataplane)
    port = ServicePortName("default", name, "p", "TCP")
    assert sum(proxy.dataplane.connections(port).values()) == count


async def test_sh_keeps_each_client_address_on_one_backend(
        proxy: ServiceProxy, cluster: Cluster, topology: Topology) -> None:
    client = await scheduled(cluster, topology, "sh", "10.96.200.25", "sh")
    expected = [BACKENDS[pick(SourceHashing([1, 1]), src, "")] for src in CLIENT_SOURCES]
    for _ in range(2):
        seen = [await http_get(client, "10.96.200.25", source=src) for src in CLIENT_SOURCES]
        assert seen == expected


async def test_dh_chooses_by_destination(proxy: ServiceProxy, cluster: Cluster,
                                         topology: Topology) -> None:
    client = await scheduled(cluster, topology, "dh", "10.96.200.26", "dh",
                             externalIPs=[EXTERNAL_IP])
    dh = DestinationHashing([1, 1])
    for dest in ("10.96.200.26", EXTERNAL_IP):
        expected = BACKENDS[pick(dh, "", dest)]
        assert set(await answers(client, dest, 4)) == {expected}, dest


async def test_retries_hide_a_killed_backend(proxy: ServiceProxy, cluster: Cluster,
                                             topology: Topology) -> None:
    client = await scheduled(cluster, topology, "retry", "10.96.200.27", "")
    topology.kill_httpd("pod2")  # its endpoint stays: only retrying hides it
    try:
        assert await answers(client, "10.96.200.27", 20) == ["pod1"] * 20
    finally:
        topology.start_httpd("pod2")
    await eventually(lambda: _both(client, "10.96.200.27"))


async def _both(client: str, ip: str) -> None:
    assert set(await answers(client, ip, 4)) == set(BACKENDS)


async def test_client_ip_affinity_holds_for_its_timeout(
        proxy: ServiceProxy, cluster: Cluster, topology: Topology) -> None:
    client = await scheduled(cluster, topology, "sticky", "10.96.200.28", "",
                             sessionAffinity="ClientIP",
                             sessionAffinityConfig={"clientIP": {"timeoutSeconds": 1}})
    first = await http_get(client, "10.96.200.28")
    for _ in range(6):
        await asyncio.sleep(0.3)
        assert await http_get(client, "10.96.200.28") == first  # each renews the affinity
    await asyncio.sleep(1.5)
    assert await http_get(client, "10.96.200.28") != first  # rr's next, once it expired


async def test_services_come_and_go_without_disturbing_other_connections(
        proxy: ServiceProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("steady", "10.96.200.30", port=7), endpoint_slice("steady", ["pod1"],
                                                                             port=7))
    client = topology.ns("client")
    await portal(topology, "10.96.200.30", 7)
    held = await connect(client, "10.96.200.30", 7)
    try:
        assert await exchange(held, b"1") == b"pod1:1"
        cluster.apply(service("other", "10.96.200.31"), endpoint_slice("other", ["pod2"]))
        await portal(topology, "10.96.200.31")
        assert await http_get(client, "10.96.200.31") == "pod2"
        cluster.kubectl("delete", "service", "other")
        cluster.apply(endpoint_slice("steady", ["pod2"], port=7))  # pod1 leaves the endpoints

        async def moved() -> None:
            sock = await connect(client, "10.96.200.30", 7)
            try:
                assert await exchange(sock, b"2") == b"pod2:2"
            finally:
                sock.close()

        await eventually(moved)
        assert await exchange(held, b"3") == b"pod1:3"  # left to finish
        cluster.kubectl("delete", "service", "steady")
        await portal(topology, "10.96.200.30", 7, present=False)
        assert await exchange(held, b"4") == b"pod1:4"
    finally:
        held.close()


async def test_a_service_without_endpoints_is_refused(
        proxy: ServiceProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("empty", "10.96.200.32"), endpoint_slice("empty", []))
    client = topology.ns("client")

    async def refused() -> None:
        with pytest.raises(ConnectionRefusedError):
            await connect(client, "10.96.200.32")

    await eventually(refused)


async def test_udp_goes_through_the_relay_and_follows_endpoints(
        proxy: ServiceProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("dns", "10.96.200.40", port=53, protocol="UDP"),
                  endpoint_slice("dns", ["pod1"], port=5353, protocol="UDP"))
    loop = asyncio.get_running_loop()
    sock = await open_socket(topology.ns("client"), socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("0.0.0.0", 40053))

        async def ask() -> str:
            await loop.sock_sendto(sock, b"?", ("10.96.200.40", 53))
            data, sender = await asyncio.wait_for(loop.sock_recvfrom(sock, 100), 1.0)
            assert sender == ("10.96.200.40", 53)
            return data.decode()

        assert await eventually(ask) == "pod1"
        cluster.apply(endpoint_slice("dns", ["pod2"], port=5353, protocol="UDP"))

        async def moved() -> None:
            assert await ask() == "pod2"

        await eventually(moved)
    finally:
        sock.close()


async def test_rules_and_counts(proxy: ServiceProxy, topology: Topology) -> None:
    assert "kubesvc-userspace" in await programmed_rules("userspace", topology.node)
    counts = proxy.dataplane.counts()
    assert counts["listeners"] > 0 and counts["elements"] > 0
