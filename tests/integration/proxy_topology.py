"""What the proxy's tests on real namespaces (root) share: the topology they build, the proxy
they run for it, the Services they make and the traffic they send.

    outside 192.0.2.1 ── eth0 192.0.2.2  node  kbr0 10.244.0.1/24 ─┬─ pod1   10.244.0.2
    (stands for the host / a LB client)  (the proxy's rules)        ├─ pod2   10.244.0.3
                                                                    └─ client 10.244.0.4

Each test module names the namespaces with a prefix of its own. pod1 and pod2 serve HTTP on :80
(the page is their name) and run whatever servers the module asks for. The node forwards
(only inside its own namespace); the outside namespace routes the external IP to the node, and
a LoadBalancer IP once a test knows it. Traffic never leaves these namespaces.
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubesvc.client.informer import InformerFactory
from kubesvc.client.rest import Client
from kubesvc.kernel.netns import list_netns, open_socket
from kubesvc.proxy.proxier import ServiceProxy
from kubesvc.testing import Cluster

NODE_NAME = "node-a"
NODE_IP = "192.0.2.2"
OUTSIDE_IP = "192.0.2.1"
EXTERNAL_IP = "203.0.113.10"
PODS = {"pod1": "10.244.0.2", "pod2": "10.244.0.3", "client": "10.244.0.4"}
BACKENDS = ("pod1", "pod2")
LABELS = {"kubesvc-test": "proxy"}  # on every object the tests make, so delete_made finds it
T = TypeVar("T")

# A backend's UDP server on :5353: it answers every datagram with the pod's name.
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
    """The namespaces above: `prefix` and n (the node), x (outside) or the pod's name.

    `servers` are the Python programs each backend runs besides its httpd, given the pod's
    name; `client_sources` are more addresses of the client pod, for tests that choose the
    source. `kernel_nat` is for the modes that DNAT in the node's kernel: bridged traffic then
    passes netfilter, as a backend's reply to a client on the same bridge must to be un-DNATed,
    and the bridge ports hairpin, for a pod that a Service sends back to itself.
    """

    prefix: str
    www: Path
    servers: tuple[str, ...]
    client_sources: tuple[str, ...] = ()
    kernel_nat: bool = False
    httpd: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def node(self) -> str:
        return f"{self.prefix}n"

    @property
    def outside(self) -> str:
        return f"{self.prefix}x"

    def ns(self, pod: str) -> str:
        return f"{self.prefix}{pod}"

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
            port = f"v{pod}"
            sh("ip", "-n", n, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", self.ns(pod))
            sh("ip", "-n", n, "link", "set", port, "master", "kbr0", "up")
            if self.kernel_nat:
                sh("bridge", "-n", n, "link", "set", "dev", port, "hairpin", "on")
            sh("ip", "-n", self.ns(pod), "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", self.ns(pod), "link", "set", "eth0", "up")
            sh("ip", "-n", self.ns(pod), "route", "add", "default", "via", "10.244.0.1")
        for ip in self.client_sources:
            sh("ip", "-n", self.ns("client"), "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", n, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
           "netns", self.outside)
        sh("ip", "-n", n, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        sh("ip", "-n", n, "link", "set", "eth0", "up")
        sh("ip", "-n", self.outside, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        sh("ip", "-n", self.outside, "link", "set", "eth0", "up")
        self.route_to_node(EXTERNAL_IP)
        # The node itself reaches ClusterIPs through the bridge, from the bridge's address.
        sh("ip", "-n", n, "route", "add", "10.96.0.0/12", "dev", "kbr0", "src", "10.244.0.1")
        sysctls = ["net.ipv4.ip_forward=1"]
        if self.kernel_nat:
            sysctls.append("net.bridge.bridge-nf-call-iptables=1")
        sh("ip", "netns", "exec", n, "sysctl", "-q", "-w", *sysctls)
        for pod in BACKENDS:
            (self.www / pod).mkdir()
            (self.www / pod / "index.html").write_text(pod)
            self.start_httpd(pod)
            self.processes += [self._spawn(pod, sys.executable, "-c", server, pod)
                               for server in self.servers]

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

    def route_to_node(self, ip: str) -> None:
        """From outside, send `ip` (say a LoadBalancer IP, once assigned) to the node."""
        sh("ip", "-n", self.outside, "route", "replace", f"{ip}/32", "via", NODE_IP)

    def teardown(self) -> None:
        for proc in [*self.httpd.values(), *self.processes]:
            proc.kill()
            proc.wait()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


@contextlib.contextmanager
def built(topology: Topology, tools: Iterable[str]) -> Iterator[Topology]:
    """`topology`, built for the block and then removed, every namespace and process of it.
    Without root or one of `tools` it fails rather than skips: a run that could test nothing
    must not pass."""
    if os.geteuid() != 0:
        pytest.fail("the proxy integration tests need root (network namespaces)")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing tools: {', '.join(missing)}")
    try:
        topology.build()
        yield topology
    finally:
        topology.teardown()
    assert not list_netns(topology.prefix), "namespaces left behind"


@contextlib.asynccontextmanager
async def running_proxy(cluster: Cluster, topology: Topology, mode: str,
                        metrics_port: int | None = None) -> AsyncIterator[ServiceProxy]:
    """A ServiceProxy for the node namespace, running in this event loop for the block. Its
    rules stay when it stops, as kube-proxy's do."""
    client = Client.for_cluster(cluster.config)
    factory = InformerFactory(client)
    proxy = ServiceProxy(factory, mode=mode, node_name=NODE_NAME, node_ips=[NODE_IP],
                         netns=topology.node, pod_cidr="10.244.0.0/24",
                         cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12",
                         metrics_port=metrics_port, min_sync_period=0.05)
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


