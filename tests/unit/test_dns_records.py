"""What Services, EndpointSlices, Pods and Namespaces put in DNS, and how the index follows them."""

from __future__ import annotations

from typing import Any

from kubesvc.dns import records
from kubesvc.dns.index import ZoneIndex
from kubesvc.dns.records import pod_records, service_records
from kubesvc.dns.render import Rec
from kubesvc.dns.wire import AAAA, CNAME, PTR, SRV, A, wire_name

Z = "cluster.local"
Obj = dict[str, Any]


def service(name: str, ns: str = "default", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def endpoint(ip: str, ready: bool | None = True, hostname: str | None = None) -> Obj:
    ep: Obj = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
    if hostname:
        ep["hostname"] = hostname
    return ep


def eps(svc: str, *endpoints: Obj, ns: str = "default", name: str = "", family: str = "IPv4",
        ports: list[Obj] | None = None) -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{svc}-x", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": family, "endpoints": list(endpoints),
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}] if ports is None
            else ports}


def pod(name: str, ip: str, ns: str = "default", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": spec, "status": {"podIP": ip, "podIPs": [{"ip": ip}], "phase": "Running"}}


PORTS = [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81},
         {"name": "dns", "port": 53, "protocol": "UDP"}]


def test_cluster_ip_service() -> None:
    recs = service_records(service("Nginx", clusterIP="10.96.0.20", ports=PORTS), [], Z)
    base = "nginx.default.svc.cluster.local"
    assert recs[base] == {Rec(A, "10.96.0.20")}
    assert recs[f"_http._tcp.{base}"] == {Rec(SRV, base, 80, 100)}
    assert recs[f"_dns._udp.{base}"] == {Rec(SRV, base, 53, 100)}
    assert recs["20.0.96.10.in-addr.arpa"] == {Rec(PTR, base, tier=records.TIER_CLUSTER_IP)}
    assert len(recs) == 4  # the unnamed port has no SRV


def test_dual_stack_cluster_ips() -> None:
    svc = service("web", clusterIP="10.96.0.21", clusterIPs=["10.96.0.21", "fd00:96::21"])
    recs = service_records(svc, [], Z)
    assert recs["web.default.svc.cluster.local"] == {Rec(A, "10.96.0.21"),
                                                     Rec(AAAA, "fd00:96::21")}
    assert records.reverse_name("fd00:96::21") in recs


def test_headless_service_from_ready_endpoints() -> None:
    svc = service("web", clusterIP="None")
    base = "web.default.svc.cluster.local"
    assert service_records(svc, [], Z) == {}  # spec: no ready endpoints, no name
    recs = service_records(svc, [eps("web", endpoint("10.244.0.5", hostname="web-0"),
                                     endpoint("10.244.0.6", ready=None),
                                     endpoint("10.244.0.7", ready=False))], Z)
    assert recs[base] == {Rec(A, "10.244.0.5"), Rec(A, "10.244.0.6")}
    assert recs[f"web-0.{base}"] == {Rec(A, "10.244.0.5")}
    assert recs[f"10-244-0-6.{base}"] == {Rec(A, "10.244.0.6")}
    assert recs[f"_http._tcp.{base}"] == {Rec(SRV, f"web-0.{base}", 8080, 50),
                                          Rec(SRV, f"10-244-0-6.{base}", 8080, 50)}
    assert recs["5.0.244.10.in-addr.arpa"] == {Rec(PTR, f"web-0.{base}",
                                                   tier=records.TIER_ENDPOINT)}
    assert not any("10-244-0-7" in name for name in recs)


def test_ipv6_endpoint_names_do_not_end_in_a_hyphen() -> None:
    recs = service_records(service("v6", clusterIP="None"),
                           [eps("v6", endpoint("fd00::"), family="IPv6")], Z)
    assert "fd00--0.v6.default.svc.cluster.local" in recs
    assert "fd00--.default.pod.cluster.local" in pod_records(pod("p", "fd00::"), Z)


def test_external_name_is_a_cname() -> None:
    svc = service("ext", type="ExternalName", externalName="Example.COM.")
    assert service_records(svc, [], Z) == {
        "ext.default.svc.cluster.local": frozenset({Rec(CNAME, "example.com")})}
    bad = service("bad", type="ExternalName", externalName="a" * 70 + ".com")
    assert service_records(bad, [], Z) == {}


