"""userspace mode on real namespaces (root): the seed's walkthrough, each scheduler over live
backends, retries, affinity, UDP, and Services coming and going.

One `kubesvc up --proxy-mode userspace` serves the walkthrough with real pods; the rest runs a
ServiceProxy in this process against that cluster's API, its relay workers in the node of
proxy_topology's namespaces (named ku<pid>…). pod1 and pod2 also run a TCP echo on :7 that
prefixes their name, and UDP on :5353 answering with their name; the client pod has the
addresses 10.244.0.20-.23 as well, for tests that vary the source.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from proxy_topology import (
    BACKENDS,
    EXTERNAL_IP,
    LABELS,
    NODE_IP,
    PODS,
    UDP_ECHO,
    Topology,
    answers,
    built,
    connect,
    delete_made,
    endpoint_slice,
    eventually,
    http_get,
    load_balancer_ip,
    running_proxy,
    service,
)

from kubesvc.kernel.netns import open_socket
from kubesvc.proxy.proxier import ServiceProxy, cleanup, programmed_rules
from kubesvc.proxy.schedulers import DestinationHashing, Scheduler, SourceHashing
from kubesvc.proxy.types import ServicePortName
from kubesvc.proxy.userspace import UserspaceDataplane
from kubesvc.testing import Cluster
from kubesvc.walkthrough import Walkthrough

pytestmark = [pytest.mark.root, pytest.mark.asyncio(loop_scope="module")]

PREFIX = f"ku{os.getpid() % 10000}"
TOOLS = ("ip", "bridge", "nft", "conntrack", "nsenter", "busybox", "sysctl")
CLIENT_SOURCES = tuple(f"10.244.0.{n}" for n in range(20, 24))
TITLE = "<title>Welcome to nginx!</title>"

# A backend's TCP echo on :7: it sends back what it reads, after the pod's name.
TCP_ECHO = """import socket, sys, threading
def serve(conn):
    with conn:
        while data := conn.recv(4096):
            conn.sendall(sys.argv[1].encode() + b":" + data)
server = socket.create_server(("0.0.0.0", 7))
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topo = Topology(PREFIX, tmp_path_factory.mktemp("www"), servers=(TCP_ECHO, UDP_ECHO),
                    client_sources=CLIENT_SOURCES)
    with built(topo, TOOLS):
        yield topo


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
    try:
        async with running_proxy(cluster, topology, "userspace") as proxy:
            yield proxy
    finally:
        await cleanup("userspace", topology.node)
        delete_made(cluster, "service", "endpointslice", "pod")


async def exchange(sock: socket.socket, message: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, message)
    return await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)


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
    lb_ip = await eventually(lambda: load_balancer_ip(cluster, "web"))
    topology.route_to_node(lb_ip)
    await portal(topology, lb_ip)
    for host, port in ((NODE_IP, 30280), (lb_ip, 80), (EXTERNAL_IP, 80)):
        assert set(await answers(topology.outside, host, 10, port)) == set(BACKENDS), host
    assert "10.96.200.10 . tcp . 80" in await programmed_rules("userspace", topology.node)


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
                                    "labels": LABELS,
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
