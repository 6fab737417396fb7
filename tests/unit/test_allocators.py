import ipaddress
import random
from typing import Any

import pytest

from kubesvc.api.allocators import (
    DEFAULT_SERVICE_CIDR,
    AlreadyAllocatedError,
    IPAllocator,
    NotInRangeError,
    PortAllocator,
    RangeFullError,
    ServiceAllocators,
    indexed_ip,
)
from kubesvc.api.errors import ApiError

Obj = dict[str, Any]


def rng() -> random.Random:
    return random.Random(7)


def allocators(cidr: str = DEFAULT_SERVICE_CIDR, ports: str = "30000-32767") -> ServiceAllocators:
    return ServiceAllocators(IPAllocator.for_cidr(cidr, rng()), PortAllocator(ports, rng()))


def service(name: str = "nginx", **spec: Any) -> Obj:
    spec.setdefault("selector", {"run": name})
    spec.setdefault("ports", [{"port": 80, "protocol": "TCP", "targetPort": 80}])
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def invalid_message(err: pytest.ExceptionInfo[ApiError]) -> str:
    assert err.value.code == 422
    assert err.value.reason == "Invalid"
    return err.value.message


# --- ranges ----------------------------------------------------------------------------------


def test_service_cidr_reserves_kubernetes_and_kube_dns_addresses() -> None:
    ips = IPAllocator.for_cidr(rng=rng())
    assert ips.spec == "10.96.0.0/12"
    assert ips.size == 2**20 - 2  # neither the network nor the broadcast address
    kubernetes, kube_dns = indexed_ip(DEFAULT_SERVICE_CIDR, 1), indexed_ip(DEFAULT_SERVICE_CIDR, 10)
    assert (kubernetes, kube_dns) == ("10.96.0.1", "10.96.0.10")
    ips.allocate_specific(kubernetes)
    ips.allocate_specific(kube_dns)
    assert ips.is_allocated("10.96.0.1") and ips.is_allocated("10.96.0.10")
    assert not ips.is_allocated("10.96.0.2")
    assert ips.used == 2


def test_dynamic_allocation_avoids_the_static_band() -> None:
    ips = IPAllocator.for_cidr(rng=rng())
    static_end = ipaddress.IPv4Address("10.96.1.0")  # 256 addresses above 10.96.0.0
    taken = [ips.allocate_next() for _ in range(500)]
    assert len(set(taken)) == 500
    assert all(ipaddress.IPv4Address(ip) > static_end for ip in taken)
    ports = PortAllocator(rng=rng())
    assert all(ports.allocate_next() >= 30086 for _ in range(500))  # 2768/32 = 86 static


def test_static_band_is_used_only_once_the_rest_is_full() -> None:
    ips = IPAllocator.for_cidr("10.0.0.0/27", rng())  # 30 usable, the lowest 16 static
    first = [ips.allocate_next() for _ in range(14)]
    assert sorted(int(ip.rsplit(".", 1)[1]) for ip in first) == list(range(17, 31))
    rest = [ips.allocate_next() for _ in range(16)]
    assert sorted(int(ip.rsplit(".", 1)[1]) for ip in rest) == list(range(1, 17))
    with pytest.raises(RangeFullError, match=r"^range is full$"):
        ips.allocate_next()


def test_ip_errors_use_kubernetes_wording() -> None:
    ips = IPAllocator.for_cidr(rng=rng())
    ips.allocate_specific("10.96.0.5")
    with pytest.raises(AlreadyAllocatedError, match=r"^provided IP is already allocated$"):
        ips.allocate_specific("10.96.0.5")
    with pytest.raises(NotInRangeError) as err:
        ips.allocate_specific("10.112.0.1")
    assert str(err.value) == ("the provided IP (10.112.0.1) is not in the valid range. "
                              "The range of valid IPs is 10.96.0.0/12")
    for outside in ("10.96.0.0", "10.111.255.255", "fd00::1", "not-an-ip"):
        with pytest.raises(NotInRangeError):
            ips.allocate_specific(outside)


