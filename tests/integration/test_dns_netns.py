"""Cluster DNS across real network namespaces (root), queried by real clients.

Three namespaces of our own: the server's (S), an upstream resolver's (U) and a client's (C),
linked C <-> S <-> U by veth pairs on 198.18.0.0/15 (the benchmarking range; nothing on the
host uses it). The server runs on sockets bound in S and forwards to a stub resolver in U; the
client uses dig, busybox nslookup and wget, and glibc's getent with a pod-like resolv.conf
(/etc/netns/<C>/resolv.conf, which `ip netns exec` mounts). A Service's ClusterIP here is an
address on S where a small HTTP server listens, standing in for the proxy. Everything is
removed afterwards, even on failure; the machine's own resolver is never asked.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kubesvc.dns.server import ClusterDNS
from kubesvc.dns.testing import FakeApi, StubResolver
from kubesvc.kernel.netns import add_netns, delete_netns, list_netns, open_socket

pytestmark = [pytest.mark.root, pytest.mark.asyncio(loop_scope="module")]

TAG = f"kd{os.getpid() % 100000}"
SERVER_NS, UPSTREAM_NS, CLIENT_NS = f"{TAG}s", f"{TAG}u", f"{TAG}c"
DNS_IP, NGINX_IP, API_IP, CLIENT_IP = "198.18.1.1", "198.18.1.10", "198.18.1.11", "198.18.1.2"
SERVER_UP_IP, UPSTREAM_IP, UNREACHABLE_IP = "198.18.2.1", "198.18.2.2", "198.18.2.99"
SPARE_PORT = 5353  # a second server, whose upstream is an address nobody has
SVC = "svc.cluster.local"
TOOLS = ("ip", "dig", "busybox", "getent")
RESOLV_CONF = (f"nameserver {DNS_IP}\nsearch default.{SVC} {SVC} cluster.local\n"
               "options ndots:5 timeout:5 attempts:1\n")
Obj = dict[str, Any]


def _require_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("the DNS integration tests need root (network namespaces)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing tools: {', '.join(missing)} (dig: apt-get install -y dnsutils)")


async def sh(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def ip(*args: str) -> None:
    rc, out = await sh("ip", *args)
    assert rc == 0, f"ip {' '.join(args)}: {out}"


async def in_client(*argv: str) -> tuple[int, str]:
    return await sh("ip", "netns", "exec", CLIENT_NS, *argv)


@dataclass
class Dig:
    status: str
    flags: set[str]
    answer: list[list[str]] = field(default_factory=list)
    authority: list[list[str]] = field(default_factory=list)

    def data(self, rdtype: str) -> list[str]:
        return sorted(" ".join(rr[4:]) for rr in self.answer if rr[3] == rdtype)


async def dig(*args: str, port: int = 53) -> Dig:
    rc, out = await in_client("dig", f"@{DNS_IP}", "-p", str(port), "+time=5", "+tries=1",
                              "+noall", "+comments", "+answer", "+authority", *args)
    assert rc == 0, out
    result, section = Dig("", set()), None
    for line in out.splitlines():
        if "status:" in line:
            result.status = line.split("status:")[1].split(",")[0].strip()
        elif line.startswith(";; flags:"):
            result.flags = set(line.split(";")[2].split(":")[1].split())
        elif line.startswith(";; ANSWER SECTION"):
            section = result.answer
        elif line.startswith(";; AUTHORITY SECTION"):
            section = result.authority
        elif line and not line.startswith(";") and section is not None:
            section.append(line.split())
    assert result.status, out
    return result


def service(name: str, ns: str = "default", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def endpoint_slice(svc: str, ips: list[str], hostnames: bool = False) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{svc}-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True},
                           **({"hostname": f"{svc}-{i}"} if hostnames else {})}
                          for i, ip in enumerate(ips)]}


HTTP = [{"name": "http", "port": 80, "protocol": "TCP"}]
OBJECTS = [
    *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
      for ns in ("default", "team")),
    service("nginx", clusterIP=NGINX_IP, ports=HTTP),
    service("api", "team", clusterIP=API_IP, ports=HTTP),
    service("db", clusterIP="None", ports=HTTP),
    endpoint_slice("db", ["10.244.0.5", "10.244.0.6"], hostnames=True),
    service("ext", type="ExternalName", externalName="www.example.test"),
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": "default"},
     "spec": {}, "status": {"podIP": CLIENT_IP, "phase": "Running"}},
]


@dataclass
class World:
    api: FakeApi
    server: ClusterDNS
    stub: StubResolver
    stop_stub: Callable[[], Awaitable[None]]

    async def apply(self, obj: Obj) -> None:
        """Put `obj` and wait until its informer delivered it (the index updates with it)."""
        self.api.put(obj)
        kinds = {"Service": 0, "EndpointSlice": 1, "Pod": 2, "Namespace": 3}
        informer = self.server.informers[kinds[obj["kind"]]]
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        while (informer.cache.get(key) or {}).get("metadata", {}).get("resourceVersion") != \
                obj["metadata"]["resourceVersion"]:
            await asyncio.sleep(0.001)


async def _network() -> None:
    for ns in (SERVER_NS, UPSTREAM_NS, CLIENT_NS):
        await add_netns(ns)
    await ip("-n", CLIENT_NS, "link", "add", f"{TAG}c0", "type", "veth", "peer", "name",
             f"{TAG}s0", "netns", SERVER_NS)
    await ip("-n", UPSTREAM_NS, "link", "add", f"{TAG}u0", "type", "veth", "peer", "name",
             f"{TAG}s1", "netns", SERVER_NS)
    for ns, link, addresses in ((CLIENT_NS, f"{TAG}c0", [CLIENT_IP]),
                                (SERVER_NS, f"{TAG}s0", [DNS_IP, NGINX_IP, API_IP]),
                                (SERVER_NS, f"{TAG}s1", [SERVER_UP_IP]),
                                (UPSTREAM_NS, f"{TAG}u0", [UPSTREAM_IP])):
        for address in addresses:
            await ip("-n", ns, "addr", "add", f"{address}/24", "dev", link)
        await ip("-n", ns, "link", "set", link, "up")


async def _bound(netns: str, kind: int, address: str, port: int) -> socket.socket:
    sock = await open_socket(netns, socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    return sock


async def _http_server() -> asyncio.Server:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from nginx\n")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(respond, sock=await _bound(
        SERVER_NS, socket.SOCK_STREAM, NGINX_IP, 80))


async def _serve(api: FakeApi, upstream: str, port: int, tasks: list[asyncio.Task[None]],
                 metrics_port: int | None = None) -> ClusterDNS:
    factory = api.informers()
    server = ClusterDNS(factory, upstreams=[upstream], upstream_netns=SERVER_NS)
    factory.start()
    udp = await _bound(SERVER_NS, socket.SOCK_DGRAM, DNS_IP, port)
    tcp = await _bound(SERVER_NS, socket.SOCK_STREAM, DNS_IP, port)
    metrics = None if metrics_port is None else \
        await _bound(SERVER_NS, socket.SOCK_STREAM, DNS_IP, metrics_port)
    tasks.append(asyncio.create_task(server.serve(udp, tcp, metrics)))
    tasks.append(asyncio.create_task(_keep(factory.stop)))
    async with asyncio.timeout(30):
        while not server.ready:
            await asyncio.sleep(0.01)
    return server


async def _keep(stop: Callable[[], Awaitable[None]]) -> None:
    """Runs `stop` when cancelled: ties an informer factory's life to the task list."""
    try:
        await asyncio.Event().wait()
    finally:
        await stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world() -> AsyncIterator[World]:
    _require_root_and_tools()
    conf_dir = Path("/etc/netns") / CLIENT_NS
    made_parent = not conf_dir.parent.exists()
    tasks: list[asyncio.Task[None]] = []
    http = None
    try:
        await _network()
        conf_dir.mkdir(parents=True)
        (conf_dir / "resolv.conf").write_text(RESOLV_CONF)
        api = FakeApi()
        for obj in OBJECTS:
            api.put(obj)
        stub = StubResolver({("www.example.test", "A"): ["192.0.2.80"],
                             ("mirror.example.test", "A"): ["192.0.2.81"]})
        stub_task = asyncio.create_task(stub.serve(
            await _bound(UPSTREAM_NS, socket.SOCK_DGRAM, UPSTREAM_IP, 53),
            await _bound(UPSTREAM_NS, socket.SOCK_STREAM, UPSTREAM_IP, 53)))
        tasks.append(stub_task)

        async def stop_stub() -> None:
            stub_task.cancel()
            await asyncio.gather(stub_task, return_exceptions=True)

        http = await _http_server()
        server = await _serve(api, UPSTREAM_IP, 53, tasks, metrics_port=9153)
        await _serve(api, UNREACHABLE_IP, SPARE_PORT, tasks)
        yield World(api, server, stub, stop_stub)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if http is not None:
            http.close()
        shutil.rmtree(conf_dir, ignore_errors=True)
        if made_parent and conf_dir.parent.exists() and not any(conf_dir.parent.iterdir()):
            conf_dir.parent.rmdir()
        for ns in (CLIENT_NS, UPSTREAM_NS, SERVER_NS):
            await delete_netns(ns)
    assert not [ns for ns in list_netns() if ns.startswith(TAG)] and not conf_dir.exists()


