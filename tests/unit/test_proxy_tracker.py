"""Services and EndpointSlices folded into snapshots: parsing, categorizing, change tracking.

The builders at the top are shared by the other proxy unit tests. Conventions (kube-proxy's
test conventions): endpoints in 10.180.0.0/24 run on this node ("node-a"), others elsewhere.
"""

from __future__ import annotations

from typing import Any

from kubesvc.proxy.topology import categorize_endpoints
from kubesvc.proxy.tracker import ChangeTracker
from kubesvc.proxy.types import (
    Endpoint,
    ProxySnapshot,
    ServicePort,
    ServicePortName,
    service_ports,
    slice_endpoints,
)

Obj = dict[str, Any]
TERMINATING = {"ready": False, "serving": True, "terminating": True}
NOT_READY = {"ready": False}


def service(name: str, cluster_ip: str, *, namespace: str = "ns1", port: int = 80,
            port_name: str = "p80", protocol: str = "TCP", node_port: int | None = None,
            lb_ips: tuple[str, ...] = (), **spec: Any) -> Obj:
    svc_port: Obj = {"name": port_name, "port": port, "protocol": protocol}
    if node_port is not None:
        svc_port["nodePort"] = node_port
    obj: Obj = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"namespace": namespace, "name": name, "resourceVersion": "1"},
                "spec": {"clusterIP": cluster_ip, "ports": [svc_port], **spec}}
    if lb_ips:
        obj["spec"].setdefault("type", "LoadBalancer")
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in lb_ips]}}
    return obj


def endpoint_slice(service_name: str, *endpoints: str | tuple[str, Obj],
                   namespace: str = "ns1", port: int = 80, port_name: str = "p80",
                   protocol: str = "TCP", name: str | None = None,
                   trigger_time: str | None = None) -> Obj:
    items = []
    for ep in endpoints:
        ip, conditions = (ep, {"ready": True}) if isinstance(ep, str) else ep
        items.append({"addresses": [ip], "conditions": conditions,
                      "nodeName": "node-a" if ip.startswith("10.180.0.") else "node-b"})
    meta: Obj = {"namespace": namespace, "name": name or f"{service_name}-abc",
                 "labels": {"kubernetes.io/service-name": service_name}}
    if trigger_time:
        meta["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": trigger_time}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
            "addressType": "IPv4", "endpoints": items,
            "ports": [{"name": port_name, "port": port, "protocol": protocol}]}


def feed(tracker: ChangeTracker, *objs: Obj) -> None:
    for obj in objs:
        if obj["kind"] == "Service":
            tracker.service_changed(None, obj)
        else:
            tracker.slice_changed(None, obj)


def snapshot_of(*objs: Obj) -> ProxySnapshot:
    tracker = ChangeTracker("node-a")
    feed(tracker, *objs)
    return tracker.snapshot().current


SVC1 = ServicePortName("ns1", "svc1", "p80", "TCP")