def test_release_frees_and_ignores_values_it_does_not_hold() -> None:
    ips = IPAllocator.for_cidr("10.0.0.0/29", rng())
    ips.allocate_specific("10.0.0.3")
    ips.release("10.0.0.3")
    ips.release("10.0.0.3")
    ips.release("192.168.0.1")
    assert not ips.is_allocated("10.0.0.3")
    ips.allocate_specific("10.0.0.3")


def test_load_balancer_pool_as_a_range_or_a_cidr() -> None:
    pool = IPAllocator.for_pool("192.168.49.100-192.168.49.102", rng())
    assert pool.spec == "192.168.49.100-192.168.49.102"
    assert sorted(pool.allocate_next() for _ in range(3)) == \
        ["192.168.49.100", "192.168.49.101", "192.168.49.102"]
    with pytest.raises(RangeFullError):
        pool.allocate_next()
    pool.release("192.168.49.101")
    assert pool.allocate_next() == "192.168.49.101"
    cidr_pool = IPAllocator.for_pool("192.168.50.0/30", rng())
    assert sorted(cidr_pool.allocate_next() for _ in range(2)) == ["192.168.50.1", "192.168.50.2"]
    single = IPAllocator.for_pool("192.168.51.7/32", rng())
    assert single.allocate_next() == "192.168.51.7"
    with pytest.raises(ValueError):
        IPAllocator.for_pool("192.168.49.102-192.168.49.100")


def test_port_range_errors_and_exhaustion() -> None:
    ports = PortAllocator("30000-30004", rng())
    assert sorted(ports.allocate_next() for _ in range(5)) == list(range(30000, 30005))
    with pytest.raises(RangeFullError, match=r"^range is full$"):
        ports.allocate_next()
    with pytest.raises(AlreadyAllocatedError, match=r"^provided port is already allocated$"):
        ports.allocate_specific(30002)
    with pytest.raises(NotInRangeError) as err:
        ports.allocate_specific(80)
    assert str(err.value) == ("provided port is not in the valid range. "
                              "The range of valid ports is 30000-30004")
    with pytest.raises(ValueError):
        PortAllocator("70000-70001")


