"""userspace mode without root: its rules, its bookkeeping, and what it tells the workers."""

from typing import Any

from kubesvc.proxy import portals
from kubesvc.proxy.relay.shared import EVERY_WORKER, PortConfig, Target
from kubesvc.proxy.tracker import ChangeTracker
from kubesvc.proxy.types import Endpoint, NodeConfig, ServicePort, ServicePortName
from kubesvc.proxy.userspace import SlotTable, UserspaceDataplane
from kubesvc.proxy.weights import PodWeights

NODE = NodeConfig("node-a", ("192.0.2.2",), "10.244.0.0/16", "10.96.0.0/12")


def name(service: str, protocol: str = "TCP") -> ServicePortName:
    return ServicePortName("default", service, "", protocol)


def test_portals_redirect_every_address_of_a_service_port() -> None:
    svc = ServicePort(name("web"), "10.96.0.10", 80, node_port=30080,
                      external_ips=("203.0.113.1",), load_balancer_ips=("192.0.2.200",))
    assert portals.service_elements(svc, 41000) == {
        (portals.SERVICE_PORTALS, "10.96.0.10 . tcp . 80"): "41000",
        (portals.SERVICE_PORTALS, "203.0.113.1 . tcp . 80"): "41000",
        (portals.SERVICE_PORTALS, "192.0.2.200 . tcp . 80"): "41000",
        (portals.NODEPORT_PORTALS, "tcp . 30080"): "41000",
    }


def test_a_service_port_without_endpoints_is_refused_instead() -> None:
    svc = ServicePort(name("dns", "UDP"), "10.96.0.10", 53, node_port=30053)
    assert portals.service_elements(svc, None) == {
        (portals.NO_ENDPOINT_SERVICES, "10.96.0.10 . udp . 53"): "",
        (portals.NO_ENDPOINT_NODEPORTS, "udp . 30053"): "",
    }


def test_an_address_claimed_twice_goes_to_the_first_service_port() -> None:
    a = ServicePort(name("a"), "10.96.0.10", 80, external_ips=("203.0.113.1",))
    b = ServicePort(name("b"), "10.96.0.11", 80, external_ips=("203.0.113.1",))
    elements = portals.desired_elements([b, a], {a.name: 41000, b.name: 42000})
    assert elements[(portals.SERVICE_PORTALS, "203.0.113.1 . tcp . 80")] == "41000"


def test_full_and_partial_transactions() -> None:
    before = {(portals.SERVICE_PORTALS, "10.96.0.10 . tcp . 80"): "41000"}
    after = {(portals.SERVICE_PORTALS, "10.96.0.10 . tcp . 80"): "42000",
             (portals.NO_ENDPOINT_SERVICES, "10.96.0.11 . tcp . 80"): ""}
    full = portals.render_full(after)
    assert "delete table ip kubesvc-userspace" in full
    assert ("redirect to : ip daddr . meta l4proto . th dport map @service-portals") in full
    assert ("add element ip kubesvc-userspace service-portals "
            "{ 10.96.0.10 . tcp . 80 : 42000 }") in full
    assert portals.render_changes(before, after).splitlines() == [
        "delete element ip kubesvc-userspace service-portals { 10.96.0.10 . tcp . 80 }",
        "add element ip kubesvc-userspace no-endpoint-services { 10.96.0.11 . tcp . 80 }",
        "add element ip kubesvc-userspace service-portals { 10.96.0.10 . tcp . 80 : 42000 }",
    ]
    assert portals.render_changes(after, after) == ""


def test_slots_are_kept_while_used_and_reused_once_idle() -> None:
    slots = SlotTable()
    web = name("web")
    first = slots.assign(web, [(web, "10.244.0.2", 80), (web, "10.244.0.3", 80)])
    assert sorted(first.values()) == [0, 1]
    # 10.244.0.2 leaves with a connection still open: its slot is not reused.
    slots.assign(web, [(web, "10.244.0.3", 80)])
    active = {first[(web, "10.244.0.2", 80)]: 1}
    slots.release_idle(lambda slot: active.get(slot, 0))
    third = slots.assign(web, [(web, "10.244.0.3", 80), (web, "10.244.0.4", 80)])
    assert third[(web, "10.244.0.4", 80)] == 2
    # It comes back before that connection ended: it gets its own slot, and count, again.
    back = slots.assign(web, [(web, "10.244.0.2", 80)])
    assert back[(web, "10.244.0.2", 80)] == first[(web, "10.244.0.2", 80)]
    slots.assign(web, [])
    slots.release_idle(lambda slot: 0)
    assert sorted(slots.assign(name("other"), [(web, "x", 1), (web, "y", 1), (web, "z", 1)]
                               ).values()) == [0, 1, 2]


