"""The service proxy on real namespaces (root), in both modes, fed through a real API server.

The topology is proxy_topology's, named kp<pid>…: pod1 and pod2 also answer UDP on :5353 with
their name. The node calls iptables for bridged traffic and hairpins its bridge ports, as the
research's setup did. The topology fixture checks at the end that nothing of it is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
import pytest_asyncio
from proxy_topology import (
    BACKENDS,
    EXTERNAL_IP,
    NODE_IP,
    UDP_ECHO,
    Topology,
    answers,
    built,
    delete_made,
    endpoint_slice,
    eventually,
    http_get,
    load_balancer_ip,
    running_proxy,
    service,
)

from kubesvc.kernel.netns import open_socket
from kubesvc.proxy.proxier import cleanup, programmed_rules
from kubesvc.testing import Cluster, free_port

pytestmark = [pytest.mark.root, pytest.mark.asyncio(loop_scope="module")]

PREFIX = f"kp{os.getpid() % 10000}"
TOOLS = ("ip", "bridge", "nft", "iptables-restore", "iptables-save", "conntrack", "nsenter",
         "busybox", "sysctl")


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topo = Topology(PREFIX, tmp_path_factory.mktemp("www"), servers=(UDP_ECHO,), kernel_nat=True)
    with built(topo, TOOLS):
        yield topo


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


class RunningProxy:
    """The node's proxy, which a test may stop and start again, as kube-proxy restarts."""

    def __init__(self, cluster: Cluster, topo: Topology, mode: str) -> None:
        self.cluster = cluster
        self.topo = topo
        self.mode = mode
        self.metrics_port = free_port()
        self._running: contextlib.AsyncExitStack | None = None

    async def start(self) -> None:
        self._running = contextlib.AsyncExitStack()
        await self._running.enter_async_context(
            running_proxy(self.cluster, self.topo, self.mode, self.metrics_port))

    async def stop(self) -> None:
        if self._running is not None:
            await self._running.aclose()
            self._running = None


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
        delete_made(cluster, "service", "endpointslice")


async def test_cluster_ip_from_a_client_pod(proxy: RunningProxy, cluster: Cluster,
                                            topology: Topology) -> None:
    cluster.apply(service("web", "10.96.100.10"), endpoint_slice("web", ["pod1", "pod2"]))
    client = topology.ns("client")
    assert await eventually(lambda: http_get(client, "10.96.100.10")) in BACKENDS
    # The seed's own check, with busybox wget from the client pod.
    out = subprocess.run(["ip", "netns", "exec", client, "timeout", "5", "busybox", "wget",
                          "-qO-", "http://10.96.100.10/"], capture_output=True, text=True)
    assert out.stdout in BACKENDS
    seen = Counter(await answers(client, "10.96.100.10", n=100))
    assert set(seen) == set(BACKENDS), seen


async def test_from_the_node_and_hairpin(proxy: RunningProxy, cluster: Cluster,
                                         topology: Topology) -> None:
    cluster.apply(service("web", "10.96.100.10"), endpoint_slice("web", ["pod1", "pod2"]),
                  service("self", "10.96.100.11"), endpoint_slice("self", ["pod1"]))
    await eventually(lambda: http_get(topology.ns("pod1"), "10.96.100.11"))
    assert set(await answers(topology.node, "10.96.100.10", n=40)) == set(BACKENDS)
    # pod1 through a Service that sends it to itself half of the time, then always.
    assert set(await answers(topology.ns("pod1"), "10.96.100.10", n=40)) == set(BACKENDS)
    assert await answers(topology.ns("pod1"), "10.96.100.11", n=10) == ["pod1"] * 10


async def test_node_port_load_balancer_and_external_ip(proxy: RunningProxy, cluster: Cluster,
                                                       topology: Topology) -> None:
    cluster.apply(service("lb", "10.96.100.12", type="LoadBalancer", nodePort=30080,
                          externalIPs=[EXTERNAL_IP]),
                  endpoint_slice("lb", ["pod1", "pod2"]))
    lb_ip = await eventually(lambda: load_balancer_ip(cluster, "lb"))
    topology.route_to_node(lb_ip)
    outside = topology.outside
    assert await eventually(lambda: http_get(outside, NODE_IP, 30080)) in BACKENDS
    for target, port in ((NODE_IP, 30080), (lb_ip, 80), (EXTERNAL_IP, 80)):
        assert set(await answers(outside, target, n=30, port=port)) == set(BACKENDS), target


async def test_service_without_endpoints_refuses_at_once(
        proxy: RunningProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("gone", "10.96.100.13"), endpoint_slice("gone", ["pod2"]))
    client = topology.ns("client")
    await eventually(lambda: http_get(client, "10.96.100.13"))
    cluster.apply(endpoint_slice("gone", []))

    async def refused(netns: str) -> None:
        try:
            await http_get(netns, "10.96.100.13")
        except ConnectionRefusedError:
            return
        raise AssertionError("still answered")

    await eventually(lambda: refused(client))
    # Refused, not timed out, from a pod and from the node alike.
    for netns in (client, topology.node):
        with pytest.raises(ConnectionRefusedError):
            await http_get(netns, "10.96.100.13")


async def test_session_affinity_keeps_a_client_on_one_pod(
        proxy: RunningProxy, cluster: Cluster, topology: Topology) -> None:
    cluster.apply(service("sticky", "10.96.100.14", sessionAffinity="ClientIP",
                          sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}}),
                  endpoint_slice("sticky", ["pod1", "pod2"]))
    client = topology.ns("client")
    await eventually(lambda: http_get(client, "10.96.100.14"))
    seen = Counter(await answers(client, "10.96.100.14", n=30))
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
        assert await answers(client, "10.96.100.10", n=10) == ["pod2"] * 10

    await eventually(only_pod2)
    assert "10.96.100.10" in await programmed_rules(mode, topology.node)
    await proxy.stop()
    await cleanup(mode, topology.node)
    assert "10.96.100.10" not in await programmed_rules(mode, topology.node)
    with pytest.raises(OSError):
        await http_get(client, "10.96.100.10", timeout=1.0)