def test_kube_dns_names_the_zone_nameserver() -> None:
    recs = service_records(service("kube-dns", "kube-system", clusterIP="10.96.0.10"), [], Z)
    assert recs["ns.dns.cluster.local"] == {Rec(A, "10.96.0.10")}


def test_pod_records() -> None:
    recs = pod_records(pod("p", "10.244.0.9", ns="team"), Z)
    assert recs == {"10-244-0-9.team.pod.cluster.local": frozenset({Rec(A, "10.244.0.9")}),
                    "9.0.244.10.in-addr.arpa": frozenset({Rec(
                        PTR, "10-244-0-9.team.pod.cluster.local", tier=records.TIER_POD)})}
    assert list(pod_records(pod("h", "172.30.0.2", hostNetwork=True), Z)) == [
        "172-30-0-2.default.pod.cluster.local"]
    done = pod("d", "10.244.0.10")
    done["status"]["phase"] = "Succeeded"
    assert pod_records(done, Z) == {}


# --- the index ------------------------------------------------------------------------------


def names(index: ZoneIndex) -> set[str]:
    return {e.name for e in index.entries.values()}


def test_index_empty_non_terminals_and_cleanup() -> None:
    index = ZoneIndex(Z)
    baseline = (names(index), dict(index._ents))
    svc = service("web", clusterIP="10.96.0.30", ports=PORTS)
    index.set_service(svc)
    assert index.exists(wire_name("_tcp.web.default.svc.cluster.local"))  # ENT
    assert index.exists(wire_name("default.svc.cluster.local"))
    assert not index.exists(wire_name("other.svc.cluster.local"))
    index.delete_service(svc)
    assert (names(index), dict(index._ents)) == baseline


def test_index_follows_slices_between_services() -> None:
    index = ZoneIndex(Z)
    index.set_service(service("a", clusterIP="None"))
    index.set_service(service("b", clusterIP="None"))
    index.set_slice(eps("a", endpoint("10.244.0.5"), name="s1"))
    assert "a.default.svc.cluster.local" in names(index)
    index.set_slice(eps("b", endpoint("10.244.0.5"), name="s1"))  # relabelled
    assert "a.default.svc.cluster.local" not in names(index)
    assert "b.default.svc.cluster.local" in names(index)
    index.delete_slice(eps("b", name="s1"))
    assert "b.default.svc.cluster.local" not in names(index)


def test_ptr_prefers_cluster_ip_then_endpoint_then_pod() -> None:
    index = ZoneIndex(Z)
    ptr = wire_name("5.0.244.10.in-addr.arpa")
    index.set_pod(pod("web-0", "10.244.0.5"))
    assert index.entries[ptr].records[PTR][0].value == "10-244-0-5.default.pod.cluster.local"
    index.set_service(service("web", clusterIP="None"))
    index.set_slice(eps("web", endpoint("10.244.0.5", hostname="web-0")))
    assert [r.value for r in index.entries[ptr].records[PTR]] == [
        "web-0.web.default.svc.cluster.local"]
    index.delete_pod(pod("web-0", "10.244.0.5"))
    index.delete_slice(eps("web"))
    assert ptr not in index.entries


def test_srv_reply_follows_a_target_whose_address_changed() -> None:
    index = ZoneIndex(Z)
    index.set_service(service("db", clusterIP="None"))
    index.set_slice(eps("db", endpoint("10.244.0.5", hostname="db-0")))
    srv = index.entries[wire_name("_http._tcp.db.default.svc.cluster.local")]
    assert srv.reply(SRV).ar == 1
    index.set_slice(eps("db", endpoint("10.244.0.8", hostname="db-0")))
    again = index.entries[wire_name("_http._tcp.db.default.svc.cluster.local")]
    assert again is not srv and b"\x0a\xf4\x00\x08" in again.reply(SRV).body


def test_namespace_exists_without_objects() -> None:
    index = ZoneIndex(Z)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "empty"}}
    index.set_namespace(ns)
    assert index.exists(wire_name("empty.svc.cluster.local"))
    assert index.exists(wire_name("empty.pod.cluster.local"))
    index.delete_namespace(ns)
    assert not index.exists(wire_name("empty.svc.cluster.local"))


def test_custom_zone() -> None:
    index = ZoneIndex("Example.Internal.", ttl=5)
    index.set_service(service("web", clusterIP="10.96.0.31"))
    assert wire_name("web.default.svc.example.internal") in index.entries
    assert index.in_zone(wire_name("x.example.internal"))
    assert not index.in_zone(wire_name("x.cluster.local"))
