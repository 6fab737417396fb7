"""Requests per second through the ingress controller against straight to one nginx pod, in one
run. Needs root and wrk.

One cluster with the ingress addon, one nginx pod behind a Service and an Ingress. wrk runs in
the node's network namespace (where the pod's IP is reachable, as it is from the controller)
against the pod itself (the baseline) and against the node's IP with the Ingress's host
(through the controller, which proxies to the same pod), alternating so both see the same
machine, with the same threads, connections and duration. Prints the medians and their ratio
(target: at least 0.7).

    .venv/bin/python bench/ingress_bench.py [--duration 10] [--connections 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from wrkrate import rate

from kubesvc.kernel.nodenet import cluster_tag
from kubesvc.testing import Cluster

HOST = "bench.test"


def wait_for(check: Callable[[], bool], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("gave up waiting")
        time.sleep(0.2)


def manifests() -> list[dict[str, object]]:
    labels = {"app": "bench"}
    backend = {"service": {"name": "bench", "port": {"number": 80}}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                      {"name": "nginx", "image": "nginx:alpine"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench"},
         "spec": {"selector": labels, "ports": [{"port": 80}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bench"},
         "spec": {"rules": [{"host": HOST, "http": {"paths": [
             {"path": "/", "pathType": "Prefix", "backend": backend}]}}]}},
    ]


def through_ingress_works(node_ip: str) -> bool:
    request = urllib.request.Request(f"http://{node_ip}/", headers={"Host": HOST})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return b"Welcome to nginx!" in resp.read()
    except (urllib.error.URLError, OSError):
        return False


def wrk(netns: str, url: str, args: argparse.Namespace, host: str = "") -> float:
    return rate(netns, url, args.duration, threads=args.threads, connections=args.connections,
                headers=(f"Host: {host}",) if host else ())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp) / "state")
        cluster.start()
        try:
            subprocess.run([sys.executable, "-m", "kubesvc", "addons", "enable", "ingress",
                            "--state-dir", str(cluster.state_dir)], check=True,
                           capture_output=True)
            cluster.apply(*manifests())
            cluster.kubectl("rollout", "status", "deployment/bench", "--timeout=120s")
            node_ip = cluster.kubectl("get", "node", "-o", "jsonpath={.items[0].status."
                                      "addresses[0].address}").stdout
            wait_for(lambda: through_ingress_works(node_ip))
            pod = json.loads(cluster.kubectl("get", "pods", "-l", "app=bench", "-o",
                                             "json").stdout)["items"][0]
            netns = f"ksvc-{cluster_tag(cluster.name)}"
            direct: list[float] = []
            ingress: list[float] = []
            for _ in range(args.rounds):
                direct.append(wrk(netns, f"http://{pod['status']['podIP']}/", args))
                ingress.append(wrk(netns, f"http://{node_ip}/", args, HOST))
        finally:
            cluster.stop()
    base, through = statistics.median(direct), statistics.median(ingress)
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
          f"median of {args.rounds} alternating rounds")
    print(f"  straight to the nginx pod:    {base:10.0f} req/s  {direct}")
    print(f"  through the ingress:          {through:10.0f} req/s  {ingress}")
    print(f"  ratio ingress / direct:       {through / base:10.2f}  (target >= 0.70)")


if __name__ == "__main__":
    main()
