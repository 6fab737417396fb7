"""The seed's whole terminal session on an isolated node, in every proxy mode, checking what
each step printed.

ipvs mode needs IPVS in the kernel. Where the kernel has none (this machine, CI), the same
walkthrough runs in the test VM (tests/vm: Debian's stock kernel under QEMU), driven by
tests/vm/seed_walkthrough.py, and what its steps printed is checked here just the same.
"""

import asyncio
import ipaddress
import json
import re
import sys
import time
from pathlib import Path

import pytest

from kubesvc.kernel.ipvs import IPVSUnavailable, require_ipvs
from kubesvc.testing import Cluster
from kubesvc.walkthrough import INGRESS_HOST, Step, Walkthrough
from vm import harness

PROJECT = Path(__file__).resolve().parents[2]
VM_TIMEOUT = 900.0  # emulated: 2-3 minutes from boot to power-off, more on a busy machine
TITLE = "<title>Welcome to nginx!</title>"
SEED_ENV = ("NGINX_SERVICE_HOST", "NGINX_SERVICE_PORT", "NGINX_PORT", "NGINX_PORT_80_TCP",
            "NGINX_PORT_80_TCP_ADDR", "NGINX_PORT_80_TCP_PORT", "NGINX_PORT_80_TCP_PROTO",
            "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
            "KUBERNETES_SERVICE_PORT_HTTPS", "KUBERNETES_PORT", "KUBERNETES_PORT_443_TCP",
            "KUBERNETES_PORT_443_TCP_ADDR", "KUBERNETES_PORT_443_TCP_PORT",
            "KUBERNETES_PORT_443_TCP_PROTO")


def rows(output: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in output.splitlines()[1:] if line.strip()}


def ipvs_here() -> bool:
    """Whether this machine's kernel can run ipvs mode (ip_vs is loaded if it can be)."""
    try:
        asyncio.run(require_ipvs())
    except IPVSUnavailable:
        return False
    return True


def walk_here(state_dir: Path, mode: str) -> list[Step]:
    cluster = Cluster(state_dir, extra_args=["--proxy-mode", mode])
    cluster.start()
    try:
        tour = Walkthrough(cluster.kubeconfig, echo=lambda _line: None)
        tour.run(cluster.state_dir)
    finally:
        cluster.stop()
    return tour.steps


def walk_in_vm(share: Path) -> list[Step]:
    """The walkthrough in ipvs mode in the test VM, booted once for it."""
    try:
        image = harness.ensure_image()
    except harness.VMError as exc:
        pytest.fail(f"cannot build the test VM: {exc}")
    job = harness.python_job(PROJECT, sys.executable,
                             ["tests/vm/seed_walkthrough.py", "/vmshare/result.json"])
    start = time.monotonic()
    run = harness.run(image, job, share, VM_TIMEOUT)
    found = share / "result.json"
    if not found.exists():
        pytest.fail(f"the VM job failed (rc {run.rc}) before the walkthrough ran:\n"
                    f"{run.log[-4000:]}\n{run.console[-2000:]}")
    result = json.loads(found.read_text())
    timeline = "\n".join(result["timeline"])
    print(f"the walkthrough in the VM, {time.monotonic() - start:.0f}s from boot to power-off:"
          f"\n{timeline}")
    if result["error"] is not None:
        log = share / "kubesvc.log"
        pytest.fail(f"{result['error']}\n{timeline}\n{result['diagnostics']}\n"
                    f"kubesvc up's log:\n{log.read_text()[-4000:] if log.exists() else ''}")
    assert run.rc == 0, run.log[-4000:]
    return [Step(**step) for step in result["steps"]]


def check(steps: list[Step]) -> None:
    """Every step printed what the seed's session shows."""
    out = {step.command: step.output for step in steps}

    gets = [s.output for s in steps if s.command == "kubectl get service"]
    services = rows(gets[0])
    assert services["kubernetes"][1:5] == ["ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    nginx = services["nginx"]
    assert nginx[1] == "ClusterIP" and nginx[3] == "<none>" and nginx[4] == "80/TCP"
    cluster_ip = nginx[2]
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network("10.96.0.0/12")

    described = out["kubectl describe service nginx"]
    assert re.search(r"^Selector:\s+run=nginx$", described, re.M)
    assert re.search(rf"^IP:\s+{re.escape(cluster_ip)}$", described, re.M)
    endpoints = re.search(r"^Endpoints:\s+(\S+)$", described, re.M)
    assert endpoints is not None
    pod_ips = endpoints.group(1).split(",")
    assert len(pod_ips) == 2 and all(ip.endswith(":80") for ip in pod_ips)
    assert all(ipaddress.ip_address(ip[:-3]) in ipaddress.ip_network("10.244.0.0/16")
               for ip in pod_ips)

    assert TITLE in out[f"kubectl exec client -- wget -q -O - {cluster_ip}"]
    assert TITLE in out["kubectl exec client -- wget -q -O - nginx"]
    env = dict(line.split("=", 1) for line in out["kubectl exec client -- env"].splitlines()
               if "=" in line)
    for name in SEED_ENV:
        assert name in env, name
    assert env["NGINX_SERVICE_HOST"] == cluster_ip
    assert env["NGINX_PORT"] == f"tcp://{cluster_ip}:80"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert TITLE in out["kubectl exec client -- sh -c 'wget -q -O - $NGINX_SERVICE_HOST'"]

    after = rows(gets[-1])
    lb = after["nginx"]
    assert lb[1] == "LoadBalancer" and lb[2] == cluster_ip
    assert ipaddress.ip_address(lb[3])
    node_port = re.fullmatch(r"80:(3\d{4})/TCP", lb[4])
    assert node_port is not None
    from_host = next(s for s in steps if s.command.startswith("wget -O - "))
    assert f":{node_port.group(1)}" in from_host.command and TITLE in from_host.output

    ingress = rows(out["kubectl get ingress"])["ingress"]
    node_ip = from_host.command.split()[3].split(":")[0]
    assert ingress[2:5] == [INGRESS_HOST, node_ip, "80"]
    through_ingress = next(s for s in steps if s.command.startswith("curl "))
    assert TITLE in through_ingress.output

    system = rows(out["kubectl get pods -n kube-system"])
    assert any(name.startswith("coredns-") for name in system)
    assert any(name.startswith("kube-proxy-") for name in system)
    assert any(name.startswith("kube-apiserver-") for name in system)
    assert all(row[2] == "Running" for row in system.values())


@pytest.mark.parametrize("mode", ["nftables", "iptables", "userspace", "ipvs"])
def test_seed_walkthrough(tmp_path: Path, mode: str) -> None:
    if mode == "ipvs" and not ipvs_here():
        steps = walk_in_vm(tmp_path)
    else:
        steps = walk_here(tmp_path / "state", mode)
    check(steps)