def test_rebuild_takes_what_is_in_use_and_reports_what_is_outside() -> None:
    ips = IPAllocator.for_cidr("10.0.0.0/29", rng())  # .1 to .6
    ips.allocate_specific("10.0.0.6")
    outside = ips.rebuild(["10.0.0.1", "10.0.0.2", "10.0.0.2", "10.9.9.9"])
    assert outside == ["10.9.9.9"]
    assert not ips.is_allocated("10.0.0.6")  # rebuilding forgets the old state
    fresh = {ips.allocate_next() for _ in range(4)}
    assert fresh == {"10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}


def test_indexed_ip_rejects_indexes_outside_the_cidr() -> None:
    assert indexed_ip("10.43.0.0/16", 10) == "10.43.0.10"
    with pytest.raises(ValueError):
        indexed_ip("10.0.0.0/30", 4)


# --- Services: create ------------------------------------------------------------------------


def test_cluster_ip_service_gets_an_ip_and_its_families() -> None:
    allocs = allocators()
    created, txn = allocs.allocate(service())
    txn.commit()
    spec = created["spec"]
    assert spec["clusterIP"] == spec["clusterIPs"][0]
    assert allocs.cluster_ips.is_allocated(spec["clusterIP"])
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert "nodePort" not in spec["ports"][0]


def test_allocate_does_not_mutate_its_input() -> None:
    original = service(type="NodePort")
    allocators().allocate(original)
    assert original == service(type="NodePort")


def test_requested_cluster_ip_is_honoured() -> None:
    allocs = allocators()
    created, _ = allocs.allocate(service(clusterIP="10.96.0.10"))
    assert created["spec"]["clusterIPs"] == ["10.96.0.10"]
    created, _ = allocs.allocate(service("b", clusterIPs=["10.96.0.11"]))
    assert created["spec"]["clusterIP"] == "10.96.0.11"


def test_headless_and_external_name_services_get_no_ip() -> None:
    allocs = allocators()
    headless, _ = allocs.allocate(service(clusterIP="None"))
    assert headless["spec"]["clusterIPs"] == ["None"]
    assert headless["spec"]["ipFamilyPolicy"] == "SingleStack"
    selectorless, _ = allocs.allocate(service(clusterIP="None", selector={}))
    assert selectorless["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    assert selectorless["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    external, _ = allocs.allocate(service(type="ExternalName", externalName="example.com"))
    assert "clusterIP" not in external["spec"] and "ipFamilies" not in external["spec"]
    assert allocs.cluster_ips.used == 0


def test_node_port_and_load_balancer_services_get_node_ports() -> None:
    allocs = allocators()
    node_port, _ = allocs.allocate(service(type="NodePort"))
    assert 30000 <= node_port["spec"]["ports"][0]["nodePort"] <= 32767
    lb, _ = allocs.allocate(service("lb", type="LoadBalancer", externalTrafficPolicy="Local"))
    hc = lb["spec"]["healthCheckNodePort"]
    assert allocs.node_ports.is_allocated(hc) and hc != lb["spec"]["ports"][0]["nodePort"]
    no_ports, _ = allocs.allocate(service("np", type="LoadBalancer",
                                          allocateLoadBalancerNodePorts=False))
    assert "nodePort" not in no_ports["spec"]["ports"][0]
    assert allocs.node_ports.used == 3


def test_user_chosen_node_port_and_shared_port_numbers() -> None:
    allocs = allocators()
    dns, _ = allocs.allocate(service("dns", type="NodePort", ports=[
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 30053},
        {"name": "metrics", "port": 9153, "protocol": "TCP"}]))
    ports = dns["spec"]["ports"]
    # TCP and UDP of one port number share the NodePort, the one the user asked for.
    assert ports[0]["nodePort"] == ports[1]["nodePort"] == 30053
    assert ports[2]["nodePort"] not in (0, 30053)
    assert allocs.node_ports.used == 2


# --- Services: errors ------------------------------------------------------------------------


def test_cluster_ip_errors() -> None:
    allocs = allocators()
    allocs.allocate(service(clusterIP="10.96.0.5"))
    with pytest.raises(ApiError) as err:
        allocs.allocate(service("x", clusterIP="10.96.0.5"))
    assert invalid_message(err) == (
        'Service "x" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.5"]: '
        "failed to allocate IP 10.96.0.5: provided IP is already allocated")
    assert err.value.causes[0].field == "spec.clusterIPs"
    with pytest.raises(ApiError) as err:
        allocs.allocate(service("x", clusterIPs=["10.97.0.300"]))
    assert invalid_message(err) == (
        'Service "x" is invalid: spec.clusterIPs[0]: Invalid value: "10.97.0.300": '
        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    with pytest.raises(ApiError) as err:
        allocs.allocate(service("x", clusterIP="10.200.0.1"))
    assert invalid_message(err).endswith(
        "failed to allocate IP 10.200.0.1: the provided IP (10.200.0.1) is not in the valid "
        "range. The range of valid IPs is 10.96.0.0/12")


def test_dual_stack_is_refused_on_a_single_stack_cluster() -> None:
    allocs = allocators()
    with pytest.raises(ApiError) as err:
        allocs.allocate(service(ipFamilyPolicy="RequireDualStack"))
    assert invalid_message(err) == (
        'Service "nginx" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": '
        "this cluster is not configured for dual-stack services")
    with pytest.raises(ApiError) as err:
        allocs.allocate(service(ipFamilies=["IPv6"]))
    assert "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster" in \
        invalid_message(err)
    assert allocs.cluster_ips.used == 0


def test_node_port_errors() -> None:
    allocs = allocators()
    allocs.allocate(service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    with pytest.raises(ApiError) as err:
        allocs.allocate(service("x", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert invalid_message(err) == ('Service "x" is invalid: spec.ports[0].nodePort: '
                                    "Invalid value: 30080: provided port is already allocated")
    with pytest.raises(ApiError) as err:
        allocs.allocate(service("x", type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert invalid_message(err).endswith(
        "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. "
        "The range of valid ports is 30000-32767")
    with pytest.raises(ApiError) as err:
        allocs.allocate(service("x", type="NodePort", ports=[
            {"port": 80, "protocol": "TCP", "nodePort": 30090},
            {"port": 81, "protocol": "TCP", "nodePort": 30090}]))
    assert invalid_message(err).endswith("spec.ports[1].nodePort: Duplicate value: 30090")
    assert err.value.causes[0].reason == "FieldValueDuplicate"


def test_exhausted_ranges_answer_422_never_500() -> None:
    allocs = allocators("10.96.0.0/30", "30000-30001")  # two IPs, two ports
    for name in ("a", "b"):
        allocs.allocate(service(name))
    with pytest.raises(ApiError) as err:
        allocs.allocate(service("c"))
    assert invalid_message(err) == ('Service "c" is invalid: spec.clusterIPs: Invalid value: []: '
                                    "failed to allocate a serviceIP: range is full")
    assert err.value.causes[0].field == "spec.clusterIPs"
    ports_only = allocators(ports="30000-30001")
    ports_only.allocate(service("a", type="NodePort", ports=[{"port": 1}, {"port": 2}]))
    with pytest.raises(ApiError) as err:
        ports_only.allocate(service("b", type="NodePort"))
    assert invalid_message(err).endswith(
        "spec.ports[0].nodePort: Invalid value: 0: failed to allocate a nodePort: range is full")


def test_a_failed_allocation_gives_back_what_it_took() -> None:
    allocs = allocators(ports="30000-30001")
    allocs.allocate(service("a", type="NodePort", ports=[{"port": 1, "nodePort": 30000}]))
    with pytest.raises(ApiError):
        allocs.allocate(service("b", type="NodePort", ports=[
            {"port": 1, "protocol": "TCP"}, {"port": 2, "protocol": "TCP", "nodePort": 30000}]))
    assert allocs.cluster_ips.used == 1
    assert allocs.node_ports.used == 1


# --- Services: update, rollback, delete ------------------------------------------------------


def create(allocs: ServiceAllocators, svc: Obj) -> Obj:
    created, txn = allocs.allocate(svc)
    txn.commit()
    return created


def test_unchanged_update_keeps_everything() -> None:
    allocs = allocators()
    old = create(allocs, service(type="LoadBalancer", externalTrafficPolicy="Local"))
    new, txn = allocs.allocate(old, old)
    assert new == old
    assert (txn.taken_ips, txn.taken_ports, txn.freed_ips, txn.freed_ports) == ([], [], [], [])


def test_resubmitting_the_manifest_keeps_allocated_values() -> None:
    allocs = allocators()
    manifest = service(type="NodePort", ports=[{"name": "http", "port": 80}])
    old = create(allocs, manifest)
    new, txn = allocs.allocate(manifest, old)
    assert new["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert new["spec"]["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]
    assert txn.taken_ports == [] and txn.freed_ports == []


def test_switching_to_load_balancer_and_back_to_cluster_ip() -> None:
    allocs = allocators()
    old = create(allocs, service())
    lb, txn = allocs.allocate({**old, "spec": {**old["spec"], "type": "LoadBalancer"}}, old)
    txn.commit()
    node_port = lb["spec"]["ports"][0]["nodePort"]
    assert lb["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert allocs.node_ports.is_allocated(node_port)
    back, txn = allocs.allocate({**lb, "spec": {**lb["spec"], "type": "ClusterIP"}}, lb)
    assert "nodePort" not in back["spec"]["ports"][0]
    assert allocs.node_ports.is_allocated(node_port)  # freed only once the write succeeded
    txn.commit()
    assert not allocs.node_ports.is_allocated(node_port)


def test_rollback_of_an_update_keeps_the_old_values_taken() -> None:
    allocs = allocators()
    old = create(allocs, service(type="NodePort"))
    old_port = old["spec"]["ports"][0]["nodePort"]
    changed = {**old, "spec": {**old["spec"], "ports": [{"port": 80, "nodePort": 31000}]}}
    _, txn = allocs.allocate(changed, old)
    assert allocs.node_ports.is_allocated(31000)
    txn.rollback()
    assert not allocs.node_ports.is_allocated(31000)
    assert allocs.node_ports.is_allocated(old_port)


def test_health_check_port_follows_the_traffic_policy() -> None:
    allocs = allocators()
    old = create(allocs, service(type="LoadBalancer", externalTrafficPolicy="Cluster"))
    local, txn = allocs.allocate({**old, "spec": {**old["spec"],
                                                  "externalTrafficPolicy": "Local"}}, old)
    txn.commit()
    hc = local["spec"]["healthCheckNodePort"]
    assert allocs.node_ports.is_allocated(hc)
    cluster, txn = allocs.allocate({**local, "spec": {**local["spec"],
                                                      "externalTrafficPolicy": "Cluster"}}, local)
    txn.commit()
    assert "healthCheckNodePort" not in cluster["spec"]
    assert not allocs.node_ports.is_allocated(hc)


def test_external_name_transitions_take_and_free_the_cluster_ip() -> None:
    allocs = allocators()
    old = create(allocs, service())
    ip = old["spec"]["clusterIP"]
    external, txn = allocs.allocate(
        {**old, "spec": {**old["spec"], "type": "ExternalName", "externalName": "a.example"}}, old)
    txn.commit()
    assert "clusterIP" not in external["spec"] and "ipFamilies" not in external["spec"]
    assert not allocs.cluster_ips.is_allocated(ip)
    back, txn = allocs.allocate({**external, "spec": {**external["spec"], "type": "ClusterIP"}},
                                external)
    txn.commit()
    assert allocs.cluster_ips.is_allocated(back["spec"]["clusterIP"])


def test_cluster_ip_may_not_change() -> None:
    allocs = allocators()
    old = create(allocs, service())
    with pytest.raises(ApiError) as err:
        allocs.allocate({**old, "spec": {**old["spec"], "clusterIP": "10.96.0.99",
                                         "clusterIPs": ["10.96.0.99"]}}, old)
    assert invalid_message(err) == ('Service "nginx" is invalid: spec.clusterIPs[0]: Invalid '
                                    'value: ["10.96.0.99"]: may not change once set')


def test_delete_releases_everything() -> None:
    allocs = allocators()
    svc = create(allocs, service(type="LoadBalancer", externalTrafficPolicy="Local"))
    assert (allocs.cluster_ips.used, allocs.node_ports.used) == (1, 2)
    allocs.release(svc)
    assert (allocs.cluster_ips.used, allocs.node_ports.used) == (0, 0)


# --- restart ---------------------------------------------------------------------------------


def test_restart_rebuilds_from_stored_services_and_never_double_allocates() -> None:
    before = allocators("10.0.0.0/29", "30000-30003")  # 6 IPs, 4 ports
    stored = [create(before, service(f"s{i}", type="NodePort")) for i in range(4)]
    after = allocators("10.0.0.0/29", "30000-30003")
    assert after.rebuild(stored) == []
    assert (after.cluster_ips.used, after.node_ports.used) == (4, 4)
    fresh, _ = after.allocate(service("new"))
    assert fresh["spec"]["clusterIP"] not in {s["spec"]["clusterIP"] for s in stored}
    with pytest.raises(ApiError, match="range is full"):
        after.allocate(service("more", type="NodePort"))


def test_rebuild_warns_about_values_held_twice_or_outside_the_ranges() -> None:
    allocs = allocators("10.0.0.0/29")
    a = service("a", clusterIP="10.0.0.2", type="NodePort",
                ports=[{"port": 53, "protocol": "UDP", "nodePort": 30053},
                       {"port": 53, "protocol": "TCP", "nodePort": 30053}])
    b = service("b", clusterIP="10.0.0.2", type="NodePort", ports=[{"port": 1, "nodePort": 30053}])
    c = service("c", clusterIP="10.9.0.1", type="NodePort", ports=[{"port": 1, "nodePort": 80}])
    headless = service("h", clusterIP="None")
    assert allocs.rebuild([a, b, c, headless]) == [
        "Cluster IP [IPv4]:10.0.0.2 was assigned to multiple services; please recreate service",
        "Port 30053 was assigned to multiple services; please recreate service",
        "Cluster IP [IPv4]:10.9.0.1 is not within the configured Service CIDR 10.0.0.0/29; "
        "please recreate service",
        "Port 80 is not within the port range 30000-32767; please recreate service",
    ]
    assert allocs.cluster_ips.is_allocated("10.0.0.2")
    assert allocs.node_ports.is_allocated(30053)
