"""Services over live pods: Endpoints and EndpointSlices follow scaling, deletion and
readiness; a pod created after a Service sees the seed's discovery environment variables."""

import json
import re
import subprocess
from pathlib import Path

from kubesvc.kernel.nodenet import NodeNetwork
from kubesvc.testing import Cluster

# The names of the seed's `env` output (services-zh.md), for Services nginx and kubernetes.
SEED_ENV = {
    "NGINX_SERVICE_HOST", "NGINX_SERVICE_PORT", "NGINX_PORT", "NGINX_PORT_80_TCP",
    "NGINX_PORT_80_TCP_ADDR", "NGINX_PORT_80_TCP_PORT", "NGINX_PORT_80_TCP_PROTO",
    "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT_HTTPS",
    "KUBERNETES_PORT", "KUBERNETES_PORT_443_TCP", "KUBERNETES_PORT_443_TCP_ADDR",
    "KUBERNETES_PORT_443_TCP_PORT", "KUBERNETES_PORT_443_TCP_PROTO",
}


def endpoint_ips(cluster: Cluster) -> tuple[set[str], set[str], set[str]]:
    """Ready addresses in Endpoints, ready ones in slices, and the Ready nginx pods' IPs."""
    ep = json.loads(cluster.kubectl("get", "endpoints", "nginx", "-o", "json").stdout)
    from_endpoints = {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses", [])}
    slices = json.loads(cluster.kubectl(
        "get", "endpointslices", "-l", "kubernetes.io/service-name=nginx", "-o",
        "json").stdout)["items"]
    from_slices = {e["addresses"][0] for s in slices for e in s.get("endpoints") or []
                   if e["conditions"].get("ready")}
    pods = json.loads(cluster.kubectl("get", "pods", "-l", "run=nginx", "-o",
                                      "json").stdout)["items"]
    ready = {p["status"]["podIP"] for p in pods if not p["metadata"].get("deletionTimestamp")
             and any(c["type"] == "Ready" and c["status"] == "True"
                     for c in p["status"].get("conditions", []))}
    return from_endpoints, from_slices, ready


def settles(cluster: Cluster, count: int) -> set[str]:
    for _ in range(300):
        endpoints, slices, ready = endpoint_ips(cluster)
        if len(ready) == count and endpoints == slices == ready:
            return ready
    raise AssertionError(f"endpoints never matched {count} ready pods: {endpoint_ips(cluster)}")


def test_endpoints_follow_pods(cluster: Cluster, seed: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "server.yaml"), "-f", str(seed / "service.yaml"))
    ips = settles(cluster, 2)
    described = cluster.kubectl("describe", "service", "nginx").stdout
    line = re.search(r"^Endpoints:\s+(\S+)$", described, re.M)
    assert line is not None
    assert set(line.group(1).split(",")) == {f"{ip}:80" for ip in ips}
    # The node itself reaches the Service, as a minikube node does.
    cluster_ip = cluster.kubectl("get", "svc", "nginx", "-o", "jsonpath={.spec.clusterIP}").stdout
    node = NodeNetwork(cluster.config.name, isolated=cluster.config.isolated).netns
    assert node is not None
    page = subprocess.run(["ip", "netns", "exec", node, "busybox", "wget", "-q", "-O", "-",
                           f"http://{cluster_ip}/"], capture_output=True, text=True, timeout=20)
    assert "<title>Welcome to nginx!</title>" in page.stdout, page
    cluster.kubectl("scale", "deployment", "nginx", "--replicas=3")
    settles(cluster, 3)
    victim = json.loads(cluster.kubectl("get", "pods", "-l", "run=nginx", "-o",
                                        "json").stdout)["items"][0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", victim, "--wait=false")
    settles(cluster, 3)
    cluster.kubectl("scale", "deployment", "nginx", "--replicas=2")
    settles(cluster, 2)


def test_pod_after_the_service_sees_the_seed_environment(cluster: Cluster, seed: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "service.yaml"))
    svc = json.loads(cluster.kubectl("get", "svc", "nginx", "-o", "json").stdout)
    cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late-client"},
                   "spec": {"containers": [{"name": "client", "image": "nginx:alpine"}]}})
    cluster.kubectl("wait", "--for=condition=Ready", "pod/late-client", "--timeout=60s")
    env = dict(line.split("=", 1) for line in cluster.kubectl(
        "exec", "late-client", "--", "env").stdout.splitlines() if "=" in line)
    assert set(env) >= SEED_ENV
    ip = svc["spec"]["clusterIP"]
    assert env["NGINX_SERVICE_HOST"] == ip
    assert env["NGINX_SERVICE_PORT"] == "80"
    assert env["NGINX_PORT"] == f"tcp://{ip}:80"
    assert env["NGINX_PORT_80_TCP"] == f"tcp://{ip}:80"
    assert env["NGINX_PORT_80_TCP_ADDR"] == ip
    assert env["NGINX_PORT_80_TCP_PROTO"] == "tcp"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
    cluster.kubectl("delete", "pod", "late-client", "--grace-period=1")