async def test_glibc_and_busybox_resolve_through_the_search_path(world: World) -> None:
    rc, out = await in_client("getent", "hosts", f"nginx.default.{SVC}")
    assert rc == 0 and out.split() == [NGINX_IP, f"nginx.default.{SVC}"]
    rc, out = await in_client("getent", "hosts", "nginx")
    assert rc == 0 and out.split()[0] == NGINX_IP
    rc, out = await in_client("busybox", "nslookup", "nginx.default")
    assert rc == 0 and NGINX_IP in out, out
    rc, out = await in_client("busybox", "wget", "-q", "-O", "-", "http://nginx/")
    assert rc == 0 and out == "hello from nginx\n", out


async def test_a_name_in_another_namespace(world: World) -> None:
    rc, out = await in_client("getent", "hosts", "api.team")
    assert rc == 0 and out.split()[0] == API_IP
    rc, out = await in_client("busybox", "nslookup", "api.team")
    assert rc == 0 and API_IP in out, out
    rc, _ = await in_client("getent", "hosts", "api")  # not in the client's namespace
    assert rc == 2


async def test_every_record_type_with_dig(world: World) -> None:
    a = await dig(f"nginx.default.{SVC}", "A")
    assert a.status == "NOERROR" and "aa" in a.flags and a.data("A") == [NGINX_IP]
    nodata = await dig(f"nginx.default.{SVC}", "AAAA")
    assert nodata.status == "NOERROR" and not nodata.answer
    assert nodata.authority[0][3] == "SOA"
    nx = await dig(f"nope.default.{SVC}", "A")
    assert nx.status == "NXDOMAIN" and nx.authority[0][3] == "SOA"
    assert (await dig(f"_http._tcp.nginx.default.{SVC}", "SRV")).data("SRV") == [
        f"0 100 80 nginx.default.{SVC}."]
    assert (await dig(f"_http._tcp.db.default.{SVC}", "SRV")).data("SRV") == [
        f"0 50 8080 db-0.db.default.{SVC}.", f"0 50 8080 db-1.db.default.{SVC}."]
    assert (await dig(f"db.default.{SVC}", "A")).data("A") == ["10.244.0.5", "10.244.0.6"]
    assert (await dig(f"db-1.db.default.{SVC}", "A")).data("A") == ["10.244.0.6"]
    assert (await dig("-x", NGINX_IP)).data("PTR") == [f"nginx.default.{SVC}."]
    assert (await dig("-x", CLIENT_IP)).data("PTR") == ["198-18-1-2.default.pod.cluster.local."]
    assert (await dig("-x", "10.244.0.5")).data("PTR") == [f"db-0.db.default.{SVC}."]
    assert (await dig("198-18-1-2.default.pod.cluster.local", "A")).data("A") == [CLIENT_IP]
    assert (await dig("dns-version.cluster.local", "TXT")).data("TXT") == ['"1.1.0"']
    ext = await dig(f"ext.default.{SVC}", "A")
    assert ext.data("CNAME") == ["www.example.test."] and ext.data("A") == ["192.0.2.80"]
    tcp = await dig("+tcp", f"api.team.{SVC}", "A")
    assert tcp.data("A") == [API_IP]