def test_service_ports_of_every_type() -> None:
    lb = service("svc1", "172.30.0.41", node_port=3001, lb_ips=("1.2.3.4",),
                 externalIPs=["192.168.99.1", "2001:db8::1"], externalTrafficPolicy="Local",
                 sessionAffinity="ClientIP")
    assert service_ports(lb) == {SVC1: ServicePort(
        SVC1, "172.30.0.41", 80, node_port=3001, external_ips=("192.168.99.1",),
        load_balancer_ips=("1.2.3.4",), affinity_timeout=10800, external_policy_local=True)}
    # A ClusterIP Service ignores a stray nodePort and externalTrafficPolicy.
    plain = service("svc1", "172.30.0.41", node_port=3001, externalTrafficPolicy="Local",
                    sessionAffinity="ClientIP",
                    sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    assert service_ports(plain)[SVC1] == ServicePort(SVC1, "172.30.0.41", 80,
                                                     affinity_timeout=60)
    annotated = service("svc1", "172.30.0.41")
    annotated["metadata"]["annotations"] = {"kubesvc.io/scheduler": "lc"}
    assert service_ports(annotated)[SVC1].scheduler == "lc"
    assert service_ports(service("svc1", "None")) == {}
    assert service_ports(service("svc1", "", type="ExternalName")) == {}


def test_slice_endpoints_conditions() -> None:
    obj = endpoint_slice("svc1", "10.180.0.1", ("10.180.1.1", TERMINATING),
                         ("10.180.1.2", NOT_READY), ("10.180.1.3", {}))
    assert slice_endpoints(obj, "node-a") == {SVC1: (
        Endpoint("10.180.0.1", 80, local=True),
        Endpoint("10.180.1.1", 80, ready=False, serving=True, terminating=True),
        Endpoint("10.180.1.2", 80, ready=False, serving=False),
        Endpoint("10.180.1.3", 80),  # unset conditions: ready
    )}
    assert slice_endpoints({**obj, "addressType": "IPv6"}, "node-a") == {}


def _port(**kw: Any) -> ServicePort:
    return ServicePort(SVC1, "172.30.0.41", 80, **kw)


READY_LOCAL = Endpoint("10.180.0.1", 80, local=True)
READY_REMOTE = Endpoint("10.180.1.1", 80)
TERM_LOCAL = Endpoint("10.180.0.2", 80, ready=False, terminating=True, local=True)
TERM_REMOTE = Endpoint("10.180.1.2", 80, ready=False, terminating=True)


def test_categorize_prefers_ready_and_falls_back_to_terminating() -> None:
    cat = categorize_endpoints(_port(), (READY_REMOTE, TERM_LOCAL))
    assert (cat.cluster, cat.local, cat.reachable, cat.has_any) == (
        (READY_REMOTE,), (), (READY_REMOTE,), True)
    cat = categorize_endpoints(_port(), (TERM_LOCAL, TERM_REMOTE))
    assert cat.cluster == (TERM_LOCAL, TERM_REMOTE) and cat.has_any
    cat = categorize_endpoints(_port(), (Endpoint("10.180.1.3", 80, ready=False),))
    assert (cat.cluster, cat.has_any) == ((), False)


def test_categorize_local_policies() -> None:
    itp = _port(internal_policy_local=True)
    cat = categorize_endpoints(itp, (READY_LOCAL, READY_REMOTE))
    assert (cat.cluster, cat.local, cat.reachable) == ((), (READY_LOCAL,), (READY_LOCAL,))
    cat = categorize_endpoints(itp, (READY_REMOTE,))
    assert (cat.local, cat.has_any) == ((), True)  # endpoints exist, none here: drop, not reject
    etp = _port(node_port=3001, external_policy_local=True)
    cat = categorize_endpoints(etp, (READY_REMOTE, TERM_LOCAL))
    # Local falls back to the terminating local endpoint; cluster still uses the ready one.
    assert (cat.cluster, cat.local, cat.reachable) == (
        (READY_REMOTE,), (TERM_LOCAL,), (TERM_LOCAL, READY_REMOTE))


def test_tracker_reports_only_real_changes() -> None:
    tracker = ChangeTracker("node-a")
    feed(tracker, service("svc1", "172.30.0.41"), endpoint_slice("svc1", "10.180.0.1"))
    first = tracker.snapshot()
    assert first.changed == {SVC1}
    assert first.current.endpoints_of(SVC1) == (READY_LOCAL,)
    # A new resourceVersion with the same content needs no sync.
    touched = service("svc1", "172.30.0.41")
    touched["metadata"]["resourceVersion"] = "2"
    assert not tracker.service_changed(service("svc1", "172.30.0.41"), touched)
    assert not tracker.pending()
    # A change undone before the next snapshot is not reported.
    assert tracker.slice_changed(None, endpoint_slice("svc1", "10.180.0.9"))
    assert tracker.slice_changed(None, endpoint_slice("svc1", "10.180.0.1"))
    again = tracker.snapshot()
    assert again.changed == frozenset()
    assert again.current.endpoints == first.current.endpoints
    # Snapshots are immutable: the first one still shows what it showed.
    tracker.service_changed(touched, None)
    gone = tracker.snapshot()
    assert gone.changed == {SVC1} and SVC1 not in gone.current.services
    assert SVC1 in first.current.services


def test_tracker_merges_slices_and_keeps_unchanged_services() -> None:
    tracker = ChangeTracker("node-a")
    feed(tracker, service("svc1", "172.30.0.41"), service("svc2", "172.30.0.42"),
         endpoint_slice("svc1", "10.180.0.1", name="svc1-a"),
         endpoint_slice("svc1", "10.180.1.1", "10.180.0.1", name="svc1-b"))
    first = tracker.snapshot()
    assert first.current.endpoints_of(SVC1) == (READY_LOCAL, READY_REMOTE)
    tracker.slice_changed(endpoint_slice("svc1", name="svc1-b"), None)
    update = tracker.snapshot()
    assert update.changed == {SVC1}
    assert update.current.endpoints_of(SVC1) == (READY_LOCAL,)
    svc2 = ServicePortName("ns1", "svc2", "p80", "TCP")
    assert update.current.services[svc2] is first.current.services[svc2]


def test_tracker_trigger_times() -> None:
    tracker = ChangeTracker("node-a")
    feed(tracker, service("svc1", "172.30.0.41"),
         endpoint_slice("svc1", "10.180.0.1", trigger_time="2024-05-06T07:08:09Z"))
    tracker.slice_changed(None, endpoint_slice("svc1", "10.180.0.2",
                                               trigger_time="2024-05-06T07:08:19Z"))
    update = tracker.snapshot()
    assert update.trigger_times == {"ns1/svc1": 1714979289.0}  # the earliest one
    assert tracker.snapshot().trigger_times == {}


def test_tracker_counts_pending_changes() -> None:
    tracker = ChangeTracker("node-a")
    feed(tracker, service("svc1", "172.30.0.41"), endpoint_slice("svc1", "10.180.0.1"),
         endpoint_slice("svc2", "10.180.0.2"))
    assert (tracker.pending_service_changes, tracker.pending_endpoint_changes) == (1, 2)
    tracker.snapshot()
    assert (tracker.pending_service_changes, tracker.pending_endpoint_changes) == (0, 0)
    assert (tracker.service_changes_total, tracker.endpoint_changes_total) == (1, 2)
