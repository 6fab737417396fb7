"""Services in the control plane, through the real kubectl: ClusterIP and NodePort allocation,
the built-in Services, LoadBalancer addresses, and allocations surviving a restart."""

import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubesvc.testing import Cluster

POOL = "192.0.2.10-192.0.2.12"  # TEST-NET-1: addresses only, nothing is sent to them


@pytest.fixture(scope="module")
def lb_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("lb"), extra_args=["--lb-pool", POOL])
    c.start()
    try:
        yield c
    finally:
        c.stop()


def service(name: str, **spec: object) -> dict[str, object]:
    base: dict[str, object] = {"selector": {"run": name}, "ports": [{"port": 80}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": base}


def rows(cluster: Cluster, *args: str) -> dict[str, list[str]]:
    lines = cluster.kubectl("get", *args).stdout.splitlines()
    return {line.split()[0]: line.split() for line in lines[1:]}


def test_builtin_services_and_the_seeds(lb_cluster: Cluster, seed: Path) -> None:
    lb_cluster.kubectl("apply", "-f", str(seed / "service.yaml"))
    table = rows(lb_cluster, "service")
    assert table["kubernetes"][1:5] == ["ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    assert table["nginx"][1] == "ClusterIP" and table["nginx"][4] == "80/TCP"
    assert ipaddress.ip_address(table["nginx"][2]) in ipaddress.ip_network("10.96.0.0/12")
    dns = rows(lb_cluster, "service", "-n", "kube-system")["kube-dns"]
    assert dns[2] == "10.96.0.10" and dns[4] == "53/UDP,53/TCP,9153/TCP"
    described = lb_cluster.kubectl("describe", "service", "nginx").stdout
    assert re.search(rf"^IP:\s+{re.escape(table['nginx'][2])}$", described, re.M)


def test_chosen_cluster_ip_is_honoured_and_collisions_are_422(lb_cluster: Cluster) -> None:
    lb_cluster.apply(service("fixed", clusterIP="10.96.50.50"))
    assert rows(lb_cluster, "service")["fixed"][2] == "10.96.50.50"
    manifest = json.dumps(service("clash", clusterIP="10.96.50.50"))
    result = lb_cluster.kubectl("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode == 1
    assert "provided IP is already allocated" in result.stderr
    outside = json.dumps(service("outside", clusterIP="10.200.0.1"))
    result = lb_cluster.kubectl("apply", "-f", "-", input=outside, check=False)
    assert result.returncode == 1 and "spec.clusterIPs" in result.stderr
    headless = service("headless", clusterIP="None")
    lb_cluster.apply(headless)
    assert rows(lb_cluster, "service")["headless"][2] == "None"


def test_load_balancer_gets_an_address_and_a_node_port(lb_cluster: Cluster, seed: Path,
                                                       tmp_path: Path) -> None:
    manifest = yaml.safe_load((seed / "service.yaml").read_text())
    manifest["spec"]["type"] = "LoadBalancer"
    path = tmp_path / "lb.yaml"
    path.write_text(yaml.safe_dump(manifest))
    assert "service/nginx configured" in lb_cluster.kubectl("apply", "-f", str(path)).stdout
    lb_cluster.kubectl("wait", "--for=jsonpath={.status.loadBalancer.ingress[0].ip}",
                       "service/nginx", "--timeout=20s")
    row = rows(lb_cluster, "service")["nginx"]
    assert row[1] == "LoadBalancer"
    assert ipaddress.ip_address(row[3]) in {ipaddress.ip_address(f"192.0.2.{i}")
                                            for i in (10, 11, 12)}
    port = re.fullmatch(r"80:(3\d{4})/TCP", row[4])
    assert port is not None and 30000 <= int(port.group(1)) <= 32767
    lb_cluster.kubectl("apply", "-f", str(seed / "service.yaml"))
    back = json.loads(lb_cluster.kubectl("get", "svc", "nginx", "-o", "json").stdout)
    assert back["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in back["spec"]["ports"][0]


def test_node_port_collision_and_exhausted_pool(lb_cluster: Cluster) -> None:
    lb_cluster.apply(service("np-a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    result = lb_cluster.kubectl(
        "apply", "-f", "-", check=False, input=json.dumps(
            service("np-b", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])))
    assert result.returncode == 1
    assert "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated" \
        in result.stderr
    for i in range(4):
        lb_cluster.apply(service(f"lb-{i}", type="LoadBalancer"))
    for _ in range(300):
        events = lb_cluster.kubectl("get", "events", "--field-selector",
                                    "reason=AllocationFailed").stdout
        if "AllocationFailed" in events:
            break
    assert "AllocationFailed" in events
    table = rows(lb_cluster, "service")
    external = sorted(table[f"lb-{i}"][3] for i in range(4))
    assert external == ["192.0.2.10", "192.0.2.11", "192.0.2.12", "<pending>"]


def test_allocations_survive_a_restart(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "state")
    cluster.start()
    try:
        names = [f"svc-{i}" for i in range(20)]
        cluster.apply(*(service(n) for n in names))
        before = {n: r[2] for n, r in rows(cluster, "service").items()}
        cluster.stop()
        cluster.start()
        more = [f"new-{i}" for i in range(20)]
        cluster.apply(*(service(n) for n in more))
        after = rows(cluster, "service")
        assert {n: after[n][2] for n in before} == before
        ips = [r[2] for r in after.values()]
        assert len(ips) == len(set(ips))
    finally:
        cluster.stop()