async def test_out_of_zone_names_go_upstream_and_are_cached(world: World) -> None:
    for _ in range(3):
        answer = await dig("mirror.example.test", "A")
        assert answer.status == "NOERROR" and answer.data("A") == ["192.0.2.81"]
        assert (await dig("missing.example.test", "A")).status == "NXDOMAIN"
    for name in ("mirror.example.test.", "missing.example.test."):
        assert world.stub.asked.count(("udp", name, "A")) == 1  # then from the cache
    rc, out = await in_client("getent", "hosts", "www.example.test")
    assert rc == 0 and out.split()[0] == "192.0.2.80"


async def test_unreachable_upstream_is_a_servfail_not_a_hang(world: World) -> None:
    answer = await dig("www.example.test", "A", port=SPARE_PORT)
    assert answer.status == "SERVFAIL"
    assert (await dig(f"nginx.default.{SVC}", "A", port=SPARE_PORT)).data("A") == [NGINX_IP]


async def test_truncation_sends_clients_to_tcp(world: World) -> None:
    await world.apply(service("big", clusterIP="None", ports=HTTP))
    await world.apply(endpoint_slice("big", [f"10.244.3.{i}" for i in range(1, 101)]))
    udp = await dig("+ignore", "+noedns", f"big.default.{SVC}", "A")
    assert "tc" in udp.flags and 0 < len(udp.answer) < 100
    retried = await dig("+noedns", f"big.default.{SVC}", "A")  # dig retries over TCP
    assert "tc" not in retried.flags and len(retried.answer) == 100
    rc, out = await in_client("getent", "ahostsv4", "big")
    assert rc == 0 and len({line.split()[0] for line in out.splitlines()}) == 100


