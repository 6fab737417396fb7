"""Cluster DNS from a pod, through the kube-dns ClusterIP 10.96.0.10 (so through the service
proxy too): services by short, namespaced and full name, headless Services, SRV for a named
port, ExternalName, PTR, pod records, and a quick SERVFAIL for outside names without an
upstream (the test cluster runs with --dns-upstream none)."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesvc.testing import Cluster

DNS = "10.96.0.10"


@pytest.fixture(scope="module")
def dns_cluster(cluster: Cluster, seed: Path) -> Iterator[Cluster]:
    cluster.kubectl("apply", "-f", str(seed / "server.yaml"), "-f", str(seed / "service.yaml"))
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-headless"},
         "spec": {"clusterIP": "None", "selector": {"run": "nginx"},
                  "ports": [{"name": "http", "port": 80}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "outside"},
         "spec": {"type": "ExternalName", "externalName": "example.invalid"}},
    )
    cluster.apply({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "asker", "namespace": "other"},
                   "spec": {"containers": [{"name": "c", "image": "busybox",
                                            "command": ["sleep", "3600"]}]}})
    cluster.kubectl("rollout", "status", "deployment/nginx", "--timeout=60s")
    cluster.kubectl("wait", "--for=condition=Ready", "pod/asker", "-n", "other",
                    "--timeout=60s")
    yield cluster
    cluster.kubectl("delete", "namespace", "other", "--wait=false")


def dig(cluster: Cluster, *args: str) -> str:
    """Ask 10.96.0.10 from inside the `asker` pod, with the host's dig in the pod's network."""
    pod = json.loads(cluster.kubectl("get", "pod", "asker", "-n", "other", "-o",
                                     "json").stdout)
    netns = _pod_netns(cluster, pod["status"]["podIP"])
    result = subprocess.run(["ip", "netns", "exec", netns, "dig", f"@{DNS}", "+time=2",
                             "+tries=1", *args], capture_output=True, text=True, timeout=30)
    return result.stdout


def _pod_netns(cluster: Cluster, ip: str) -> str:
    """The pod's network namespace: one of this cluster's (others may reuse the address)."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in (line.split()[0] for line in names.splitlines()
                 if line.startswith(f"ksvc-{cluster.name}-")):
        addrs = subprocess.run(["ip", "-n", name, "-4", "-o", "addr"], capture_output=True,
                               text=True).stdout
        if f" {ip}/" in addrs:
            return name
    raise AssertionError(f"no namespace holds {ip}")


def answers(output: str) -> list[list[str]]:
    section = output.split(";; ANSWER SECTION:")
    if len(section) < 2:
        return []
    return [line.split() for line in section[1].split("\n\n")[0].splitlines() if line.strip()]


def test_service_names_from_another_namespace(dns_cluster: Cluster) -> None:
    ip = json.loads(dns_cluster.kubectl("get", "svc", "nginx", "-o",
                                        "json").stdout)["spec"]["clusterIP"]
    full = answers(dig(dns_cluster, "nginx.default.svc.cluster.local", "A"))
    assert full[0][0] == "nginx.default.svc.cluster.local." and full[0][-1] == ip
    assert full[0][1] == "30"  # the default TTL
    looked = dns_cluster.kubectl("exec", "asker", "-n", "other", "--", "nslookup",
                                 "nginx.default").stdout
    assert ip in looked
    page = dns_cluster.kubectl("exec", "asker", "-n", "other", "--", "wget", "-q", "-O", "-",
                               "http://nginx.default/").stdout
    assert "<title>Welcome to nginx!</title>" in page
    ptr = answers(dig(dns_cluster, "-x", ip))
    assert ptr[0][-1] == "nginx.default.svc.cluster.local."


def test_headless_srv_external_name_and_pods(dns_cluster: Cluster) -> None:
    pods = json.loads(dns_cluster.kubectl("get", "pods", "-l", "run=nginx", "-o",
                                          "json").stdout)["items"]
    pod_ips = sorted(p["status"]["podIP"] for p in pods)
    headless = answers(dig(dns_cluster, "web-headless.default.svc.cluster.local", "A"))
    assert sorted(r[-1] for r in headless) == pod_ips
    srv = answers(dig(dns_cluster, "_http._tcp.web-headless.default.svc.cluster.local", "SRV"))
    assert len(srv) == 2 and all(r[3] == "SRV" and r[6] == "80" for r in srv)
    cname = answers(dig(dns_cluster, "outside.default.svc.cluster.local", "A"))
    assert cname[0][3] == "CNAME" and cname[0][-1] == "example.invalid."
    dashed = pod_ips[0].replace(".", "-")
    pod_a = answers(dig(dns_cluster, f"{dashed}.default.pod.cluster.local", "A"))
    assert pod_a[0][-1] == pod_ips[0]


def test_negative_answers_and_no_upstream(dns_cluster: Cluster) -> None:
    missing = dig(dns_cluster, "nope.default.svc.cluster.local", "A")
    assert "status: NXDOMAIN" in missing and "SOA" in missing
    nodata = dig(dns_cluster, "nginx.default.svc.cluster.local", "AAAA")
    assert "status: NOERROR" in nodata and not answers(nodata) and "SOA" in nodata
    outside = dig(dns_cluster, "kubesvc.example", "A")
    assert "status: SERVFAIL" in outside


def test_a_new_service_is_answered(dns_cluster: Cluster) -> None:
    dns_cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fresh"},
                       "spec": {"selector": {"run": "nginx"}, "ports": [{"port": 81}]}})
    ip = json.loads(dns_cluster.kubectl("get", "svc", "fresh", "-o",
                                        "json").stdout)["spec"]["clusterIP"]
    for _ in range(100):
        got = answers(dig(dns_cluster, "fresh.default.svc.cluster.local", "A"))
        if got:
            break
    assert got[0][-1] == ip


@pytest.fixture(autouse=True)
def _dig() -> None:
    if subprocess.run(["which", "dig"], capture_output=True).returncode != 0:
        pytest.fail(f"dig is missing: install dnsutils (scripts/install.sh does) [{sys.argv[0]}]")
