"""ipvs mode without a kernel: what each Service asks of IPVS, and the requests that get the
kernel there (the VM tests run them on a real one)."""

import pytest

from kubesvc.kernel.ipvs import (
    IP_VS_SVC_F_PERSISTENT,
    IP_VS_SVC_F_SCHED1,
    IPVSUnavailable,
    RealServer,
    RealServerStatus,
    VirtualServer,
    require_ipvs,
)
from kubesvc.proxy import ipvs_rules
from kubesvc.proxy.ipvs import Change, Desired, plan, service_addresses, virtual_servers
from kubesvc.proxy.tracker import ChangeTracker
from kubesvc.proxy.types import Endpoint, NodeConfig, ServicePort, ServicePortName

NODE = NodeConfig("node-a", ("192.0.2.2",), "10.244.0.0/16", "10.96.0.0/12")
WEB = ServicePortName("default", "web", "http", "TCP")
READY = (Endpoint("10.244.0.2", 8080, local=True), Endpoint("10.244.1.2", 8080))


def test_a_service_port_gets_a_virtual_server_per_address_and_node_port() -> None:
    svc = ServicePort(WEB, "10.96.0.10", 80, node_port=30080, external_ips=("203.0.113.1",),
                      load_balancer_ips=("192.0.2.200",), scheduler="lc")
    found = virtual_servers(svc, READY, NODE, "rr", lambda ip: 3 if ip == "10.244.1.2" else 1)
    assert [d.vs for d in found] == [
        VirtualServer("10.96.0.10", "TCP", 80, "lc"),
        VirtualServer("203.0.113.1", "TCP", 80, "lc"),
        VirtualServer("192.0.2.200", "TCP", 80, "lc"),
        VirtualServer("192.0.2.2", "TCP", 30080, "lc"),
    ]
    assert all(d.real == {("10.244.0.2", 8080): 1, ("10.244.1.2", 8080): 3} for d in found)


def test_affinity_is_persistence_and_hashing_falls_back() -> None:
    svc = ServicePort(WEB, "10.96.0.10", 80, affinity_timeout=600, scheduler="sh")
    (found,) = virtual_servers(svc, READY, NODE, "rr", lambda ip: 1)
    assert found.vs == VirtualServer("10.96.0.10", "TCP", 80, "sh",
                                     IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED1, 600)
    svc = ServicePort(WEB, "10.96.0.10", 80, scheduler="random")  # no such IPVS scheduler
    assert virtual_servers(svc, READY, NODE, "wlc", lambda ip: 1)[0].vs.scheduler == "wlc"


def test_traffic_policies_pick_the_real_servers() -> None:
    svc = ServicePort(WEB, "10.96.0.10", 80, node_port=30080, external_policy_local=True)
    cluster_ip, node_port = virtual_servers(svc, READY, NODE, "rr", lambda ip: 1)
    assert set(cluster_ip.real) == {("10.244.0.2", 8080), ("10.244.1.2", 8080)}
    assert set(node_port.real) == {("10.244.0.2", 8080)}


def status(ip: str, weight: int = 1, active: int = 0, inactive: int = 0) -> RealServerStatus:
    return RealServerStatus(RealServer(ip, 8080, weight), active, inactive, 0)


VS = VirtualServer("10.96.0.10", "TCP", 80)


def test_plan_adds_updates_and_deletes() -> None:
    stranger = VirtualServer("10.96.9.9", "TCP", 81)
    desired = {VS.key: Desired(VS, {("10.244.0.2", 8080): 2, ("10.244.0.3", 8080): 1})}
    current = {VS.key: (VirtualServer("10.96.0.10", "TCP", 80, "lc"),
                        [status("10.244.0.2"), status("10.244.0.4")]),
               stranger.key: (stranger, [])}
    assert plan(desired, current) == [
        Change("delete", stranger),
        Change("set", VS),
        Change("set", VS, RealServer("10.244.0.2", 8080, 2)),
        Change("add", VS, RealServer("10.244.0.3", 8080, 1)),
        Change("delete", VS, RealServer("10.244.0.4", 8080, 1)),
    ]
    assert plan(desired, {}) == [
        Change("add", VS),
        Change("add", VS, RealServer("10.244.0.2", 8080, 2)),
        Change("add", VS, RealServer("10.244.0.3", 8080, 1)),
    ]


