"""The resolver chain on synthetic objects: every record type, negative answers, EDNS0 and
truncation, forwarding with its cache and failures, and fuzzed packets."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest
import pytest_asyncio

from kubesvc.dns import upstream
from kubesvc.dns.handler import Resolver
from kubesvc.dns.index import ZoneIndex
from kubesvc.dns.metrics import Metrics
from kubesvc.dns.testing import StubResolver
from kubesvc.dns.upstream import Forwarder

Obj = dict[str, Any]
SVC = "svc.cluster.local"
UPSTREAM_RECORDS = {
    ("www.example.test", "A"): ["192.0.2.80"],
    ("www.example.test", "AAAA"): ["2001:db8::80"],
    ("big.example.test", "A"): [f"192.0.2.{i}" for i in range(1, 61)],
}


def service(name: str, ns: str = "default", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def slice_of(svc: str, ips: list[str], ns: str = "default", hostnames: bool = False) -> Obj:
    return {"metadata": {"name": f"{svc}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True},
                           **({"hostname": f"{svc}-{i}"} if hostnames else {})}
                          for i, ip in enumerate(ips)]}


def cluster_index() -> ZoneIndex:
    index = ZoneIndex("cluster.local", ttl=30)
    for ns in ("default", "team", "kube-system"):
        index.set_namespace({"metadata": {"name": ns}})
    http = [{"name": "http", "port": 80, "protocol": "TCP"}]
    index.set_service(service("nginx", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"],
                              ports=http))
    index.set_service(service("dual", clusterIP="10.96.0.21",
                              clusterIPs=["10.96.0.21", "fd00:96::21"], ports=http))
    index.set_service(service("api", "team", clusterIP="10.96.0.22", ports=http))
    index.set_service(service("kube-dns", "kube-system", clusterIP="10.96.0.10", ports=http))
    index.set_service(service("web", clusterIP="None", ports=http))
    index.set_slice(slice_of("web", ["10.244.0.5", "10.244.0.6"], hostnames=True))
    index.set_service(service("many", clusterIP="None"))
    index.set_slice(slice_of("many", [f"10.244.1.{i}" for i in range(1, 101)]))
    index.set_service(service("empty", clusterIP="None"))
    index.set_service(service("alias", type="ExternalName",
                              externalName=f"nginx.default.{SVC}"))
    index.set_service(service("ext", type="ExternalName", externalName="www.example.test"))
    index.set_service(service("gone", type="ExternalName", externalName=f"nothere.default.{SVC}"))
    index.set_pod({"metadata": {"name": "p", "namespace": "team"}, "spec": {},
                   "status": {"podIP": "10.244.0.9", "phase": "Running"}})
    index.synced = True
    return index


def bound_pair() -> tuple[socket.socket, socket.socket, int]:
    """A UDP and a TCP socket on the same free loopback port."""
    while True:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        return udp, tcp, port


@pytest_asyncio.fixture
async def stub() -> AsyncIterator[tuple[StubResolver, str]]:
    resolver = StubResolver(UPSTREAM_RECORDS)
    udp, tcp, port = bound_pair()
    task = asyncio.create_task(resolver.serve(udp, tcp))
    await asyncio.sleep(0)
    try:
        yield resolver, f"127.0.0.1:{port}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def make_resolver(upstreams: list[str] | None = None) -> Resolver:
    metrics = Metrics()
    return Resolver(cluster_index(), Forwarder(upstreams or [], None, metrics), metrics)


async def ask(resolver: Resolver, name: str, rdtype: str = "A", proto: str = "udp",
              source: str = "", **kw: Any) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    out = resolver.answer(query.to_wire(), proto, source)
    if out is not None and not isinstance(out, bytes):
        out = await out
    assert isinstance(out, bytes)
    reply = dns.message.from_wire(out)
    assert reply.id == query.id and reply.question == query.question
    return reply


def texts(msg: dns.message.Message, section: str = "answer") -> list[str]:
    return sorted(rr.to_text() for rrset in getattr(msg, section) for rr in [rrset])


def rdatas(msg: dns.message.Message, rdtype: str) -> list[str]:
    return sorted(rd.to_text() for rrset in msg.answer for rd in rrset
                  if rrset.rdtype == dns.rdatatype.from_text(rdtype))


# --- the cluster zone -----------------------------------------------------------------------


async def test_service_a_aaaa_and_case() -> None:
    r = make_resolver()
    msg = await ask(r, f"NGINX.Default.{SVC}")
    assert msg.rcode() == dns.rcode.NOERROR and msg.flags & dns.flags.AA
    assert rdatas(msg, "A") == ["10.96.0.20"]
    assert msg.answer[0].name.to_text() == f"NGINX.Default.{SVC}."
    assert rdatas(await ask(r, f"dual.default.{SVC}", "AAAA"), "AAAA") == ["fd00:96::21"]
    assert rdatas(await ask(r, f"api.team.{SVC}"), "A") == ["10.96.0.22"]


async def test_headless_and_endpoint_names() -> None:
    r = make_resolver()
    assert rdatas(await ask(r, f"web.default.{SVC}"), "A") == ["10.244.0.5", "10.244.0.6"]
    assert rdatas(await ask(r, f"web-1.web.default.{SVC}"), "A") == ["10.244.0.6"]
    msg = await ask(r, f"empty.default.{SVC}")
    assert msg.rcode() == dns.rcode.NXDOMAIN  # headless without ready endpoints


async def test_srv_for_named_ports() -> None:
    r = make_resolver()
    msg = await ask(r, f"_http._tcp.nginx.default.{SVC}", "SRV")
    assert rdatas(msg, "SRV") == [f"0 100 80 nginx.default.{SVC}."]
    assert texts(msg, "additional") == [f"nginx.default.{SVC}. 30 IN A 10.96.0.20"]
    msg = await ask(r, f"_http._tcp.web.default.{SVC}", "SRV")
    assert rdatas(msg, "SRV") == [f"0 50 8080 web-0.web.default.{SVC}.",
                                  f"0 50 8080 web-1.web.default.{SVC}."]
    assert len(msg.additional) == 2
    assert (await ask(r, f"_http._udp.nginx.default.{SVC}", "SRV")).rcode() == dns.rcode.NXDOMAIN


async def test_ptr_for_cluster_ips_endpoints_and_pods() -> None:
    r = make_resolver()
    assert rdatas(await ask(r, "20.0.96.10.in-addr.arpa", "PTR"), "PTR") == [
        f"nginx.default.{SVC}."]
    assert rdatas(await ask(r, "5.0.244.10.in-addr.arpa", "PTR"), "PTR") == [
        f"web-0.web.default.{SVC}."]
    assert rdatas(await ask(r, "9.0.244.10.in-addr.arpa", "PTR"), "PTR") == [
        "10-244-0-9.team.pod.cluster.local."]
    v6 = dns.reversename.from_address("fd00:96::21").to_text()
    assert rdatas(await ask(r, v6, "PTR"), "PTR") == [f"dual.default.{SVC}."]


async def test_pod_records() -> None:
    r = make_resolver()
    assert rdatas(await ask(r, "10-244-0-9.team.pod.cluster.local"), "A") == ["10.244.0.9"]
    msg = await ask(r, "10-244-0-9.default.pod.cluster.local")  # another namespace's IP
    assert msg.rcode() == dns.rcode.NXDOMAIN


async def test_external_name_in_zone_target_is_followed() -> None:
    r = make_resolver()
    msg = await ask(r, f"alias.default.{SVC}")
    assert texts(msg) == sorted([f"alias.default.{SVC}. 30 IN CNAME nginx.default.{SVC}.",
                                 f"nginx.default.{SVC}. 30 IN A 10.96.0.20"])
    msg = await ask(r, f"alias.default.{SVC}", "CNAME")
    assert rdatas(msg, "CNAME") == [f"nginx.default.{SVC}."] and len(msg.answer) == 1
    msg = await ask(r, f"gone.default.{SVC}")
    assert msg.rcode() == dns.rcode.NXDOMAIN and rdatas(msg, "CNAME")
    assert msg.authority[0].rdtype == dns.rdatatype.SOA


async def test_zone_apex_schema_version_and_nameserver() -> None:
    r = make_resolver()
    soa = await ask(r, "cluster.local", "SOA")
    assert rdatas(soa, "SOA")[0].startswith("ns.dns.cluster.local. hostmaster.cluster.local.")
    assert rdatas(await ask(r, "cluster.local", "NS"), "NS") == ["ns.dns.cluster.local."]
    assert rdatas(await ask(r, "ns.dns.cluster.local"), "A") == ["10.96.0.10"]
    assert rdatas(await ask(r, "dns-version.cluster.local", "TXT"), "TXT") == ['"1.1.0"']
    assert len((await ask(r, f"dual.default.{SVC}", "ANY")).answer) == 2


@pytest.mark.parametrize(("name", "rdtype", "rcode"), [
    (f"nginx.default.{SVC}", "AAAA", dns.rcode.NOERROR),  # the name exists: NODATA
    (f"nginx.default.{SVC}", "MX", dns.rcode.NOERROR),
    (f"_tcp.nginx.default.{SVC}", "A", dns.rcode.NOERROR),  # empty non-terminal
    (f"default.{SVC}", "A", dns.rcode.NOERROR),  # a namespace
    (SVC, "A", dns.rcode.NOERROR),
    ("pod.cluster.local", "A", dns.rcode.NOERROR),
    ("dns-version.cluster.local", "A", dns.rcode.NOERROR),
    (f"nothere.default.{SVC}", "A", dns.rcode.NXDOMAIN),
    (f"nginx.nons.{SVC}", "A", dns.rcode.NXDOMAIN),
    (f"nginx.default.{SVC}.default.{SVC}", "A", dns.rcode.NXDOMAIN),  # a search-path miss
    ("foo.cluster.local", "A", dns.rcode.NXDOMAIN),
])
async def test_negative_answers_carry_the_soa(name: str, rdtype: str, rcode: int) -> None:
    msg = await ask(make_resolver(), name, rdtype)
    assert msg.rcode() == rcode and not msg.answer
    (soa,) = msg.authority
    assert soa.rdtype == dns.rdatatype.SOA and soa.name.to_text() == "cluster.local."
    assert soa.ttl == 30 and soa[0].minimum == 30


async def test_not_synced_is_servfail_rather_than_nxdomain() -> None:
    r = make_resolver()
    r.index.synced = False
    assert (await ask(r, f"nothere.default.{SVC}")).rcode() == dns.rcode.SERVFAIL
    assert rdatas(await ask(r, f"nginx.default.{SVC}"), "A") == ["10.96.0.20"]


async def test_other_classes_and_zone_transfers_are_refused() -> None:
    r = make_resolver()
    msg = await ask(r, f"nginx.default.{SVC}", "A", rdclass="CH")
    assert msg.rcode() == dns.rcode.REFUSED
    assert (await ask(r, "cluster.local", "AXFR", proto="tcp")).rcode() == dns.rcode.REFUSED


async def test_short_names_are_searched_for_clients_that_do_not(
        stub: tuple[StubResolver, str]) -> None:
    server, address = stub
    r = make_resolver([address])
    msg = await ask(r, "nginx.default")  # busybox nslookup sends the name as typed
    assert texts(msg) == sorted([f"nginx.default. 30 IN CNAME nginx.default.{SVC}.",
                                 f"nginx.default.{SVC}. 30 IN A 10.96.0.20"])
    assert not msg.flags & dns.flags.AA
    assert rdatas(await ask(r, "api", source="10.244.0.9"), "CNAME") == [f"api.team.{SVC}."]
    assert rdatas(await ask(r, "www.example.test"), "A") == ["192.0.2.80"]
    assert (await ask(r, "api")).rcode() == dns.rcode.NXDOMAIN  # no namespace to search
    assert (await ask(r, "default")).rcode() == dns.rcode.NXDOMAIN  # a name without records
    assert [name for _, name, _ in server.asked] == ["www.example.test.", "api.", "default."]


async def test_replayed_replies_follow_changes() -> None:
    r = make_resolver()
    wire = dns.message.make_query(f"nginx.default.{SVC}", "A").to_wire()
    first = r.answer(wire, "udp")
    assert r.answer(wire, "udp") == first
    r.index.set_service(service("nginx", clusterIP="10.96.0.99", ports=[]))
    again = r.answer(wire, "udp")
    assert isinstance(again, bytes)
    assert rdatas(dns.message.from_wire(again), "A") == ["10.96.0.99"]


# --- EDNS0 and truncation -------------------------------------------------------------------


async def test_edns_is_echoed_with_our_payload_and_do() -> None:
    r = make_resolver()
    msg = await ask(r, f"nginx.default.{SVC}", use_edns=0, payload=4096, want_dnssec=True)
    assert msg.edns == 0 and msg.payload == 1232 and msg.ednsflags & dns.flags.DO
    assert (await ask(r, f"nginx.default.{SVC}")).edns == -1


async def test_large_answers_truncate_over_udp_only() -> None:
    r = make_resolver()
    small = await ask(r, f"many.default.{SVC}")
    assert small.flags & dns.flags.TC and 0 < len(small.answer[0]) < 100
    edns = await ask(r, f"many.default.{SVC}", use_edns=0, payload=1232)
    assert edns.flags & dns.flags.TC and len(small.answer[0]) < len(edns.answer[0]) < 100
    full = await ask(r, f"many.default.{SVC}", proto="tcp")
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == 100


# --- forwarding -----------------------------------------------------------------------------


async def test_forwarding_and_cache(stub: tuple[StubResolver, str]) -> None:
    server, address = stub
    r = make_resolver([address])
    msg = await ask(r, "WWW.Example.test")
    assert rdatas(msg, "A") == ["192.0.2.80"] and msg.answer[0].ttl == 60
    assert msg.question[0].name.to_text() == "WWW.Example.test."
    assert not msg.flags & dns.flags.AA and msg.flags & dns.flags.RA
    again = await ask(r, "www.example.test", use_edns=0)
    assert rdatas(again, "A") == ["192.0.2.80"] and again.edns == 0
    assert server.asked == [("udp", "www.example.test.", "A")]
    assert (r.metrics.cache_hits, r.metrics.cache_misses) == (1, 1)
    for cached in r.forwarder.cache.values():  # ten seconds later, TTLs have aged
        cached.stored -= 10
        cached.expires -= 10
    assert (await ask(r, "www.example.test")).answer[0].ttl == 50


async def test_negative_upstream_answers_are_cached_for_the_soa_minimum(
        stub: tuple[StubResolver, str]) -> None:
    server, address = stub
    r = make_resolver([address])
    for _ in range(2):
        msg = await ask(r, "nope.example.test")
        assert msg.rcode() == dns.rcode.NXDOMAIN and msg.authority
    assert len(server.asked) == 1
    (cached,) = r.forwarder.cache.values()
    assert cached.expires - cached.stored == 5


async def test_truncated_upstream_answer_is_fetched_over_tcp(
        stub: tuple[StubResolver, str]) -> None:
    server, address = stub
    r = make_resolver([address])
    msg = await ask(r, "big.example.test", proto="tcp")
    assert len(msg.answer[0]) == 60
    assert [proto for proto, _, _ in server.asked] == ["udp", "tcp"]
    udp = await ask(r, "big.example.test")  # from the cache, truncated for a 512-byte client
    assert udp.flags & dns.flags.TC and len(server.asked) == 2


async def test_concurrent_misses_share_one_upstream_question(
        stub: tuple[StubResolver, str]) -> None:
    server, address = stub
    r = make_resolver([address])
    answers = await asyncio.gather(*(ask(r, "www.example.test", "AAAA") for _ in range(20)))
    assert all(rdatas(a, "AAAA") == ["2001:db8::80"] for a in answers)
    assert len(server.asked) == 1


async def test_external_name_outside_the_zone_is_resolved_upstream(
        stub: tuple[StubResolver, str]) -> None:
    _, address = stub
    msg = await ask(make_resolver([address]), f"ext.default.{SVC}")
    assert texts(msg) == sorted([f"ext.default.{SVC}. 30 IN CNAME www.example.test.",
                                 "www.example.test. 60 IN A 192.0.2.80"])
    alone = await ask(make_resolver(), f"ext.default.{SVC}")
    assert alone.rcode() == dns.rcode.NOERROR and rdatas(alone, "CNAME") == ["www.example.test."]


async def test_no_upstream_is_an_immediate_servfail() -> None:
    r = make_resolver()
    assert (await ask(r, "www.example.test")).rcode() == dns.rcode.SERVFAIL
    assert (await ask(r, "1.2.0.192.in-addr.arpa", "PTR")).rcode() == dns.rcode.SERVFAIL


async def test_refusing_upstream_is_servfail_then_skipped() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    r = make_resolver([f"127.0.0.1:{port}"])
    assert (await ask(r, "www.example.test")).rcode() == dns.rcode.SERVFAIL
    assert r.metrics.upstream_failures == 1
    (down,) = r.forwarder.upstreams
    assert down.down_until > time.monotonic()
    assert (await ask(r, "other.example.test")).rcode() == dns.rcode.SERVFAIL
    assert r.metrics.upstream_failures == 1  # skipped, not asked again


async def test_silent_upstream_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "ATTEMPT_TIMEOUT", 0.05)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        r = make_resolver([f"127.0.0.1:{silent.getsockname()[1]}"])
        for _ in range(upstream.FAILS_BEFORE_DOWN):
            assert (await ask(r, "www.example.test")).rcode() == dns.rcode.SERVFAIL
        assert r.forwarder.upstreams[0].down_until > time.monotonic()
    r.forwarder.close()


def test_nameservers_and_addresses(tmp_path: Any) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example\nnameserver 192.0.2.53\nnameserver fd00::53\n"
                    "options ndots:2\n")
    assert upstream.nameservers(conf) == ["192.0.2.53", "fd00::53"]
    assert upstream.nameservers(tmp_path / "missing") == []
    assert upstream.parse_address("192.0.2.1:5353") == (socket.AF_INET, ("192.0.2.1", 5353))
    assert upstream.parse_address("[fd00::1]:54")[1] == ("fd00::1", 54, 0, 0)
    assert upstream.parse_address("fd00::1")[1] == ("fd00::1", 53, 0, 0)


# --- fuzzing --------------------------------------------------------------------------------


def mutations(rng: random.Random, seeds: list[bytes], count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        packet = bytearray(rng.choice(seeds))
        kind = rng.randrange(4)
        if kind == 0:  # flip bytes
            for _ in range(rng.randint(1, 4)):
                packet[rng.randrange(len(packet))] = rng.randrange(256)
        elif kind == 1:  # cut short
            packet = packet[:rng.randrange(len(packet))]
        elif kind == 2:  # wild counts
            packet[4:12] = rng.randbytes(8)
        else:  # junk appended
            packet += rng.randbytes(rng.randrange(1, 64))
        out.append(bytes(packet))
    return out


async def test_fuzzed_packets_never_raise() -> None:
    rng = random.Random(1234)
    r = make_resolver()
    seeds = [dns.message.make_query(name, rdtype, use_edns=edns).to_wire()
             for name, rdtype, edns in [(f"nginx.default.{SVC}", "A", 0),
                                        (f"alias.default.{SVC}", "A", -1),
                                        ("20.0.96.10.in-addr.arpa", "PTR", 0),
                                        ("www.example.test", "AAAA", 0),
                                        (f"many.default.{SVC}", "A", -1)]]
    packets = mutations(rng, seeds, 3000) + [rng.randbytes(rng.randrange(0, 300))
                                             for _ in range(2000)]
    answered = 0
    for packet in packets:
        for proto in ("udp", "tcp"):
            out = r.answer(packet, proto)
            if out is not None and not isinstance(out, bytes):
                out = await out
            if out is not None:
                answered += 1
                assert out[:2] == packet[:2] and out[2] & 0x80
    assert answered > 1000
    assert rdatas(await ask(r, f"nginx.default.{SVC}"), "A") == ["10.96.0.20"]
