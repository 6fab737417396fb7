"""Pods for real, driven by the real kubectl: the seed's Deployment and client pod run as
processes in their own network namespaces, exec and logs reach them, controllers scale and
roll them, probes and restarts behave as the kubelet's do, and pods survive a crash."""

import json
import os
import pty
import select
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kubesvc.testing import Cluster

TITLE = "<title>Welcome to nginx!</title>"


def pods(cluster: Cluster, selector: str = "") -> list[dict]:  # type: ignore[type-arg]
    args = ["get", "pods", "-o", "json"] + (["-l", selector] if selector else [])
    return json.loads(cluster.kubectl(*args).stdout)["items"]  # type: ignore[no-any-return]


def ready(pod: dict) -> bool:  # type: ignore[type-arg]
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


def wait_until(check, attempts: int = 600):  # type: ignore[no-untyped-def]
    """Poll `check` (about 0.1 s apart) until it returns something truthy; fail after."""
    for _ in range(attempts):
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"condition never held: {check}")


def test_seed_pods_run_with_their_own_ips(cluster: Cluster, seed: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "server.yaml"), "-f", str(seed / "client.yaml"))
    cluster.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=60s")
    nginx = wait_until(lambda: (p := pods(cluster, "run=nginx")) and len(p) == 2 and
                       all(map(ready, p)) and p)
    client = next(p for p in pods(cluster) if p["metadata"]["name"] == "client")
    ips = {p["status"]["podIP"] for p in nginx} | {client["status"]["podIP"]}
    assert len(ips) == 3
    wide = cluster.kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert all(" Running " in line for line in wide[1:])
    page = cluster.kubectl("exec", "client", "--", "wget", "-q", "-O", "-",
                           nginx[0]["status"]["podIP"]).stdout
    assert TITLE in page
    assert cluster.kubectl("exec", "client", "--", "hostname").stdout.strip() == "client"
    logs = cluster.kubectl("logs", nginx[0]["metadata"]["name"]).stdout
    assert '"GET / HTTP/1.1" 200' in logs
    failed = cluster.kubectl("exec", "client", "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3


def test_exec_it_is_an_interactive_shell(cluster: Cluster, seed: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "client.yaml"))
    cluster.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=60s")
    env = dict(os.environ, HOME=str(cluster.state_dir / "home"),
               KUBECONFIG=str(cluster.kubeconfig))
    kubectl = str(Path(sys.executable).parent / "kubectl")
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([kubectl, "exec", "-it", "client", "--", "/bin/sh"], env=env,
                            stdin=secondary, stdout=secondary, stderr=secondary,
                            start_new_session=True)
    os.close(secondary)
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        for _ in range(300):
            if marker in seen:
                return
            ready_fds, _, _ = select.select([primary], [], [], 0.1)
            if ready_fds:
                try:
                    seen += os.read(primary, 4096)
                except OSError:
                    break
        raise AssertionError(f"{marker!r} not in {seen!r}")

    try:
        read_until(b"# ")  # the shell's prompt: the remote terminal is up
        os.write(primary, b"echo marker-$((6*7)); hostname; tty\r")
        read_until(b"marker-42")
        read_until(b"/dev/pts/")
        assert b"client" in seen
        os.write(primary, b"exit 5\r")
        assert proc.wait(30) == 5
    finally:
        proc.kill()
        os.close(primary)