def test_a_leaving_real_server_with_connections_drains_first() -> None:
    desired = {VS.key: Desired(VS, {("10.244.0.3", 8080): 1})}
    busy = {VS.key: (VS, [status("10.244.0.2", active=1), status("10.244.0.3")])}
    assert plan(desired, busy) == [Change("set", VS, RealServer("10.244.0.2", 8080, 0))]
    draining = {VS.key: (VS, [status("10.244.0.2", 0, inactive=2), status("10.244.0.3")])}
    assert plan(desired, draining) == []
    drained = {VS.key: (VS, [status("10.244.0.2", 0), status("10.244.0.3")])}
    assert plan(desired, drained) == [Change("delete", VS, RealServer("10.244.0.2", 8080, 0))]
    # Back in the endpoints before it drained: its weight comes back.
    back = {VS.key: Desired(VS, {("10.244.0.2", 8080): 1, ("10.244.0.3", 8080): 1})}
    assert plan(back, draining) == [Change("set", VS, RealServer("10.244.0.2", 8080, 1))]


def test_udp_real_servers_go_at_once() -> None:
    udp = VirtualServer("10.96.0.10", "UDP", 53)
    desired = {udp.key: Desired(udp, {})}
    current = {udp.key: (udp, [status("10.244.0.2", active=3)])}
    assert plan(desired, current) == [Change("delete", udp, RealServer("10.244.0.2", 8080))]


def tracker_with(*objects: dict[str, object]) -> ChangeTracker:
    tracker = ChangeTracker("node-a")
    for obj in objects:
        tracker.service_changed(None, obj)  # type: ignore[arg-type]
    return tracker


def test_addresses_and_masquerade_sets() -> None:
    svc = {"metadata": {"namespace": "default", "name": "web"},
           "spec": {"clusterIP": "10.96.0.10", "type": "LoadBalancer",
                    "externalIPs": ["203.0.113.1"],
                    "ports": [{"port": 80, "nodePort": 30080}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.200"}]}}}
    snapshot = tracker_with(svc).snapshot().current
    assert service_addresses(snapshot) == {"10.96.0.10", "203.0.113.1", "192.0.2.200"}
    (port,) = snapshot.services.values()
    elements = ipvs_rules.service_elements(port, READY)
    assert set(elements) == {
        (ipvs_rules.CLUSTER_IPS, "10.96.0.10 . tcp . 80"),
        (ipvs_rules.EXTERNAL_IPS, "203.0.113.1 . tcp . 80"),
        (ipvs_rules.EXTERNAL_IPS, "192.0.2.200 . tcp . 80"),
        (ipvs_rules.NODE_PORTS, "tcp . 30080"),
        (ipvs_rules.SERVICE_ADDRESSES, "10.96.0.10"),
        (ipvs_rules.SERVICE_ADDRESSES, "203.0.113.1"),
        (ipvs_rules.SERVICE_ADDRESSES, "192.0.2.200"),
        (ipvs_rules.SERVICE_PORTS, "10.96.0.10 . tcp . 80"),
        (ipvs_rules.SERVICE_PORTS, "203.0.113.1 . tcp . 80"),
        (ipvs_rules.SERVICE_PORTS, "192.0.2.200 . tcp . 80"),
        (ipvs_rules.HAIRPIN, "10.244.0.2 . 10.244.0.2"),
        (ipvs_rules.HAIRPIN, "10.244.1.2 . 10.244.1.2"),
    }
    text = ipvs_rules.render_full(NODE, elements)
    assert "ip saddr != 10.244.0.0/16 jump mark-for-masquerade" in text
    assert "fib daddr type local meta l4proto . th dport @node-ports" in text


def test_local_external_traffic_keeps_the_client_address() -> None:
    svc = ServicePort(WEB, "10.96.0.10", 80, node_port=30080, external_policy_local=True)
    elements = ipvs_rules.service_elements(svc, READY)
    assert not any(kind in (ipvs_rules.NODE_PORTS, ipvs_rules.EXTERNAL_IPS)
                   for kind, _ in elements)


async def test_this_kernel_names_the_missing_module() -> None:
    try:
        await require_ipvs()
    except IPVSUnavailable as exc:
        assert "kernel module ip_vs" in str(exc) and "CONFIG_IP_VS" in str(exc)
    else:
        pytest.fail("expected no IPVS on this machine's kernel (no CONFIG_IP_VS)")
