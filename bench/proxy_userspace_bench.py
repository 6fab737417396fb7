"""userspace mode's relay against the pod itself and against haproxy, as root, in one run.

wrk in a client pod sends HTTP to one nginx pod (one worker, a tiny page) three ways:

1. straight to the pod's IP;
2. to a ClusterIP served by userspace mode (kubesvc's UserspaceDataplane: redirect rules, one
   relay worker per core);
3. to a second ClusterIP that a redirect rule sends to haproxy (Debian's package) on the node,
   relaying TCP (`mode tcp`) with one thread per core, the same work userspace mode does.

each with keep-alive connections and with a new connection per request (`Connection: close`).
Everything runs in namespaces made here (kub<pid>…). Medians of `--runs` runs; ratios rather
than absolute numbers mean something on a shared machine.

    sudo .venv/bin/python bench/proxy_userspace_bench.py [--runs 3] [--duration 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from wrkrate import rate

from kubesvc.kernel import nft
from kubesvc.proxy.tracker import ChangeTracker
from kubesvc.proxy.types import NodeConfig
from kubesvc.proxy.userspace import UserspaceDataplane, cleanup

PREFIX = f"kub{os.getpid() % 10000}"
NODE_NS, WEB_NS, CLIENT_NS = f"{PREFIX}n", f"{PREFIX}w", f"{PREFIX}c"
GATEWAY, WEB_IP, CLIENT_IP = "10.244.0.1", "10.244.0.2", "10.244.0.4"
VIP, HAPROXY_VIP, HAPROXY_PORT = "10.96.0.10", "10.96.0.11", 8888
NODE = NodeConfig("node-a", ("192.0.2.2",), "10.244.0.0/16", "10.96.0.0/12")
NGINX_CONF = """worker_processes 1; daemon off; master_process off; pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 80 reuseport; location / {{ return 200 "ok\\n"; }} }} }}
"""
HAPROXY_CONF = """global
    nbthread {threads}
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend relay
    bind {gateway}:{port}
    default_backend web
backend web
    server web {web}:80
"""
# The haproxy ClusterIP, redirected as userspace mode's own rules redirect theirs.
HAPROXY_RULES = f"""table ip kub-haproxy {{
    chain prerouting {{ type nat hook prerouting priority -100 ; }}
    chain output {{ type nat hook output priority -100 ; }}
}}
add rule ip kub-haproxy prerouting ip daddr {HAPROXY_VIP} tcp dport 80 redirect to :{HAPROXY_PORT}
add rule ip kub-haproxy output ip daddr {HAPROXY_VIP} tcp dport 80 redirect to :{HAPROXY_PORT}
"""


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def build(tmp: Path, threads: int) -> list[subprocess.Popen[bytes]]:
    for ns in (NODE_NS, WEB_NS, CLIENT_NS):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", NODE_NS, "link", "add", "kbr0", "type", "bridge")
    sh("ip", "-n", NODE_NS, "addr", "add", f"{GATEWAY}/24", "dev", "kbr0")
    sh("ip", "-n", NODE_NS, "link", "set", "kbr0", "up")
    for ns, ip, port in ((WEB_NS, WEB_IP, "vweb"), (CLIENT_NS, CLIENT_IP, "vclient")):
        sh("ip", "-n", NODE_NS, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", NODE_NS, "link", "set", port, "master", "kbr0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", GATEWAY)
    sh("ip", "-n", NODE_NS, "route", "add", "10.96.0.0/12", "dev", "kbr0", "src", GATEWAY)
    sh("ip", "netns", "exec", NODE_NS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
       "net.bridge.bridge-nf-call-iptables=1", "net.ipv4.ip_local_port_range=1024 65000",
       "net.ipv4.tcp_tw_reuse=1")
    sh("ip", "netns", "exec", CLIENT_NS, "sysctl", "-q", "-w",
       "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1")
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp))
    (tmp / "haproxy.cfg").write_text(HAPROXY_CONF.format(
        threads=threads, gateway=GATEWAY, port=HAPROXY_PORT, web=WEB_IP))
    return [
        subprocess.Popen(["ip", "netns", "exec", WEB_NS, "nginx", "-p", str(tmp), "-e",
                          str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")]),
        subprocess.Popen(["ip", "netns", "exec", NODE_NS, "haproxy", "-db", "-f",
                          str(tmp / "haproxy.cfg")]),
    ]


def teardown(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        proc.kill()
        proc.wait()
    for ns in (NODE_NS, WEB_NS, CLIENT_NS):
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def wrk(target: str, close: bool, duration: int) -> float:
    return rate(CLIENT_NS, f"http://{target}/", duration,
                headers=("Connection: close",) if close else (), errors_fail=False)


def service(name: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]}}


def endpoint_slice(name: str, ips: list[str]) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"{name}-1",
                         "labels": {"kubernetes.io/service-name": name}},
            "endpoints": [{"addresses": [ip], "nodeName": "node-a"} for ip in ips],
            "ports": [{"name": "http", "port": 80}]}


async def measure(args: argparse.Namespace) -> dict[str, float]:
    targets = {"direct": WEB_IP, "userspace": VIP, "haproxy": HAPROXY_VIP}
    runs: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for close in (False, True):
            for name, ip in targets.items():
                key = f"{name} {'new-conn' if close else 'keep-alive'}"
                runs.setdefault(key, []).append(wrk(ip, close, args.duration))
                time.sleep(1)  # let TIME_WAIT and the CPU settle between runs
    return {key: statistics.median(values) for key, values in runs.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "nginx", "haproxy") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (apt-get install {' '.join(missing)})")
    threads = len(os.sched_getaffinity(0))
    processes: list[subprocess.Popen[bytes]] = []
    dataplane = UserspaceDataplane(NODE, NODE_NS, workers=threads)
    try:
        with tempfile.TemporaryDirectory(prefix="kub") as tmp:
            processes = build(Path(tmp), threads)
            await nft.apply(NODE_NS, HAPROXY_RULES)
            tracker = ChangeTracker("node-a")
            tracker.service_changed(None, service("web", VIP))
            tracker.slice_changed(None, endpoint_slice("web", [WEB_IP]))
            await dataplane.sync(tracker.snapshot(), full=True)
            await asyncio.sleep(1)
            results = await measure(args)
    finally:
        await dataplane.close()
        await cleanup(NODE_NS)
        teardown(processes)
    print(f"\n{'':28}{'req/s':>12}")
    for key, value in results.items():
        print(f"{key:28}{value:>12.0f}")
    for mode in ("keep-alive", "new-conn"):
        ours, direct, haproxy = (results[f"{n} {mode}"] for n in ("userspace", "direct",
                                                                   "haproxy"))
        print(f"{mode}: userspace/direct {ours / direct:.2f}, haproxy/direct "
              f"{haproxy / direct:.2f}, userspace/haproxy {ours / haproxy:.2f} (target >= 0.5)")


if __name__ == "__main__":
    asyncio.run(main())