def test_port_configuration_travels_as_json() -> None:
    config = PortConfig(7, "UDP", "sh", 30, 1, (Target("10.244.0.2", 53, 3, 12),))
    assert PortConfig.from_json(config.to_json()) == config


def pod(pod_name: str, ip: str, weight: str | None = None, **spec: Any) -> dict[str, Any]:
    annotations = {"kubesvc.io/weight": weight} if weight is not None else {}
    return {"metadata": {"namespace": "default", "name": pod_name, "annotations": annotations},
            "spec": spec, "status": {"podIP": ip, "podIPs": [{"ip": ip}]}}


def test_pod_weights_follow_their_annotation() -> None:
    weights = PodWeights()
    assert not weights.pod_changed(None, pod("a", "10.244.0.2"))
    assert weights.pod_changed(None, pod("b", "10.244.0.3", "4"))
    assert (weights.weight("10.244.0.2"), weights.weight("10.244.0.3")) == (1, 4)
    assert weights.pod_changed(pod("b", "10.244.0.3", "4"), pod("b", "10.244.0.3", "2"))
    assert weights.weight("10.244.0.3") == 2
    # The address goes to another pod before the old one's deletion is seen.
    assert weights.pod_changed(None, pod("c", "10.244.0.3", "5"))
    assert not weights.pod_changed(pod("b", "10.244.0.3", "2"), None)
    assert weights.weight("10.244.0.3") == 5
    assert not weights.pod_changed(None, pod("h", "192.0.2.2", "9", hostNetwork=True))
    assert weights.weight("192.0.2.2") == 1


def snapshot(*objects: dict[str, Any]) -> ChangeTracker:
    tracker = ChangeTracker("node-a")
    for obj in objects:
        if "spec" in obj:
            tracker.service_changed(None, obj)
        else:
            tracker.slice_changed(None, obj)
    return tracker


def service(svc_name: str, *, protocol: str = "TCP", scheduler: str = "",
            **spec: Any) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": svc_name,
                         "annotations": {"kubesvc.io/scheduler": scheduler} if scheduler else {}},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80, "protocol": protocol}],
                     **spec}}


def endpoints(svc_name: str, *ips: str, protocol: str = "TCP") -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"{svc_name}-1",
                         "labels": {"kubernetes.io/service-name": svc_name}},
            "endpoints": [{"addresses": [ip], "nodeName": "node-b"} for ip in ips],
            "ports": [{"port": 8080, "protocol": protocol}]}


def config_of(dataplane: UserspaceDataplane, *objects: dict[str, Any]) -> PortConfig:
    update = snapshot(*objects).snapshot()
    (svc,) = update.current.services.values()
    return dataplane._config(3, svc, update.current.endpoints_of(svc.name))


def test_what_a_worker_is_told_about_a_service_port() -> None:
    weights = {"10.244.0.3": 5}
    dataplane = UserspaceDataplane(NODE, None, scheduler="lc", workers=2,
                                   weights=lambda ip: weights.get(ip, 1))
    config = config_of(dataplane, service("web"), endpoints("web", "10.244.0.2", "10.244.0.3"))
    assert (config.scheduler, config.owner, config.affinity) == ("lc", EVERY_WORKER, 0)
    assert [(t.ip, t.port, t.weight) for t in config.backends] == [
        ("10.244.0.2", 8080, 1), ("10.244.0.3", 8080, 5)]
    assert config_of(dataplane, service("web", scheduler="sh"),
                     endpoints("web", "10.244.0.2")).scheduler == "sh"
    assert config_of(dataplane, service("web", scheduler="mh"),
                     endpoints("web", "10.244.0.2")).scheduler == "lc"  # not in userspace


def test_per_client_state_pins_a_port_to_one_worker() -> None:
    dataplane = UserspaceDataplane(NODE, None, workers=2)
    sticky = service("web", sessionAffinity="ClientIP")
    assert config_of(dataplane, sticky, endpoints("web", "10.244.0.2")).owner == 3 % 2
    udp = service("dns", protocol="UDP")
    assert config_of(dataplane, udp, endpoints("dns", "10.244.0.2", protocol="UDP")).owner == 1


def test_only_ready_endpoints_unless_none_is() -> None:
    dataplane = UserspaceDataplane(NODE, None, workers=1)
    svc = ServicePort(name("web"), "10.96.0.10", 80)
    ready = Endpoint("10.244.0.2", 80)
    leaving = Endpoint("10.244.0.3", 80, ready=False, serving=True, terminating=True)
    assert [t.ip for t in dataplane._config(0, svc, (ready, leaving)).backends] == [
        "10.244.0.2"]
    assert [t.ip for t in dataplane._config(0, svc, (leaving,)).backends] == ["10.244.0.3"]
