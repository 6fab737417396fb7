import copy
from typing import Any

import pytest

from kubesvc.api.defaults import apply_defaults, carry_over, image_tag

Obj = dict[str, Any]


def deployment() -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "labels": {"run": "nginx"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"run": "nginx"}},
                     "template": {"metadata": {"labels": {"run": "nginx"}},
                                  "spec": {"containers": [
                                      {"image": "nginx:alpine", "name": "nginx",
                                       "imagePullPolicy": "IfNotPresent"}]}}}}


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "nginx", "labels": {"run": "nginx"}},
            "spec": {"selector": {"run": "nginx"},
                     "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], **spec}}


def pod(**container: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
            "spec": {"containers": [{"name": "client", "image": "nginx:alpine", **container}]}}


def defaulted(obj: Obj) -> Obj:
    apply_defaults(obj)
    return obj


# --- Pods ------------------------------------------------------------------------------------

def test_seed_client_pod_gets_kubernetes_defaults() -> None:
    spec = defaulted(pod())["spec"]
    assert spec == {
        "containers": [{
            "name": "client", "image": "nginx:alpine", "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "resources": {}}],
        "enableServiceLinks": True, "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
        "securityContext": {}, "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler"}


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("library/nginx:latest", "Always"),
    ("nginx:alpine", "IfNotPresent"),
    ("nginx:1.25", "IfNotPresent"),
    ("localhost:5000/nginx", "Always"),
    ("localhost:5000/nginx:1.0", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:latest@sha256:" + "a" * 64, "Always"),
])
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    ctr = defaulted(pod(image=image))["spec"]["containers"][0]
    assert ctr["imagePullPolicy"] == policy


def test_image_tag() -> None:
    assert image_tag("busybox") == "latest"
    assert image_tag("reg.io:443/a/b:c") == "c"
    assert image_tag("") == ""


def test_explicit_values_are_kept() -> None:
    p = pod(imagePullPolicy="Never", terminationMessagePolicy="FallbackToLogsOnError")
    p["spec"].update(restartPolicy="Never", dnsPolicy="Default",
                     terminationGracePeriodSeconds=0, enableServiceLinks=False)
    spec = defaulted(p)["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["dnsPolicy"] == "Default"
    assert spec["terminationGracePeriodSeconds"] == 0
    assert spec["enableServiceLinks"] is False
    assert spec["containers"][0]["imagePullPolicy"] == "Never"
    assert spec["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_container_ports_probes_and_env() -> None:
    p = pod(ports=[{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
            readinessProbe={"httpGet": {"port": 80}},
            livenessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 5},
            startupProbe={"grpc": {"port": 9000}},
            lifecycle={"preStop": {"httpGet": {"port": 8080}}},
            env=[{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}])
    ctr = defaulted(p)["spec"]["containers"][0]
    assert [port["protocol"] for port in ctr["ports"]] == ["TCP", "UDP"]
    assert ctr["readinessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
        "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert ctr["livenessProbe"]["periodSeconds"] == 5
    assert ctr["startupProbe"]["grpc"] == {"port": 9000, "service": ""}
    assert ctr["lifecycle"]["preStop"]["httpGet"] == {"port": 8080, "path": "/", "scheme": "HTTP"}
    assert ctr["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


def test_pod_requests_default_to_limits() -> None:
    p = pod(resources={"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}})
    resources = defaulted(p)["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "64Mi"}


def test_host_network_defaults_host_ports() -> None:
    p = pod(ports=[{"containerPort": 8080}])
    p["spec"]["hostNetwork"] = True
    assert defaulted(p)["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080


def test_volumes() -> None:
    p = pod()
    p["spec"]["volumes"] = [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "c"}},
                            {"name": "s", "secret": {"secretName": "s"}},
                            {"name": "h", "hostPath": {"path": "/tmp"}}]
    vols = defaulted(p)["spec"]["volumes"]
    assert vols[0] == {"name": "scratch", "emptyDir": {}}
    assert vols[1]["configMap"]["defaultMode"] == 420
    assert vols[2]["secret"]["defaultMode"] == 420
    assert vols[3]["hostPath"]["type"] == ""


def test_defaults_are_idempotent() -> None:
    once = defaulted(pod(readinessProbe={"httpGet": {"port": 80}}))
    twice = defaulted(copy.deepcopy(once))
    assert once == twice


def test_malformed_bodies_do_not_raise() -> None:
    for obj in ({"apiVersion": "v1", "kind": "Pod", "spec": "x"},
                {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": ["x", 3]}},
                {"apiVersion": "v1", "kind": "Service", "spec": {"ports": "80"}},
                {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"strategy": 1}},
                {"apiVersion": "v1", "kind": "Unknown"}):
        apply_defaults(obj)  # type: ignore[arg-type]


# --- Workloads -------------------------------------------------------------------------------

def test_seed_deployment() -> None:
    spec = defaulted(deployment())["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    template = spec["template"]["spec"]
    assert template["restartPolicy"] == "Always"
    assert template["dnsPolicy"] == "ClusterFirst"
    assert template["terminationGracePeriodSeconds"] == 30
    assert template["schedulerName"] == "default-scheduler"
    assert template["securityContext"] == {}
    assert "enableServiceLinks" not in template  # a Pod-only default
    assert template["containers"][0]["terminationMessagePath"] == "/dev/termination-log"


def test_deployment_replicas_and_recreate_strategy() -> None:
    d = deployment()
    del d["spec"]["replicas"]
    d["spec"]["strategy"] = {"type": "Recreate"}
    spec = defaulted(d)["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_replica_set() -> None:
    rs = deployment()
    rs["kind"] = "ReplicaSet"
    del rs["spec"]["replicas"]
    spec = defaulted(rs)["spec"]
    assert spec["replicas"] == 1
    assert "strategy" not in spec
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


# --- Services --------------------------------------------------------------------------------

def test_seed_service() -> None:
    spec = defaulted(service())["spec"]
    assert spec == {"selector": {"run": "nginx"},
                    "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                    "type": "ClusterIP", "sessionAffinity": "None",
                    "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack"}
    assert "externalTrafficPolicy" not in spec
    assert "allocateLoadBalancerNodePorts" not in spec


def test_service_port_defaults() -> None:
    svc = service(ports=[{"port": 8080}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}])
    ports = defaulted(svc)["spec"]["ports"]
    assert ports[0] == {"port": 8080, "protocol": "TCP", "targetPort": 8080}
    assert ports[1] == {"port": 53, "protocol": "UDP", "targetPort": "dns"}


def test_load_balancer_and_node_port() -> None:
    spec = defaulted(service(type="LoadBalancer"))["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True
    spec = defaulted(service(type="NodePort"))["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert "allocateLoadBalancerNodePorts" not in spec


def test_external_ips_make_a_cluster_ip_service_externally_accessible() -> None:
    spec = defaulted(service(externalIPs=["192.0.2.10"]))["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"


def test_session_affinity() -> None:
    spec = defaulted(service(sessionAffinity="ClientIP"))["spec"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    spec = defaulted(service(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}}))["spec"]
    assert "sessionAffinityConfig" not in spec  # dropped when affinity is None


def test_external_name_gets_no_ip_families() -> None:
    spec = defaulted(service(type="ExternalName", externalName="example.com"))["spec"]
    assert "ipFamilies" not in spec
    assert "ipFamilyPolicy" not in spec
    assert "internalTrafficPolicy" not in spec


def test_cluster_ip_fills_cluster_ips_and_families() -> None:
    spec = defaulted(service(clusterIP="10.96.0.20"))["spec"]
    assert spec["clusterIPs"] == ["10.96.0.20"]
    assert spec["ipFamilies"] == ["IPv4"]
    spec = defaulted(service(clusterIP="fd00::20"))["spec"]
    assert spec["ipFamilies"] == ["IPv6"]
    spec = defaulted(service(clusterIP="None"))["spec"]
    assert spec["clusterIPs"] == ["None"]
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"


def test_load_balancer_status_ip_mode() -> None:
    svc = service(type="LoadBalancer")
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "lb"}]}}
    ingress = defaulted(svc)["status"]["loadBalancer"]["ingress"]
    assert ingress == [{"ip": "192.0.2.1", "ipMode": "VIP"}, {"hostname": "lb"}]


def test_endpoints_and_endpoint_slices() -> None:
    ep = defaulted({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "x"},
                    "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    eps = defaulted({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                     "metadata": {"name": "x"}, "addressType": "IPv4",
                     "ports": [{"port": 80}], "endpoints": []})
    assert eps["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]


# --- carry_over ------------------------------------------------------------------------------

def stored(svc: Obj, **spec: Any) -> Obj:
    """What the API server stored for svc: defaulted, with allocated values."""
    out = defaulted(copy.deepcopy(svc))
    out["spec"].update(spec)
    return out


def test_carry_over_keeps_the_allocated_cluster_ip() -> None:
    old = stored(service(), clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    new = service()
    carry_over(new, old)
    apply_defaults(new)
    assert new["spec"]["clusterIP"] == "10.96.0.20"
    assert new["spec"]["clusterIPs"] == ["10.96.0.20"]
    assert new["spec"]["ipFamilies"] == ["IPv4"]


def test_carry_over_keeps_node_ports_and_health_check_port() -> None:
    old = stored(service(type="LoadBalancer", externalTrafficPolicy="Local"),
                 clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"], healthCheckNodePort=31000)
    old["spec"]["ports"][0]["nodePort"] = 30080
    new = service(type="LoadBalancer", externalTrafficPolicy="Local")
    carry_over(new, old)
    assert new["spec"]["ports"][0]["nodePort"] == 30080
    assert new["spec"]["healthCheckNodePort"] == 31000


def test_carry_over_changing_to_cluster_ip_drops_node_ports() -> None:
    old = stored(service(type="LoadBalancer"), clusterIP="10.96.0.20",
                 clusterIPs=["10.96.0.20"])
    old["spec"]["ports"][0]["nodePort"] = 30080
    new = copy.deepcopy(old)  # kubectl apply's patch keeps what the server filled in
    new["spec"]["type"] = "ClusterIP"
    carry_over(new, old)
    spec = new["spec"]
    assert "nodePort" not in spec["ports"][0]
    assert "allocateLoadBalancerNodePorts" not in spec
    assert "externalTrafficPolicy" not in spec
    assert spec["clusterIP"] == "10.96.0.20"


def test_carry_over_changing_to_external_name_drops_cluster_ips() -> None:
    old = stored(service(), clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    new = copy.deepcopy(old)
    new["spec"].update(type="ExternalName", externalName="example.com")
    carry_over(new, old)
    for name in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert name not in new["spec"]


def test_carry_over_a_user_changed_cluster_ip_is_left_for_validation() -> None:
    old = stored(service(), clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.30"
    carry_over(new, old)
    assert new["spec"]["clusterIPs"] == ["10.96.0.30"]


def test_carry_over_ignores_other_kinds() -> None:
    new, old = pod(), defaulted(pod())
    before = copy.deepcopy(new)
    carry_over(new, old)
    assert new == before


# --- The rest --------------------------------------------------------------------------------

def test_namespace() -> None:
    ns = defaulted({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "dev"}
    assert ns["status"] == {"phase": "Active"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}


def test_terminating_namespace_keeps_its_finalizers_removed() -> None:
    ns = defaulted({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": "dev", "deletionTimestamp": "2024-01-01T00:00:00Z"},
                    "spec": {}, "status": {"phase": "Terminating"}})
    assert ns["spec"] == {}
    assert ns["status"]["phase"] == "Terminating"


def test_secret() -> None:
    s = defaulted({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "data": {"a": "YQ=="}, "stringData": {"b": "hello"}})
    assert s["type"] == "Opaque"
    assert s["data"] == {"a": "YQ==", "b": "aGVsbG8="}
    assert "stringData" not in s


def test_node_allocatable_defaults_to_capacity() -> None:
    node = defaulted({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                      "status": {"capacity": {"cpu": "2", "pods": "110"}}})
    assert node["status"]["allocatable"] == {"cpu": "2", "pods": "110"}


def test_event() -> None:
    ev = defaulted({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}})
    assert ev["involvedObject"] == {}
    assert ev["reportingComponent"] == ""
    assert ev["reportingInstance"] == ""


@pytest.mark.parametrize("api_version", ["extensions/v1beta1", "networking.k8s.io/v1beta1"])
def test_v1beta1_ingress_paths_get_a_path_type(api_version: str) -> None:
    ing = defaulted({"apiVersion": api_version, "kind": "Ingress", "metadata": {"name": "i"},
                     "spec": {"rules": [{"host": "yczhang.k8s", "http": {"paths": [
                         {"path": "/", "backend": {"serviceName": "nginx", "servicePort": 80}},
                         {"path": "/x", "pathType": "Prefix",
                          "backend": {"serviceName": "nginx", "servicePort": 80}}]}}]}})
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    assert [p["pathType"] for p in paths] == ["ImplementationSpecific", "Prefix"]


def test_v1_ingress_has_no_path_type_default() -> None:
    ing = defaulted({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                     "metadata": {"name": "i"},
                     "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {}}]}}]}})
    assert "pathType" not in ing["spec"]["rules"][0]["http"]["paths"][0]


def test_ingress_class_parameters_scope() -> None:
    ic = defaulted({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                    "metadata": {"name": "nginx"},
                    "spec": {"controller": "k8s.io/ingress-nginx",
                             "parameters": {"kind": "Config", "name": "c"}}})
    assert ic["spec"]["parameters"]["scope"] == "Cluster"