async def test_new_service_and_scaled_headless_deployment_answered_at_once(world: World) -> None:
    assert (await dig(f"fresh.default.{SVC}", "A")).status == "NXDOMAIN"
    await world.apply(service("fresh", clusterIP="198.18.1.12", ports=HTTP))
    assert (await dig(f"fresh.default.{SVC}", "A")).data("A") == ["198.18.1.12"]
    rc, out = await in_client("getent", "hosts", "fresh")
    assert rc == 0 and out.split()[0] == "198.18.1.12"
    await world.apply(endpoint_slice("db", ["10.244.0.5", "10.244.0.6", "10.244.0.7"],
                                     hostnames=True))
    assert (await dig(f"db.default.{SVC}", "A")).data("A") == [
        "10.244.0.5", "10.244.0.6", "10.244.0.7"]
    assert (await dig(f"db-2.db.default.{SVC}", "A")).data("A") == ["10.244.0.7"]


async def test_metrics_from_the_server_namespace(world: World) -> None:
    rc, out = await sh("ip", "netns", "exec", CLIENT_NS, "busybox", "wget", "-q", "-O", "-",
                       f"http://{DNS_IP}:9153/metrics")
    assert rc == 0 and 'kubesvc_dns_requests_total{proto="udp",type="A",rcode="NOERROR"}' in out
    assert "kubesvc_dns_cache_hits_total" in out
    rc, out = await in_client("busybox", "wget", "-q", "-O", "-", f"http://{DNS_IP}:9153/ready")
    assert rc == 0 and out == "OK"


async def test_stopped_upstream_is_an_immediate_servfail(world: World) -> None:
    await world.stop_stub()
    answer = await dig("another.example.test", "A")
    assert answer.status == "SERVFAIL"
    assert (await dig("www.example.test", "A")).data("A") == ["192.0.2.80"]  # still cached