def test_port_forward_reaches_the_pod(cluster: Cluster, seed: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "client.yaml"))
    cluster.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=60s")
    env = dict(os.environ, HOME=str(cluster.state_dir / "home"),
               KUBECONFIG=str(cluster.kubeconfig))
    kubectl = str(Path(sys.executable).parent / "kubectl")
    proc = subprocess.Popen([kubectl, "port-forward", "pod/client", "0:80"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # Forwarding from 127.0.0.1:PORT -> 80
        port = int(line.split("127.0.0.1:")[1].split()[0])
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
                assert TITLE in resp.read().decode()
    finally:
        proc.terminate()
        proc.wait(10)


def test_scale_rollout_and_delete(cluster: Cluster, seed: Path) -> None:
    cluster.kubectl("apply", "-f", str(seed / "server.yaml"))
    cluster.kubectl("scale", "deployment", "nginx", "--replicas=5")
    wait_until(lambda: len([p for p in pods(cluster, "run=nginx") if ready(p)]) == 5)
    cluster.kubectl("scale", "deployment", "nginx", "--replicas=1")
    wait_until(lambda: len(pods(cluster, "run=nginx")) == 1)
    cluster.kubectl("scale", "deployment", "nginx", "--replicas=4")
    cluster.kubectl("rollout", "status", "deployment/nginx", "--timeout=60s")
    before = {p["metadata"]["name"] for p in pods(cluster, "run=nginx")}
    cluster.kubectl("rollout", "restart", "deployment/nginx")
    lowest = 4
    for _ in range(600):
        d = json.loads(cluster.kubectl("get", "deploy", "nginx", "-o", "json").stdout)
        status = d.get("status", {})
        lowest = min(lowest, status.get("availableReplicas", 0))
        if status.get("updatedReplicas") == 4 and status.get("availableReplicas") == 4 and \
                status.get("replicas") == 4 and status.get("observedGeneration") == \
                d["metadata"]["generation"]:
            break
        time.sleep(0.05)
    after = {p["metadata"]["name"] for p in pods(cluster, "run=nginx")}
    assert not before & after
    assert lowest >= 3  # maxUnavailable 25% of 4
    history = cluster.kubectl("rollout", "history", "deployment/nginx").stdout
    assert "1 " in history and "2 " in history
    cluster.kubectl("rollout", "pause", "deployment/nginx")
    cluster.kubectl("set", "image", "deployment/nginx", "nginx=nginx:1.27")
    paused = json.loads(cluster.kubectl("get", "rs", "-o", "json").stdout)["items"]
    assert not any(c["image"] == "nginx:1.27" for rs in paused
                   for c in rs["spec"]["template"]["spec"]["containers"])
    cluster.kubectl("rollout", "resume", "deployment/nginx")
    cluster.kubectl("rollout", "status", "deployment/nginx", "--timeout=60s")
    assert "rolled back" in cluster.kubectl("rollout", "undo", "deployment/nginx").stdout
    cluster.kubectl("rollout", "status", "deployment/nginx", "--timeout=60s")
    images = {c["image"] for p in pods(cluster, "run=nginx") for c in p["spec"]["containers"]}
    assert images == {"nginx:alpine"}
    cluster.kubectl("delete", "deployment", "nginx")
    wait_until(lambda: not pods(cluster, "run=nginx"))
    assert "No resources found" in cluster.kubectl("get", "rs").stderr


def test_killed_process_restarts_and_readiness_follows_its_probe(cluster: Cluster) -> None:
    cluster.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed"},
        "spec": {"containers": [{
            "name": "web", "image": "busybox",
            "command": ["sh", "-c", "touch /tmp/ready-$HOSTNAME; exec httpd -f -p 8417"],
            "readinessProbe": {"exec": {"command": ["sh", "-c", "test -e /tmp/ready-probed"]},
                               "periodSeconds": 1, "failureThreshold": 1},
        }]},
    })
    cluster.kubectl("wait", "--for=condition=Ready", "pod/probed", "--timeout=60s")
    cluster.kubectl("exec", "probed", "--", "rm", "/tmp/ready-probed")
    cluster.kubectl("wait", "--for=condition=Ready=false", "pod/probed", "--timeout=30s")
    cluster.kubectl("exec", "probed", "--", "touch", "/tmp/ready-probed")
    cluster.kubectl("wait", "--for=condition=Ready", "pod/probed", "--timeout=30s")
    # The pod's init ignores signals sent from inside its PID namespace: kill it from the host.
    main = [pid for pid in os.listdir("/proc") if pid.isdigit() and
            _cmdline(pid) == ["httpd", "-f", "-p", "8417"]]
    assert len(main) == 1
    os.kill(int(main[0]), 9)
    restarted = wait_until(lambda: (p := json.loads(cluster.kubectl(
        "get", "pod", "probed", "-o", "json").stdout)) and
        p["status"]["containerStatuses"][0]["restartCount"] >= 1 and p)
    assert "terminated" in restarted["status"]["containerStatuses"][0]["lastState"]
    cluster.kubectl("delete", "pod", "probed", "--grace-period=1")


def _cmdline(pid: str) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def test_pods_survive_a_crash_and_nothing_leaks(tmp_path: Path, seed: Path) -> None:
    cluster = Cluster(tmp_path / "state")
    cluster.start()
    try:
        cluster.kubectl("apply", "-f", str(seed / "server.yaml"))
        before = wait_until(lambda: (p := pods(cluster, "run=nginx")) and len(p) == 2 and
                            all(map(ready, p)) and p)
        ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in before}
        cluster.kill()
        cluster.start()
        after = wait_until(lambda: (p := pods(cluster, "run=nginx")) and all(map(ready, p)) and p)
        assert {p["metadata"]["name"]: p["status"]["podIP"] for p in after} == ips
        assert all(p["status"]["containerStatuses"][0]["restartCount"] == 0 for p in after)
    finally:
        cluster.stop()
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"ksvc-{cluster.name}" not in leftovers
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"ksvc-{cluster.name}" not in links
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(cluster.state_dir) not in procs


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.fail("pods need root: run the suite as root (scripts/test.sh does)")
