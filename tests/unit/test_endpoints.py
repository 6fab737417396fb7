import copy
from datetime import UTC, datetime
from itertools import count
from typing import Any

from kubesvc.api.endpoints import (
    HEADLESS_LABEL,
    SERVICE_NAME_LABEL,
    SLICE_MANAGED_BY_LABEL,
    TRIGGER_TIME_ANNOTATION,
    SliceChanges,
    desired_endpoints,
    mirror_slices,
    reconcile_endpoints,
    reconcile_slices,
    repack_subsets,
    should_mirror,
)

Obj = dict[str, Any]

T1 = datetime(2024, 5, 6, 7, 8, 9, 120000, tzinfo=UTC)
T2 = datetime(2024, 5, 6, 7, 9, 0, tzinfo=UTC)


def service(name: str = "nginx", **spec: Any) -> Obj:
    spec.setdefault("selector", {"run": name})
    spec.setdefault("clusterIP", "10.97.244.221")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ports", [{"port": 80, "protocol": "TCP", "targetPort": 80}])
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "labels": {"app": name}},
            "spec": spec}


def pod(name: str, ip: str, ready: bool = True, labels: Obj | None = None,
        namespace: str = "default", ports: list[Obj] | None = None, **extra: Any) -> Obj:
    obj: Obj = {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                     "labels": labels if labels is not None else {"run": "nginx"}},
        "spec": {"nodeName": "node-1",
                 "containers": [{"name": "c", "ports": ports if ports is not None else
                                 [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    for key, value in extra.items():
        section, _, field = key.partition("__")
        obj[section][field] = value
    return obj


def ref(name: str) -> Obj:
    return {"kind": "Pod", "namespace": "default", "name": name, "uid": f"uid-{name}"}


_names = count()


def stored(changes: SliceChanges) -> list[Obj]:
    """What the store would hold after the writes: names given, metadata noise added."""
    result = []
    for obj in changes.create + changes.update:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        if "name" not in meta:
            meta["name"] = meta.pop("generateName") + f"x{next(_names)}"
        meta["resourceVersion"] = str(next(_names))
        meta["creationTimestamp"] = "2024-05-06T07:08:09Z"
        meta["managedFields"] = [{"manager": "kubesvc"}]
        result.append(obj)
    return result


# --- Endpoints -------------------------------------------------------------------------------


def test_endpoints_split_ready_and_not_ready_pods() -> None:
    pods = [pod("b", "10.244.0.10"), pod("a", "10.244.0.9"), pod("c", "10.244.0.11", False),
            pod("gone", "10.244.0.12", metadata__deletionTimestamp="2024-05-06T07:08:09Z"),
            pod("done", "10.244.0.13", status__phase="Succeeded"),
            pod("pending", "", status__podIPs=[]),
            pod("other", "10.244.0.14", labels={"run": "web"}),
            pod("elsewhere", "10.244.0.15", namespace="shop")]
    endpoints = desired_endpoints(service(), pods, T1)
    assert endpoints == {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "nginx", "namespace": "default",
                     "labels": {"app": "nginx",
                                "endpoints.kubernetes.io/managed-by": "endpoint-controller"},
                     "annotations": {TRIGGER_TIME_ANNOTATION: "2024-05-06T07:08:09.12Z"}},
        "subsets": [{
            # Sorted as text, as Kubernetes sorts them: "10.244.0.10" before "10.244.0.9".
            "addresses": [{"ip": "10.244.0.10", "nodeName": "node-1", "targetRef": ref("b")},
                          {"ip": "10.244.0.9", "nodeName": "node-1", "targetRef": ref("a")}],
            "notReadyAddresses": [{"ip": "10.244.0.11", "nodeName": "node-1",
                                   "targetRef": ref("c")}],
            "ports": [{"port": 80, "protocol": "TCP"}]}]}


def test_publish_not_ready_addresses_lists_every_pod_as_ready() -> None:
    svc = service(publishNotReadyAddresses=True)
    pods = [pod("a", "10.244.0.9", False),
            pod("gone", "10.244.0.12", metadata__deletionTimestamp="2024-05-06T07:08:09Z")]
    endpoints = desired_endpoints(svc, pods)
    assert endpoints is not None
    assert [a["ip"] for a in endpoints["subsets"][0]["addresses"]] == ["10.244.0.12", "10.244.0.9"]
    assert "notReadyAddresses" not in endpoints["subsets"][0]
    assert "annotations" not in endpoints["metadata"]


def test_named_target_port_is_resolved_per_pod_and_subsets_are_repacked() -> None:
    svc = service(ports=[{"name": "web", "port": 80, "targetPort": "http"},
                         {"name": "metrics", "port": 9100, "targetPort": 9100}])
    pods = [pod("a", "10.244.0.9"),
            pod("b", "10.244.0.10", ports=[{"name": "http", "containerPort": 8080}]),
            pod("c", "10.244.0.11", ports=[])]
    endpoints = desired_endpoints(svc, pods)
    assert endpoints is not None
    by_ips = {tuple(a["ip"] for a in s["addresses"]): s["ports"] for s in endpoints["subsets"]}
    # One subset per set of addresses serving a port: every pod serves 9100, each pod its own
    # "http" port, and the pod without one is left out of "web".
    assert by_ips == {
        ("10.244.0.10", "10.244.0.11", "10.244.0.9"):
            [{"port": 9100, "protocol": "TCP", "name": "metrics"}],
        ("10.244.0.9",): [{"port": 80, "protocol": "TCP", "name": "web"}],
        ("10.244.0.10",): [{"port": 8080, "protocol": "TCP", "name": "web"}]}


def test_named_port_protocol_must_match() -> None:
    svc = service(ports=[{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}])
    tcp_only = pod("a", "10.244.0.9", ports=[{"name": "dns", "containerPort": 53}])
    endpoints = desired_endpoints(svc, [tcp_only])
    assert endpoints is not None and "subsets" not in endpoints


def test_repack_merges_ports_and_not_ready_wins() -> None:
    a = {"ip": "10.0.0.1"}
    b = {"ip": "10.0.0.2"}
    subsets = repack_subsets([
        {"addresses": [a, b], "ports": [{"port": 80}]},
        {"addresses": [a], "notReadyAddresses": [b], "ports": [{"port": 443}]},
        {"addresses": [a, b], "ports": [{"port": 443}]},
        {"ports": [{"port": 8080}]}])
    assert len(subsets) == 2
    assert {"addresses": [a], "notReadyAddresses": [b],
            "ports": [{"port": 443, "protocol": "TCP"}]} in subsets
    assert {"addresses": [a, b], "ports": [{"port": 80, "protocol": "TCP"}]} in subsets
    assert repack_subsets(subsets) == subsets


def test_headless_services_get_endpoints_with_and_without_ports() -> None:
    headless = service(clusterIP="None")
    endpoints = desired_endpoints(headless, [pod("a", "10.244.0.9")])
    assert endpoints is not None
    assert endpoints["metadata"]["labels"][HEADLESS_LABEL] == ""
    assert endpoints["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    portless = desired_endpoints(service(clusterIP="None", ports=[]), [pod("a", "10.244.0.9")])
    assert portless is not None
    assert portless["subsets"] == [{"addresses": [
        {"ip": "10.244.0.9", "nodeName": "node-1", "targetRef": ref("a")}]}]


def test_hostname_is_set_for_pods_in_the_service_subdomain() -> None:
    member = pod("web-0", "10.244.0.9", spec__hostname="web-0", spec__subdomain="nginx")
    stranger = pod("web-1", "10.244.0.10", spec__hostname="web-1", spec__subdomain="other")
    endpoints = desired_endpoints(service(clusterIP="None"), [member, stranger])
    assert endpoints is not None
    hostnames = {a["ip"]: a.get("hostname") for a in endpoints["subsets"][0]["addresses"]}
    assert hostnames == {"10.244.0.9": "web-0", "10.244.0.10": None}


def test_services_without_selector_or_of_type_external_name_are_left_alone() -> None:
    pods = [pod("a", "10.244.0.9")]
    for svc in (service(selector={}),
                service(type="ExternalName", externalName="example.com")):
        assert desired_endpoints(svc, pods) is None
        assert reconcile_endpoints(svc, pods, None) is None
        assert reconcile_slices(svc, pods, []).empty


def test_reconcile_endpoints_writes_only_real_changes() -> None:
    svc = service()
    pods = [pod("a", "10.244.0.9")]
    created = reconcile_endpoints(svc, pods, None, T1)
    assert created is not None
    current = copy.deepcopy(created)
    current["metadata"].update(resourceVersion="7", uid="e-1", managedFields=[{"x": 1}],
                               creationTimestamp="2024-05-06T07:08:09Z")
    current["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = "42"
    assert reconcile_endpoints(svc, pods, current, T2) is None  # a new trigger time alone
    pods.append(pod("b", "10.244.0.10", False))
    updated = reconcile_endpoints(svc, pods, current, T2)
    assert updated is not None
    assert updated["metadata"]["resourceVersion"] == "7"  # an update of what was read
    assert updated["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] == "2024-05-06T07:09:00Z"
    assert updated["subsets"][0]["notReadyAddresses"][0]["ip"] == "10.244.0.10"
    relabelled = copy.deepcopy(svc)
    relabelled["metadata"]["labels"]["tier"] = "web"
    assert reconcile_endpoints(relabelled, pods[:1], current) is not None
    emptied = reconcile_endpoints(svc, [], current)
    assert emptied is not None and "subsets" not in emptied
    assert "annotations" not in emptied["metadata"]


# --- EndpointSlices --------------------------------------------------------------------------


def test_new_slice_for_a_service() -> None:
    pods = [pod("a", "10.244.0.9"), pod("b", "10.244.0.10", False),
            pod("gone", "10.244.0.12", metadata__deletionTimestamp="2024-05-06T07:08:09Z")]
    changes = reconcile_slices(service(), pods, [], T1)
    assert changes.update == [] and changes.delete == []
    [created] = changes.create
    assert created["metadata"] == {
        "generateName": "nginx-", "namespace": "default",
        "labels": {"app": "nginx", SERVICE_NAME_LABEL: "nginx",
                   SLICE_MANAGED_BY_LABEL: "endpointslice-controller.k8s.io"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "nginx",
                             "uid": "uid-nginx", "controller": True,
                             "blockOwnerDeletion": True}],
        "annotations": {TRIGGER_TIME_ANNOTATION: "2024-05-06T07:08:09.12Z"}}
    assert created["addressType"] == "IPv4"
    assert created["ports"] == [{"name": "", "port": 80, "protocol": "TCP"}]
    conditions = {e["targetRef"]["name"]: e["conditions"] for e in created["endpoints"]}
    assert conditions == {
        "a": {"ready": True, "serving": True, "terminating": False},
        "b": {"ready": False, "serving": False, "terminating": False},
        "gone": {"ready": False, "serving": True, "terminating": True}}
    first = next(e for e in created["endpoints"] if e["targetRef"]["name"] == "a")
    assert first == {"addresses": ["10.244.0.9"], "conditions": conditions["a"],
                     "targetRef": ref("a"), "nodeName": "node-1"}
    assert "zone" not in first


def test_steady_state_writes_nothing() -> None:
    svc = service()
    pods = [pod(f"p{i}", f"10.244.0.{i}") for i in range(1, 6)]
    existing = stored(reconcile_slices(svc, pods, [], T1))
    for endpoint_slice in existing:
        for endpoint in endpoint_slice["endpoints"]:
            endpoint["targetRef"]["resourceVersion"] = "99"
    reversed_pods = list(reversed(pods))
    assert reconcile_slices(svc, reversed_pods, existing, T2).empty


def test_changes_update_the_slice_in_place() -> None:
    svc = service()
    pods = [pod("a", "10.244.0.9"), pod("b", "10.244.0.10")]
    existing = stored(reconcile_slices(svc, pods, [], T1))
    name = existing[0]["metadata"]["name"]
    pods[1] = pod("b", "10.244.0.10", ready=False)
    changes = reconcile_slices(svc, pods, existing, T2)
    assert changes.create == [] and changes.delete == []
    [updated] = changes.update
    assert updated["metadata"]["name"] == name
    assert updated["metadata"]["resourceVersion"] == existing[0]["metadata"]["resourceVersion"]
    assert updated["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] == "2024-05-06T07:09:00Z"
    assert {e["targetRef"]["name"]: e["conditions"]["ready"] for e in updated["endpoints"]} == \
        {"a": True, "b": False}


def test_no_pods_left_turns_the_slice_into_the_placeholder() -> None:
    svc = service()
    existing = stored(reconcile_slices(svc, [pod("a", "10.244.0.9")], [], T1))
    changes = reconcile_slices(svc, [], existing)
    assert changes.create == [] and changes.delete == []
    [placeholder] = changes.update
    assert placeholder["metadata"]["name"] == existing[0]["metadata"]["name"]
    assert placeholder["endpoints"] == [] and "ports" not in placeholder
    assert "annotations" not in placeholder["metadata"]
    assert reconcile_slices(svc, [], stored(changes)).empty


def test_empty_service_gets_one_placeholder_slice() -> None:
    changes = reconcile_slices(service(), [], [])
    [placeholder] = changes.create
    assert placeholder["endpoints"] == []
    assert reconcile_slices(service(), [], stored(changes)).empty


def test_at_most_100_endpoints_per_slice_and_new_pods_fill_the_fullest_slice() -> None:
    svc = service()
    pods = [pod(f"p{i}", f"10.244.{i // 200}.{i % 200 + 1}") for i in range(250)]
    first = reconcile_slices(svc, pods, [])
    assert sorted(len(s["endpoints"]) for s in first.create) == [50, 100, 100]
    existing = stored(first)
    more = pods + [pod(f"q{i}", f"10.245.0.{i + 1}") for i in range(10)]
    changes = reconcile_slices(svc, more, existing)
    assert changes.create == [] and changes.delete == []
    [filled] = changes.update
    assert len(filled["endpoints"]) == 60


def test_pods_with_different_ports_go_to_different_slices() -> None:
    svc = service(ports=[{"name": "web", "port": 80, "targetPort": "http"}])
    pods = [pod("a", "10.244.0.9"),
            pod("b", "10.244.0.10", ports=[{"name": "http", "containerPort": 8080}])]
    changes = reconcile_slices(svc, pods, [])
    ports = sorted(s["ports"][0]["port"] for s in changes.create)
    assert ports == [80, 8080]
    assert reconcile_slices(svc, pods, stored(changes)).empty


def test_service_label_change_updates_slice_labels() -> None:
    svc = service()
    pods = [pod("a", "10.244.0.9")]
    existing = stored(reconcile_slices(svc, pods, []))
    svc["metadata"]["labels"] = {"app": "nginx", "tier": "web"}
    [updated] = reconcile_slices(svc, pods, existing).update
    assert updated["metadata"]["labels"]["tier"] == "web"
    assert updated["endpoints"] == existing[0]["endpoints"]


def test_slices_of_an_earlier_service_of_the_same_name_are_replaced() -> None:
    old_service = service()
    old_service["metadata"]["uid"] = "uid-earlier"
    pods = [pod("a", "10.244.0.9")]
    existing = stored(reconcile_slices(old_service, pods, []))
    changes = reconcile_slices(service(), pods, existing)
    # Never rewritten: the garbage collector may be deleting it for the old Service.
    assert changes.delete == existing and changes.update == []
    [created] = changes.create
    assert created["metadata"]["ownerReferences"][0]["uid"] == "uid-nginx"


def test_other_controllers_and_services_slices_are_ignored() -> None:
    svc = service()
    pods = [pod("a", "10.244.0.9")]
    existing = stored(reconcile_slices(svc, pods, []))
    foreign = copy.deepcopy(existing[0])
    foreign["metadata"]["labels"][SLICE_MANAGED_BY_LABEL] = "someone-else"
    other = copy.deepcopy(existing[0])
    other["metadata"]["labels"][SERVICE_NAME_LABEL] = "web"
    assert reconcile_slices(svc, pods, [*existing, foreign, other]).empty


def test_headless_slices_and_hostnames() -> None:
    svc = service(clusterIP="None")
    member = pod("web-0", "10.244.0.9", spec__hostname="web-0", spec__subdomain="nginx")
    [created] = reconcile_slices(svc, [member], []).create
    assert created["metadata"]["labels"][HEADLESS_LABEL] == ""
    assert created["endpoints"][0]["hostname"] == "web-0"


def test_publish_not_ready_addresses_makes_slices_ready() -> None:
    svc = service(publishNotReadyAddresses=True)
    [created] = reconcile_slices(svc, [pod("a", "10.244.0.9", False)], []).create
    assert created["endpoints"][0]["conditions"] == \
        {"ready": True, "serving": False, "terminating": False}


# --- mirroring -------------------------------------------------------------------------------


def user_endpoints(*subsets: Obj, **annotations: str) -> Obj:
    meta: Obj = {"name": "external", "namespace": "default", "uid": "uid-ep",
                 "labels": {"team": "a"}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": list(subsets)}


def test_should_mirror() -> None:
    selectorless = service("external", selector={})
    endpoints = user_endpoints()
    assert should_mirror(endpoints, selectorless)
    assert not should_mirror(endpoints, None)
    assert not should_mirror(endpoints, service("external"))
    skipped = copy.deepcopy(endpoints)
    skipped["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] = "true"
    assert not should_mirror(skipped, selectorless)
    leader = user_endpoints(**{"control-plane.alpha.kubernetes.io/leader": "{}"})
    assert not should_mirror(leader, selectorless)


def test_mirrored_slices_follow_the_users_endpoints() -> None:
    endpoints = user_endpoints(
        {"addresses": [{"ip": "192.0.2.10"}, {"ip": "not-an-ip"}],
         "notReadyAddresses": [{"ip": "192.0.2.11", "nodeName": "n"}],
         "ports": [{"name": "db", "port": 5432}]},
        **{"note": "x", TRIGGER_TIME_ANNOTATION: "2024-05-06T07:08:09Z",
           "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    [created] = mirror_slices(endpoints, []).create
    assert created["metadata"]["labels"] == {
        "team": "a", SERVICE_NAME_LABEL: "external",
        SLICE_MANAGED_BY_LABEL: "endpointslicemirroring-controller.k8s.io"}
    assert created["metadata"]["annotations"] == {"note": "x"}
    assert created["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert created["ports"] == [{"name": "db", "port": 5432, "protocol": "TCP"}]
    assert created["endpoints"] == [
        {"addresses": ["192.0.2.10"], "conditions": {"ready": True}},
        {"addresses": ["192.0.2.11"], "conditions": {"ready": False}, "nodeName": "n"}]
    existing = stored(SliceChanges(create=[created]))
    assert mirror_slices(endpoints, existing).empty
    endpoints["subsets"][0]["addresses"].append({"ip": "192.0.2.12"})
    changes = mirror_slices(endpoints, existing)
    [updated] = changes.update
    assert updated["metadata"]["name"] == existing[0]["metadata"]["name"]
    assert len(updated["endpoints"]) == 3
    assert mirror_slices(None, existing, "external", "default").delete == existing


def test_mirroring_caps_each_subset_and_drops_stale_port_sets() -> None:
    many = [{"ip": f"192.0.{i // 250}.{i % 250 + 1}"} for i in range(1200)]
    endpoints = user_endpoints({"addresses": many, "ports": [{"port": 80}]})
    [created] = mirror_slices(endpoints, []).create
    assert len(created["endpoints"]) == 1000
    existing = stored(SliceChanges(create=[created]))
    endpoints["subsets"][0]["ports"] = [{"port": 8080}]
    changes = mirror_slices(endpoints, existing)
    assert changes.create == [] and changes.delete == []
    [recycled] = changes.update
    assert recycled["metadata"]["name"] == existing[0]["metadata"]["name"]
    assert recycled["ports"][0]["port"] == 8080
