"""Table output for `kubectl get`: columns and cells as Kubernetes' printers make them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubesvc.api.errors import ApiError
from kubesvc.api.tables import human_duration, to_table

NOW = datetime(2026, 11, 25, 21, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(hours=11), **extra}


def table(kind: str, *objects: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return to_table(kind, list(objects), now=NOW, **kwargs)


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    result: list[Any] = table(kind, obj)["rows"][0]["cells"]
    return result


def columns(kind: str) -> list[tuple[str, str, int]]:
    return [(c["name"], c["type"], c["priority"]) for c in table(kind)["columnDefinitions"]]


# --- columns --------------------------------------------------------------------------------

S, INT = "string", "integer"


@pytest.mark.parametrize(("kind", "expected"), [
    ("Pod", [("Name", S, 0), ("Ready", S, 0), ("Status", S, 0), ("Restarts", S, 0),
             ("Age", S, 0), ("IP", S, 1), ("Node", S, 1), ("Nominated Node", S, 1),
             ("Readiness Gates", S, 1)]),
    ("Service", [("Name", S, 0), ("Type", S, 0), ("Cluster-IP", S, 0), ("External-IP", S, 0),
                 ("Port(s)", S, 0), ("Age", S, 0), ("Selector", S, 1)]),
    ("Endpoints", [("Name", S, 0), ("Endpoints", S, 0), ("Age", S, 0)]),
    ("EndpointSlice", [("Name", S, 0), ("AddressType", S, 0), ("Ports", S, 0),
                       ("Endpoints", S, 0), ("Age", S, 0)]),
    ("Deployment", [("Name", S, 0), ("Ready", S, 0), ("Up-to-date", S, 0), ("Available", S, 0),
                    ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)]),
    ("ReplicaSet", [("Name", S, 0), ("Desired", INT, 0), ("Current", INT, 0), ("Ready", INT, 0),
                    ("Age", S, 0), ("Containers", S, 1), ("Images", S, 1), ("Selector", S, 1)]),
    ("Node", [("Name", S, 0), ("Status", S, 0), ("Roles", S, 0), ("Age", S, 0),
              ("Version", S, 0), ("Internal-IP", S, 1), ("External-IP", S, 1),
              ("OS-Image", S, 1), ("Kernel-Version", S, 1), ("Container-Runtime", S, 1)]),
    ("Namespace", [("Name", S, 0), ("Status", S, 0), ("Age", S, 0)]),
    ("ConfigMap", [("Name", S, 0), ("Data", S, 0), ("Age", S, 0)]),
    ("Secret", [("Name", S, 0), ("Type", S, 0), ("Data", S, 0), ("Age", S, 0)]),
    ("ServiceAccount", [("Name", S, 0), ("Secrets", S, 0), ("Age", S, 0)]),
    ("Event", [("Last Seen", S, 0), ("Type", S, 0), ("Reason", S, 0), ("Object", S, 0),
               ("Subobject", S, 1), ("Source", S, 1), ("Message", S, 0), ("First Seen", S, 1),
               ("Count", S, 1), ("Name", S, 1)]),
    ("Ingress", [("Name", S, 0), ("Class", S, 0), ("Hosts", S, 0), ("Address", S, 0),
                 ("Ports", S, 0), ("Age", S, 0)]),
    ("IngressClass", [("Name", S, 0), ("Controller", S, 0), ("Parameters", S, 0),
                      ("Age", S, 0)]),
    ("Lease", [("Name", S, 0), ("Holder", S, 0), ("Age", S, 0)]),
    ("Widget", [("Name", S, 0), ("Age", S, 0)]),
])
def test_columns(kind: str, expected: list[tuple[str, str, int]]) -> None:
    assert columns(kind) == expected


def test_column_definitions_carry_kubernetes_descriptions_and_formats() -> None:
    pod = table("Pod")["columnDefinitions"]
    assert pod[0] == {
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace. Is required when creating "
        "resources, although some resources may allow a client to request the generation of "
        "an appropriate name automatically. Name is primarily intended for creation idempotence "
        "and configuration definition. Cannot be updated. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"}
    assert pod[4]["description"].startswith("CreationTimestamp is a timestamp representing")
    assert pod[5]["description"] == ("podIP address allocated to the pod. Routable at least "
                                     "within the cluster. Empty if not yet allocated.")
    assert all(c["format"] == "" for c in pod[1:])
    service = table("Service")["columnDefinitions"]
    assert service[4]["description"].startswith("The list of ports that are exposed")
    event = table("Event")["columnDefinitions"]
    assert event[9]["format"] == "name"
    ingress = table("Ingress")["columnDefinitions"]
    assert ingress[3]["description"] == (
        "Address is a list containing ingress points for the load-balancer")


def test_column_definitions_are_fresh_copies() -> None:
    table("Pod")["columnDefinitions"][0]["name"] = "changed"
    assert table("Pod")["columnDefinitions"][0]["name"] == "Name"


# --- the Table itself and includeObject -----------------------------------------------------

NGINX_POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": meta("nginx", uid="u1", labels={"run": "nginx"}),
    "spec": {"nodeName": "minikube", "containers": [{"name": "nginx", "image": "nginx:alpine"}]},
    "status": {"phase": "Running", "podIP": "10.244.0.3",
               "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "nginx", "ready": True, "restartCount": 0,
                                      "state": {"running": {"startedAt": ago(hours=1)}}}]},
}


def test_table_envelope() -> None:
    result = table("Pod", NGINX_POD, resource_version="42")
    assert result["kind"] == "Table"
    assert result["apiVersion"] == "meta.k8s.io/v1"
    assert result["metadata"] == {"resourceVersion": "42"}
    assert result["rows"][0]["cells"] == ["nginx", "1/1", "Running", "0", "11h",
                                          "10.244.0.3", "minikube", "<none>", "<none>"]
    assert "conditions" not in result["rows"][0]
    assert table("Pod")["metadata"] == {}
    assert table("Pod")["rows"] == []


@pytest.mark.parametrize("include", ["Metadata", ""])
def test_include_metadata(include: str) -> None:
    row = table("Pod", NGINX_POD, include_object=include)["rows"][0]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": NGINX_POD["metadata"]}


def test_include_metadata_is_the_default() -> None:
    assert table("Pod", NGINX_POD)["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_include_object_and_none() -> None:
    assert table("Pod", NGINX_POD, include_object="Object")["rows"][0]["object"] == NGINX_POD
    assert "object" not in table("Pod", NGINX_POD, include_object="None")["rows"][0]


def test_include_object_unknown_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        table("Pod", NGINX_POD, include_object="Everything")
    assert err.value.code == 400
    assert err.value.message == 'unrecognized includeObject value: "Everything"'


def test_now_defaults_to_the_clock() -> None:
    pod = {**NGINX_POD, "metadata": meta("p", creationTimestamp=datetime.now(UTC).isoformat())}
    assert to_table("Pod", [pod])["rows"][0]["cells"][4] in ("0s", "1s", "2s")


# --- ages -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("delta", "expected"), [
    (timedelta(seconds=-3), "<invalid>"),
    (timedelta(seconds=-1), "0s"),
    (timedelta(0), "0s"),
    (timedelta(seconds=5), "5s"),
    (timedelta(seconds=119), "119s"),
    (timedelta(minutes=2), "2m"),
    (timedelta(seconds=200), "3m20s"),
    (timedelta(minutes=9, seconds=59), "9m59s"),
    (timedelta(minutes=10, seconds=30), "10m"),
    (timedelta(minutes=179), "179m"),
    (timedelta(hours=3), "3h"),
    (timedelta(hours=3, minutes=5), "3h5m"),
    (timedelta(hours=8, minutes=5), "8h"),
    (timedelta(hours=11), "11h"),
    (timedelta(hours=47, minutes=59), "47h"),
    (timedelta(hours=48), "2d"),
    (timedelta(hours=51), "2d3h"),
    (timedelta(days=7, hours=23), "7d23h"),
    (timedelta(days=8, hours=5), "8d"),
    (timedelta(days=729), "729d"),
    (timedelta(days=730), "2y"),
    (timedelta(days=365 * 2 + 329), "2y329d"),
    (timedelta(days=365 * 8 + 100), "8y"),
])
def test_human_duration(delta: timedelta, expected: str) -> None:
    assert human_duration(delta) == expected


def test_age_without_creation_timestamp_is_unknown() -> None:
    assert cells("ConfigMap", {"metadata": {"name": "x"}}) == ["x", 0, "<unknown>"]


def test_age_reads_fractional_timestamps() -> None:
    obj = {"metadata": {"name": "x", "creationTimestamp": "2026-11-25T20:56:40.123456Z"}}
    assert cells("Widget", obj) == ["x", "3m19s"]


# --- Pod ------------------------------------------------------------------------------------

def pod(status: dict[str, Any], spec: dict[str, Any] | None = None,
        **metadata: Any) -> dict[str, Any]:
    base_spec = {"containers": [{"name": "app", "image": "busybox"}]}
    return {"metadata": meta("p", **metadata), "spec": spec or base_spec, "status": status}


def running(ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": "app", "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ago(minutes=1)}}, **extra}


def waiting(reason: str, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": "app", "ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": reason}}, **extra}


def terminated(name: str = "app", **state: Any) -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


def pod_status(p: dict[str, Any]) -> tuple[str, str, str]:
    ready, status, restarts = cells("Pod", p)[1:4]
    return ready, status, restarts


TWO_INITS = {"initContainers": [{"name": "init-a"}, {"name": "init-b"}],
             "containers": [{"name": "app"}]}


@pytest.mark.parametrize(("p", "expected"), [
    (pod({"phase": "Running", "containerStatuses": [running()]}), ("1/1", "Running", "0")),
    (pod({"phase": "Pending"}), ("0/1", "Pending", "0")),
    (pod({"phase": "Pending", "containerStatuses": [waiting("ContainerCreating")]}),
     ("0/1", "ContainerCreating", "0")),
    (pod({"phase": "Running", "containerStatuses": [waiting(
        "CrashLoopBackOff", restarts=5,
        lastState={"terminated": {"exitCode": 1, "finishedAt": ago(minutes=5)}})]}),
     ("0/1", "CrashLoopBackOff", "5 (5m ago)")),
    (pod({"phase": "Running", "containerStatuses": [running(restarts=2)]}),
     ("1/1", "Running", "2")),
    (pod({"phase": "Succeeded", "containerStatuses": [terminated(reason="Completed")]}),
     ("0/1", "Completed", "0")),
    (pod({"phase": "Failed", "containerStatuses": [terminated(exitCode=137, signal=9)]}),
     ("0/1", "Signal:9", "0")),
    (pod({"phase": "Failed", "containerStatuses": [terminated(exitCode=2)]}),
     ("0/1", "ExitCode:2", "0")),
    (pod({"phase": "Failed", "reason": "Evicted"}), ("0/1", "Evicted", "0")),
    (pod({"phase": "Running", "containerStatuses": [running()]}, deletionTimestamp=ago(seconds=1)),
     ("1/1", "Terminating", "0")),
    (pod({"phase": "Succeeded", "containerStatuses": [terminated(reason="Completed")]},
         deletionTimestamp=ago(seconds=1)), ("0/1", "Completed", "0")),
    (pod({"phase": "Running", "reason": "NodeLost"}, deletionTimestamp=ago(seconds=1)),
     ("0/1", "Unknown", "0")),
    (pod({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
     ("0/1", "SchedulingGated", "0")),
    # Init containers: running, waiting, failed, and the next one after a success.
    (pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "init-a", "state": {"running": {}}, "restartCount": 0}]}, TWO_INITS),
     ("0/1", "Init:0/2", "0")),
    (pod({"phase": "Pending", "initContainerStatuses": [
        {**waiting("ImagePullBackOff"), "name": "init-a"}]}, TWO_INITS),
     ("0/1", "Init:ImagePullBackOff", "0")),
    (pod({"phase": "Pending", "initContainerStatuses": [
        {**waiting("PodInitializing"), "name": "init-a"}]}, TWO_INITS),
     ("0/1", "Init:0/2", "0")),
    (pod({"phase": "Pending", "initContainerStatuses": [
        terminated("init-a", exitCode=1, reason="Error")]}, TWO_INITS),
     ("0/1", "Init:Error", "0")),
    (pod({"phase": "Pending", "initContainerStatuses": [
        terminated("init-a", exitCode=1, signal=15)]}, TWO_INITS),
     ("0/1", "Init:Signal:15", "0")),
    (pod({"phase": "Pending", "initContainerStatuses": [
        terminated("init-a", exitCode=3)]}, TWO_INITS),
     ("0/1", "Init:ExitCode:3", "0")),
    (pod({"phase": "Pending", "initContainerStatuses": [
        terminated("init-a", exitCode=0, reason="Completed"),
        {"name": "init-b", "state": {"running": {}}, "restartCount": 1}]}, TWO_INITS),
     ("0/1", "Init:1/2", "1")),
    # All init containers done: the app containers decide, init restarts no longer count.
    (pod({"phase": "Running",
          "initContainerStatuses": [
              {**terminated("init-a", exitCode=0, reason="Completed"), "restartCount": 3},
              terminated("init-b", exitCode=0, reason="Completed")],
          "containerStatuses": [running()]}, TWO_INITS),
     ("1/1", "Running", "0")),
    # A completed container next to a running one: Running when the pod is Ready.
    (pod({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
          "containerStatuses": [terminated(reason="Completed"), running()]},
         {"containers": [{"name": "a"}, {"name": "b"}]}),
     ("1/2", "Running", "0")),
    (pod({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
          "containerStatuses": [terminated(reason="Completed"), running()]},
         {"containers": [{"name": "a"}, {"name": "b"}]}),
     ("1/2", "NotReady", "0")),
])
def test_pod_status(p: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert pod_status(p) == expected


def test_pod_sidecar_counts_towards_ready_and_restarts() -> None:
    spec = {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}]}
    status = {
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [{
            "name": "proxy", "started": True, "ready": True, "restartCount": 2,
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(hours=2)}},
            "state": {"running": {}}}],
        "containerStatuses": [running(restarts=1, lastState={
            "terminated": {"exitCode": 1, "finishedAt": ago(minutes=30)}})],
    }
    assert pod_status(pod(status, spec)) == ("2/2", "Running", "3 (30m ago)")


def test_pod_wide_cells() -> None:
    p = pod({"phase": "Running", "podIPs": [{"ip": "10.244.0.7"}, {"ip": "fd00::7"}],
             "nominatedNodeName": "node-2",
             "conditions": [{"type": "example.com/gate-a", "status": "True"},
                            {"type": "example.com/gate-b", "status": "False"}],
             "containerStatuses": [running()]},
            {"nodeName": "node-1", "containers": [{"name": "app"}],
             "readinessGates": [{"conditionType": "example.com/gate-a"},
                                {"conditionType": "example.com/gate-b"}]})
    assert cells("Pod", p)[5:] == ["10.244.0.7", "node-1", "node-2", "1/2"]
    assert cells("Pod", pod({"phase": "Pending"}))[5:] == ["<none>"] * 4


@pytest.mark.parametrize(("phase", "reason", "message"), [
    ("Succeeded", "Succeeded", "The pod has completed successfully."),
    ("Failed", "Failed", "The pod failed."),
])
def test_finished_pods_carry_row_conditions(phase: str, reason: str, message: str) -> None:
    row = table("Pod", pod({"phase": phase}))["rows"][0]
    assert row["conditions"] == [
        {"type": "Completed", "status": "True", "reason": reason, "message": message}]


# --- Service --------------------------------------------------------------------------------

def service(spec: dict[str, Any], status: dict[str, Any] | None = None,
            name: str = "nginx") -> dict[str, Any]:
    return {"metadata": meta(name), "spec": spec, "status": status or {}}


KUBERNETES_SVC = service({"type": "ClusterIP", "clusterIP": "10.96.0.1",
                          "clusterIPs": ["10.96.0.1"],
                          "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                     "targetPort": 6443}]}, name="kubernetes")


@pytest.mark.parametrize(("svc", "expected"), [
    (KUBERNETES_SVC, ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP", "11h",
                      "<none>"]),
    (service({"type": "ClusterIP", "clusterIP": "10.97.244.221", "selector": {"run": "nginx"},
              "ports": [{"port": 80, "protocol": "TCP"}]}),
     ["nginx", "ClusterIP", "10.97.244.221", "<none>", "80/TCP", "11h", "run=nginx"]),
    (service({"type": "ClusterIP", "clusterIPs": ["10.96.0.20"], "externalIPs": ["1.2.3.4"],
              "ports": [{"port": 443, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"},
                        {"port": 53, "protocol": "UDP"}],
              "selector": {"tier": "web", "app": "a"}}),
     ["nginx", "ClusterIP", "10.96.0.20", "1.2.3.4", "443/TCP,80/TCP,53/UDP", "11h",
      "app=a,tier=web"]),
    (service({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}),
     ["nginx", "ClusterIP", "None", "<none>", "<none>", "11h", "<none>"]),
    (service({"type": "NodePort", "clusterIPs": ["10.96.0.30"],
              "ports": [{"port": 80, "nodePort": 31234, "protocol": "TCP"}]}),
     ["nginx", "NodePort", "10.96.0.30", "<none>", "80:31234/TCP", "11h", "<none>"]),
    (service({"type": "LoadBalancer", "clusterIPs": ["10.97.244.221"],
              "ports": [{"port": 80, "nodePort": 32074, "protocol": "TCP"}]}),
     ["nginx", "LoadBalancer", "10.97.244.221", "<pending>", "80:32074/TCP", "11h", "<none>"]),
    (service({"type": "LoadBalancer", "clusterIPs": ["10.97.244.221"],
              "ports": [{"port": 80, "nodePort": 32074, "protocol": "TCP"}]},
             {"loadBalancer": {"ingress": [{"ip": "192.168.49.201"},
                                           {"hostname": "lb.example"},
                                           {"ip": "192.168.49.200"}]}}),
     ["nginx", "LoadBalancer", "10.97.244.221", "192.168.49.200,192.168.49.201,lb.example",
      "80:32074/TCP", "11h", "<none>"]),
    (service({"type": "LoadBalancer", "clusterIPs": ["10.97.244.221"],
              "externalIPs": ["5.6.7.8"]},
             {"loadBalancer": {"ingress": [{"ip": "192.168.49.200"}]}}),
     ["nginx", "LoadBalancer", "10.97.244.221", "192.168.49.200,5.6.7.8", "<none>", "11h",
      "<none>"]),
    (service({"type": "LoadBalancer", "clusterIPs": ["10.97.244.221"],
              "externalIPs": ["5.6.7.8"]}),
     ["nginx", "LoadBalancer", "10.97.244.221", "5.6.7.8", "<none>", "11h", "<none>"]),
    (service({"type": "ExternalName", "externalName": "www.example.com"}),
     ["nginx", "ExternalName", "<none>", "www.example.com", "<none>", "11h", "<none>"]),
    (service({"type": "ExternalName", "externalName": "db.example.com",
              "ports": [{"port": 5432, "protocol": "TCP"}]}),
     ["nginx", "ExternalName", "<none>", "db.example.com", "5432/TCP", "11h", "<none>"]),
])
def test_service_cells(svc: dict[str, Any], expected: list[Any]) -> None:
    assert cells("Service", svc) == expected


def test_undefaulted_service_reads_as_clusterip_tcp() -> None:
    svc = service({"clusterIP": "10.96.0.9", "ports": [{"port": 80}]})
    assert cells("Service", svc)[1:5] == ["ClusterIP", "10.96.0.9", "<none>", "80/TCP"]


# --- Endpoints, EndpointSlice ---------------------------------------------------------------

def endpoints(*subsets: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": meta("nginx"), "subsets": list(subsets)}


def addresses(*ips: str) -> list[dict[str, str]]:
    return [{"ip": ip} for ip in ips]


@pytest.mark.parametrize(("ep", "expected"), [
    (endpoints(), "<none>"),
    (endpoints({"addresses": addresses("10.244.0.3", "10.244.0.4"), "ports": [{"port": 80}]}),
     "10.244.0.3:80,10.244.0.4:80"),
    (endpoints({"addresses": addresses(*(f"10.244.0.{i}" for i in range(3, 8))),
                "ports": [{"port": 80}]}),
     "10.244.0.3:80,10.244.0.4:80,10.244.0.5:80 + 2 more..."),
    (endpoints({"addresses": addresses("10.244.0.3", "10.244.0.4"),
                "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}),
     "10.244.0.3:80,10.244.0.4:80,10.244.0.3:443 + 1 more..."),
    (endpoints({"addresses": addresses("10.244.0.3")}), "10.244.0.3"),
    (endpoints({"addresses": addresses("fd00::3"), "ports": [{"port": 80}]}), "[fd00::3]:80"),
    (endpoints({"notReadyAddresses": addresses("10.244.0.3"), "ports": [{"port": 80}]}), ""),
])
def test_endpoints_cells(ep: dict[str, Any], expected: str) -> None:
    assert cells("Endpoints", ep) == ["nginx", expected, "11h"]


def test_endpoint_slice_cells() -> None:
    es = {"metadata": meta("nginx-abc12"), "addressType": "IPv4",
          "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
          "endpoints": [{"addresses": ["10.244.0.3"]}, {"addresses": ["10.244.0.4"]}]}
    assert cells("EndpointSlice", es) == ["nginx-abc12", "IPv4", "80",
                                          "10.244.0.3,10.244.0.4", "11h"]
    many = {"metadata": meta("s"), "addressType": "IPv4",
            "ports": [{"port": 1}, {"name": "dns"}, {}, {"port": 4}],
            "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}
    assert cells("EndpointSlice", many)[2:4] == [
        "1,dns,* + 1 more...", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."]
    empty = {"metadata": meta("e"), "addressType": "IPv6"}
    assert cells("EndpointSlice", empty)[1:4] == ["IPv6", "<unset>", "<unset>"]


# --- Deployment, ReplicaSet -----------------------------------------------------------------

TEMPLATE = {"metadata": {"labels": {"run": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:alpine"},
                                    {"name": "sidecar", "image": "busybox"}]}}


def test_deployment_cells() -> None:
    d = {"metadata": meta("nginx"),
         "spec": {"replicas": 3, "selector": {"matchLabels": {"run": "nginx"}},
                  "template": TEMPLATE},
         "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3,
                    "availableReplicas": 2}}
    assert cells("Deployment", d) == ["nginx", "2/3", 3, 2, "11h", "nginx,sidecar",
                                      "nginx:alpine,busybox", "run=nginx"]
    fresh = {"metadata": meta("new"), "spec": {"template": TEMPLATE}}
    assert cells("Deployment", fresh)[1:4] == ["0/1", 0, 0]
    assert cells("Deployment", fresh)[7] == ""


def test_replica_set_cells() -> None:
    rs = {"metadata": meta("nginx-5d4f"),
          "spec": {"replicas": 2, "selector": {"matchLabels": {"run": "nginx",
                                                               "pod-template-hash": "5d4f"}},
                   "template": TEMPLATE},
          "status": {"replicas": 2, "readyReplicas": 1}}
    assert cells("ReplicaSet", rs) == ["nginx-5d4f", 2, 2, 1, "11h", "nginx,sidecar",
                                       "nginx:alpine,busybox", "pod-template-hash=5d4f,run=nginx"]
    assert cells("ReplicaSet", {"metadata": meta("x"), "spec": {}})[1:4] == [1, 0, 0]
    assert cells("ReplicaSet", {"metadata": meta("x"), "spec": {}})[7] == "<none>"


# --- Node, Namespace ------------------------------------------------------------------------

def test_node_cells() -> None:
    node = {"metadata": meta("minikube", labels={
                "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "",
                "kubernetes.io/role": "edge", "kubernetes.io/hostname": "minikube"}),
            "spec": {},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "Hostname", "address": "minikube"},
                                     {"type": "InternalIP", "address": "192.168.49.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Ubuntu 24.04",
                                    "kernelVersion": "6.8.0",
                                    "containerRuntimeVersion": "kubesvc://0.1.0"}}}
    assert cells("Node", node) == ["minikube", "Ready", "control-plane,edge", "11h", "v1.37.0",
                                   "192.168.49.2", "<none>", "Ubuntu 24.04", "6.8.0",
                                   "kubesvc://0.1.0"]


@pytest.mark.parametrize(("conditions", "unschedulable", "expected"), [
    ([{"type": "Ready", "status": "False"}], False, "NotReady"),
    ([{"type": "Ready", "status": "Unknown"}], True, "NotReady,SchedulingDisabled"),
    ([], False, "Unknown"),
    ([{"type": "Ready", "status": "True"}], True, "Ready,SchedulingDisabled"),
])
def test_node_status(conditions: list[dict[str, str]], unschedulable: bool,
                     expected: str) -> None:
    node = {"metadata": meta("n"), "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conditions}}
    row = cells("Node", node)
    assert row[1] == expected
    assert row[2] == "<none>"
    assert row[5:] == ["<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]


def test_namespace_cells() -> None:
    ns = {"metadata": {"name": "kube-system", "creationTimestamp": ago(hours=16)},
          "status": {"phase": "Active"}}
    assert cells("Namespace", ns) == ["kube-system", "Active", "16h"]


# --- ConfigMap, Secret, ServiceAccount, Lease -----------------------------------------------

def test_small_kinds() -> None:
    cm = {"metadata": meta("kube-root-ca.crt"), "data": {"ca.crt": "..."},
          "binaryData": {"blob": "AA=="}}
    assert cells("ConfigMap", cm) == ["kube-root-ca.crt", 2, "11h"]
    secret = {"metadata": meta("tls"), "type": "kubernetes.io/tls",
              "data": {"tls.crt": "", "tls.key": ""}}
    assert cells("Secret", secret) == ["tls", "kubernetes.io/tls", 2, "11h"]
    assert cells("ServiceAccount", {"metadata": meta("default")}) == ["default", 0, "11h"]
    sa = {"metadata": meta("builder"), "secrets": [{"name": "builder-token"}]}
    assert cells("ServiceAccount", sa) == ["builder", 1, "11h"]
    lease = {"metadata": meta("minikube"), "spec": {"holderIdentity": "minikube"}}
    assert cells("Lease", lease) == ["minikube", "minikube", "11h"]
    assert cells("Lease", {"metadata": meta("free"), "spec": {}}) == ["free", "", "11h"]


def test_unknown_kind_has_name_and_age() -> None:
    assert cells("PodTemplate", {"metadata": meta("t")}) == ["t", "11h"]


# --- Event ----------------------------------------------------------------------------------

def test_event_cells() -> None:
    event = {"metadata": meta("nginx-abc.1"), "type": "Normal", "reason": "Pulled",
             "message": "  Container image \"nginx:alpine\" already present  ",
             "involvedObject": {"kind": "Pod", "name": "nginx-abc",
                                "fieldPath": "spec.containers{nginx}"},
             "source": {"component": "kubelet", "host": "minikube"},
             "firstTimestamp": ago(minutes=20), "lastTimestamp": ago(minutes=3), "count": 4}
    assert cells("Event", event) == [
        "3m", "Normal", "Pulled", "pod/nginx-abc", "spec.containers{nginx}",
        "kubelet, minikube", 'Container image "nginx:alpine" already present', "20m", 4,
        "nginx-abc.1"]


def test_event_from_events_api() -> None:
    event = {"metadata": meta("e.2"), "type": "Warning", "reason": "FailedScheduling",
             "message": "no nodes", "involvedObject": {"kind": "Node"},
             "eventTime": "2026-11-25T20:59:50.000000Z",
             "reportingComponent": "default-scheduler"}
    row = cells("Event", event)
    assert row[:4] == ["10s", "Warning", "FailedScheduling", "node"]
    assert row[5] == "default-scheduler"
    assert row[7:9] == ["10s", 1]
    series = {**event, "series": {"count": 7, "lastObservedTime": ago(seconds=30)},
              "reportingInstance": "scheduler-1"}
    row = cells("Event", series)
    assert (row[0], row[5], row[8]) == ("30s", "default-scheduler, scheduler-1", 7)


# --- Ingress, IngressClass ------------------------------------------------------------------

def ingress(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta("ingress"), "spec": spec, "status": status or {}}


SEED_RULES = [{"host": "yczhang.k8s", "http": {"paths": [
    {"path": "/", "pathType": "ImplementationSpecific",
     "backend": {"service": {"name": "nginx", "port": {"number": 80}}}}]}}]


@pytest.mark.parametrize(("ing", "expected"), [
    (ingress({"rules": SEED_RULES},
             {"loadBalancer": {"ingress": [{"ip": "192.168.99.100"}]}}),
     ["ingress", "<none>", "yczhang.k8s", "192.168.99.100", "80", "11h"]),
    (ingress({"rules": SEED_RULES}), ["ingress", "<none>", "yczhang.k8s", "", "80", "11h"]),
    (ingress({"ingressClassName": "nginx", "rules": SEED_RULES,
              "tls": [{"hosts": ["yczhang.k8s"], "secretName": "tls"}]},
             {"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}, {"hostname": "a.lb"},
                                           {"ip": "10.0.0.1"}, {"ip": "10.0.0.1"}]}}),
     ["ingress", "nginx", "yczhang.k8s", "10.0.0.1,10.0.0.2,a.lb", "80, 443", "11h"]),
    (ingress({"defaultBackend": {"service": {"name": "nginx", "port": {"number": 80}}}}),
     ["ingress", "<none>", "*", "", "80", "11h"]),
    (ingress({"rules": [{"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"},
                        {"host": "e"}]}),
     ["ingress", "<none>", "a,b,c + 3 more...", "", "80", "11h"]),
    (ingress({"rules": [{}, {"host": "a"}, {"host": "b"}, {"host": "c"}]}),
     ["ingress", "<none>", "a,b,c", "", "80", "11h"]),
])
def test_ingress_cells(ing: dict[str, Any], expected: list[Any]) -> None:
    assert cells("Ingress", ing) == expected


@pytest.mark.parametrize(("parameters", "expected"), [
    (None, "<none>"),
    ({"kind": "IngressParameters", "name": "external-lb"}, "IngressParameters/external-lb"),
    ({"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"},
     "IngressParameters.k8s.example.com/external-lb"),
])
def test_ingress_class_cells(parameters: dict[str, str] | None, expected: str) -> None:
    spec: dict[str, Any] = {"controller": "k8s.io/ingress-nginx"}
    if parameters is not None:
        spec["parameters"] = parameters
    ic = {"metadata": {"name": "nginx", "creationTimestamp": ago(days=3)}, "spec": spec}
    assert cells("IngressClass", ic) == ["nginx", "k8s.io/ingress-nginx", expected, "3d"]
