"""Pod start-up: time from `kubectl apply` of an N-replica nginx Deployment to every replica
Ready, pods started per second, and the same for scaling down to zero. Needs root.

As a baseline measured in the same run, the same number of pod sandboxes are made by hand
(`ip netns add`, a veth pair into a bridge, an address, nginx started in the namespace), so
the ratio shows what the API, controllers and agent add on top of the kernel work.

    .venv/bin/python bench/pods_bench.py [--replicas 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kubesvc.testing import Cluster


def wait_for(check: Callable[[], bool], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("gave up waiting")
        time.sleep(0.02)


def deployment(replicas: int) -> dict[str, object]:
    labels = {"app": "bench"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "nginx",
                                                           "image": "nginx:alpine"}]}}}}


def ready_count(cluster: Cluster) -> int:
    pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=bench", "-o",
                                      "json").stdout)["items"]
    return sum(1 for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                      for c in p["status"].get("conditions", [])))


def through_kubesvc(replicas: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp) / "state")
        cluster.start()
        try:
            start = time.perf_counter()
            cluster.apply(deployment(replicas))
            wait_for(lambda: ready_count(cluster) == replicas)
            up = time.perf_counter() - start
            start = time.perf_counter()
            cluster.kubectl("scale", "deployment", "bench", "--replicas=0")
            wait_for(lambda: not json.loads(cluster.kubectl(
                "get", "pods", "-l", "app=bench", "-o", "json").stdout)["items"])
            down = time.perf_counter() - start
        finally:
            cluster.stop()
    return up, down


def by_hand(replicas: int, workdir: Path) -> float:
    """The kernel work of N sandboxes with nginx, without kubesvc."""
    def sh(cmd: str) -> None:
        subprocess.run(cmd, shell=True, check=True, capture_output=True)

    sh("ip netns add kbench-node")
    try:
        node = "ip netns exec kbench-node"
        sh(f"{node} ip link add kbr0 type bridge && {node} ip link set kbr0 up")
        start = time.perf_counter()
        for i in range(replicas):
            ns = f"kbench-{i}"
            conf = workdir / f"nginx-{i}.conf"
            conf.write_text(f"daemon off; pid {workdir}/nginx-{i}.pid; error_log stderr;"
                            f"events {{}} http {{ access_log off; server {{ listen 80; }} }}\n")
            sh(f"ip netns add {ns} && ip link add v{i} netns kbench-node type veth peer "
               f"name eth0 netns {ns} && {node} ip link set v{i} master kbr0 up && "
               f"ip -n {ns} addr add 10.250.0.{i + 2}/24 dev eth0 && "
               f"ip -n {ns} link set eth0 up && ip -n {ns} link set lo up")
            subprocess.Popen(["ip", "netns", "exec", ns, "nginx", "-c", str(conf)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(replicas):
            wait_for(lambda i=i: subprocess.run(
                ["ip", "netns", "exec", f"kbench-{i}", "timeout", "2", "busybox", "wget", "-q",
                 "-O", "/dev/null", "http://127.0.0.1/"], capture_output=True).returncode == 0)
        return time.perf_counter() - start
    finally:
        for i in range(replicas):
            sh(f"ip netns pids kbench-{i} | xargs -r kill; ip netns del kbench-{i} || true")
        sh("ip netns del kbench-node")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", type=int, default=20)
    args = parser.parse_args()
    n = args.replicas
    with tempfile.TemporaryDirectory() as tmp:
        baseline = by_hand(n, Path(tmp))
    up, down = through_kubesvc(n)
    print(f"{n} sandboxes + nginx by hand      : {baseline:6.2f} s  ({n / baseline:5.1f} pods/s)")
    print(f"apply -> {n} replicas Ready (kubesvc): {up:6.2f} s  ({n / up:5.1f} pods/s, "
          f"{baseline / up:.2f}x by hand)")
    print(f"scale {n} -> 0, all pods gone        : {down:6.2f} s")


if __name__ == "__main__":
    main()
