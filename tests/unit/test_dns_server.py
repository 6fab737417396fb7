"""ClusterDNS on loopback sockets, fed by real informers over an in-memory API: UDP and TCP,
truncation, live updates, metrics and health, and a flood of garbage."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest
import pytest_asyncio

from kubesvc.dns import upstream
from kubesvc.dns.server import ClusterDNS
from kubesvc.dns.testing import FakeApi

SVC = "svc.cluster.local"
Obj = dict[str, Any]


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service(name: str, cluster_ip: str, ns: str = "default") -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": cluster_ip,
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def endpoint_slice(svc: str, ips: list[str]) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{svc}-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


@dataclass
class Running:
    api: FakeApi
    server: ClusterDNS
    port: int
    metrics_port: int

    async def query(self, name: str, rdtype: str = "A", tcp: bool = False,
                    **kw: Any) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype, **kw)
        if tcp:
            return await dns.asyncquery.tcp(q, "127.0.0.1", port=self.port, timeout=5)
        return await dns.asyncquery.udp(q, "127.0.0.1", port=self.port, timeout=5,
                                        ignore_trailing=True)

    async def applied(self, obj: Obj) -> None:
        """Put `obj` and wait until its informer has delivered it (not for the index)."""
        self.api.put(obj)
        res = {"Service": 0, "EndpointSlice": 1, "Pod": 2, "Namespace": 3}[obj["kind"]]
        informer = self.server.informers[res]
        key = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}".lstrip("/")
        while (informer.cache.get(key) or {}).get("metadata", {}).get("resourceVersion") != \
                obj["metadata"]["resourceVersion"]:
            await asyncio.sleep(0.001)

    async def http(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{self.metrics_port}{path}") as resp:
            return resp.status, await resp.text()


def bind(kind: int, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", port))
    return sock


def bind_pair() -> tuple[socket.socket, socket.socket]:
    """UDP and TCP on one free port number (a free UDP port may be taken for TCP)."""
    for _ in range(100):
        udp = bind(socket.SOCK_DGRAM)
        try:
            return udp, bind(socket.SOCK_STREAM, udp.getsockname()[1])
        except OSError:
            udp.close()
    raise AssertionError("no port number free for both UDP and TCP")


@pytest_asyncio.fixture
async def running() -> AsyncIterator[Running]:
    api = FakeApi()
    for obj in (namespace("default"), service("nginx", "10.96.0.20"),
                service("web", "None"), endpoint_slice("web", ["10.244.0.5"])):
        api.put(obj)
    factory = api.informers()
    server = ClusterDNS(factory, upstreams=[])  # never the machine's own resolver
    udp, tcp = bind_pair()
    port = udp.getsockname()[1]
    metrics = bind(socket.SOCK_STREAM)
    factory.start()
    task = asyncio.create_task(server.serve(udp, tcp, metrics))
    async with asyncio.timeout(30):
        while not server.ready:
            await asyncio.sleep(0.01)
    try:
        yield Running(api, server, port, metrics.getsockname()[1])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await factory.stop()
    assert udp.fileno() == -1 and tcp.fileno() == -1


async def test_answers_over_udp_and_tcp(running: Running) -> None:
    for tcp in (False, True):
        msg = await running.query(f"nginx.default.{SVC}", tcp=tcp)
        assert [rd.to_text() for rd in msg.answer[0]] == ["10.96.0.20"]
    assert (await running.query(f"nope.default.{SVC}")).rcode() == dns.rcode.NXDOMAIN


async def test_new_service_and_scaled_headless_are_answered_at_once(running: Running) -> None:
    assert (await running.query(f"fresh.default.{SVC}")).rcode() == dns.rcode.NXDOMAIN
    await running.applied(service("fresh", "10.96.0.44"))
    msg = await running.query(f"fresh.default.{SVC}")
    assert [rd.to_text() for rd in msg.answer[0]] == ["10.96.0.44"]
    await running.applied(endpoint_slice("web", ["10.244.0.5", "10.244.0.6", "10.244.0.7"]))
    msg = await running.query(f"web.default.{SVC}")
    assert sorted(rd.to_text() for rd in msg.answer[0]) == ["10.244.0.5", "10.244.0.6",
                                                            "10.244.0.7"]
    running.api.delete(service("fresh", "10.96.0.44"))
    await running.applied(service("other", "10.96.0.45"))  # events arrive in order
    assert (await running.query(f"fresh.default.{SVC}")).rcode() == dns.rcode.NXDOMAIN


async def test_truncated_over_udp_complete_over_tcp(running: Running) -> None:
    await running.applied(endpoint_slice("web", [f"10.244.2.{i}" for i in range(1, 121)]))
    udp = await running.query(f"web.default.{SVC}", use_edns=0, payload=1232)
    assert udp.flags & dns.flags.TC
    tcp = await running.query(f"web.default.{SVC}", tcp=True)
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 120


async def test_tcp_pipelining_and_garbage(running: Running) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    queries = [dns.message.make_query(f"{name}.default.{SVC}", "A")
               for name in ("nginx", "web", "nope")]
    writer.write(b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in queries)))
    ids = set()
    for _ in queries:
        size = int.from_bytes(await reader.readexactly(2), "big")
        ids.add(dns.message.from_wire(await reader.readexactly(size)).id)
    assert ids == {q.id for q in queries}
    writer.write(b"\x00\x05hello\xff\xff" + b"x" * 100)  # junk, then a length never filled
    writer.close()
    assert (await running.query(f"nginx.default.{SVC}", tcp=True)).answer


async def test_metrics_health_and_ready(running: Running) -> None:
    await running.query(f"nginx.default.{SVC}")
    await running.query(f"nope.default.{SVC}", "AAAA")
    await running.query("outside.example.test")
    assert await running.http("/health") == (200, "OK")
    assert await running.http("/ready") == (200, "OK")
    status, text = await running.http("/metrics")
    assert status == 200
    assert 'kubesvc_dns_requests_total{proto="udp",type="A",rcode="NOERROR"} 1' in text
    assert 'kubesvc_dns_requests_total{proto="udp",type="AAAA",rcode="NXDOMAIN"} 1' in text
    assert 'kubesvc_dns_requests_total{proto="udp",type="A",rcode="SERVFAIL"} 1' in text
    assert 'kubesvc_dns_request_duration_seconds_count 3' in text
    assert "kubesvc_dns_cache_misses_total 1" in text and "kubesvc_dns_cache_hits_total 0" in text
    running.server.index.synced = False
    assert (await running.http("/ready"))[0] == 503


async def test_a_flood_of_garbage_neither_crashes_nor_stalls(running: Running) -> None:
    rng = random.Random(99)
    valid = dns.message.make_query(f"nginx.default.{SVC}", "A").to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for i in range(4000):
            if i % 2:
                packet = bytearray(valid)
                packet[rng.randrange(len(packet))] = rng.randrange(256)
                sender.sendto(bytes(packet), ("127.0.0.1", running.port))
            else:
                sender.sendto(rng.randbytes(rng.randrange(1, 200)), ("127.0.0.1", running.port))
            if i % 200 == 0:
                await asyncio.sleep(0)  # let the server drain its socket
    for _ in range(20):
        writer = (await asyncio.open_connection("127.0.0.1", running.port))[1]
        writer.write(rng.randbytes(rng.randrange(1, 300)))
        writer.close()
    msg = await running.query(f"nginx.default.{SVC}")
    assert [rd.to_text() for rd in msg.answer[0]] == ["10.96.0.20"]
    assert running.server.metrics.panics == 0


async def test_upstreams_default_to_the_node_resolv_conf(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 192.0.2.53\nnameserver 192.0.2.54\n")
    monkeypatch.setattr(upstream, "RESOLV_CONF", conf)
    server = ClusterDNS(FakeApi().informers(), zone="example.internal", ttl=5)
    assert [u.spec for u in server.forwarder.upstreams] == ["192.0.2.53", "192.0.2.54"]
    assert server.index.zone == "example.internal" and server.index.ttl == 5