def delete_made(cluster: Cluster, *kinds: str) -> None:
    """Delete the objects of `kinds` the tests made, without waiting for them to go."""
    selector = ",".join(f"{key}={value}" for key, value in LABELS.items())
    for kind in kinds:
        cluster.kubectl("delete", kind, "-l", selector, "--wait=false")


def service(name: str, ip: str, *, port: int = 80, protocol: str = "TCP", scheduler: str = "",
            **spec: Any) -> dict[str, Any]:
    """A Service with one port, "p"; `scheduler` is its kubesvc.io/scheduler annotation, for
    the modes that read it, and `spec` the rest of its spec (nodePort going on the port)."""
    spec_port: dict[str, Any] = {"name": "p", "port": port, "protocol": protocol}
    if "nodePort" in spec:
        spec_port["nodePort"] = spec.pop("nodePort")
    annotations = {"kubesvc.io/scheduler": scheduler} if scheduler else {}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations,
                         "labels": LABELS},
            "spec": {"clusterIP": ip, "ports": [spec_port], **spec}}


def endpoint_slice(service_name: str, pods: list[str], *, port: int = 80,
                   protocol: str = "TCP") -> dict[str, Any]:
    """The EndpointSlice of a Service: `pods`, ready, on the proxy's node."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-test", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name,
                                    "endpointslice.kubernetes.io/managed-by": "kubesvc-test",
                                    **LABELS}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [PODS[p]], "conditions": {"ready": True},
                           "nodeName": NODE_NAME} for p in pods],
            "ports": [{"name": "p", "port": port, "protocol": protocol}]}


async def load_balancer_ip(cluster: Cluster, name: str) -> str:
    """The LoadBalancer IP of Service `name`; a check for `eventually`, as it comes later."""
    out = cluster.kubectl("get", "service", name, "-o",
                          "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout
    assert out, "no LoadBalancer IP yet"
    return out


async def connect(netns: str, host: str, port: int = 80, *, source: str | None = None,
                  timeout: float = 5.0) -> socket.socket:
    """A TCP connection from inside `netns`, from its address `source` if given. Refusals
    raise ConnectionRefusedError."""
    sock = await open_socket(netns)
    try:
        if source:
            sock.bind((source, 0))
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)),
                               timeout)
    except BaseException:
        sock.close()
        raise
    return sock


async def http_get(netns: str, host: str, port: int = 80, *, source: str | None = None,
                   timeout: float = 5.0) -> str:
    """GET / from inside `netns`; the body. `timeout` bounds connecting and each read."""
    loop = asyncio.get_running_loop()
    sock = await connect(netns, host, port, source=source, timeout=timeout)
    try:
        await loop.sock_sendall(sock, f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout):
            data += chunk
    finally:
        sock.close()
    return data.decode().partition("\r\n\r\n")[2]


async def answers(netns: str, host: str, n: int, port: int = 80) -> list[str]:
    """The bodies of `n` GETs in a row, in order."""
    return [await http_get(netns, host, port) for _ in range(n)]


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
