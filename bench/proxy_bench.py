"""Service proxy data plane, per mode (nftables and iptables), as root:

1. wrk from a client pod to one nginx pod, straight to the pod IP and through a ClusterIP with
   that one endpoint, keep-alive and new-connection (`Connection: close`); ratio VIP/direct.
2. 10,000 Services x 10 endpoints: the first full sync (render and apply), a one-Service
   endpoint change (same count, and one endpoint more), and wrk new-connection throughput
   through the real Service with all 10,000 present, against step 1's with it alone.

Everything runs in namespaces made here (kpb<pid>…): a node with a bridge, a web pod, a client
pod. The fake endpoints are never sent anything and are blackholed in the node. Medians of
`--runs` runs; ratios rather than absolute numbers mean something on a shared machine.

    sudo .venv/bin/python bench/proxy_bench.py [--services 10000] [--endpoints 10]
        [--modes nftables iptables-legacy iptables-nft] [--runs 3] [--duration 8]

iptables-nft 1.8.9's `restore --noflush` slows down quadratically with the number of chains
(hours at 10,000 services), so that mode's scale step stops at --iptables-nft-services.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from wrkrate import rate

from kubesvc.proxy.dataplanes import Dataplane, cleanup, new_dataplane
from kubesvc.proxy.tracker import ChangeTracker
from kubesvc.proxy.types import NodeConfig

PREFIX = f"kpb{os.getpid() % 10000}"
NODE_NS, WEB_NS, CLIENT_NS = f"{PREFIX}n", f"{PREFIX}w", f"{PREFIX}c"
WEB_IP, CLIENT_IP, VIP = "10.244.0.2", "10.244.0.4", "10.96.0.10"
NODE = NodeConfig("node-a", ("192.0.2.2",), "10.244.0.0/16", "10.96.0.0/12", "10.244.0.0/24")
NGINX_CONF = """worker_processes 1; daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 80 reuseport; location / {{ return 200 "ok\\n"; }} }} }}
"""


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def build(tmp: Path) -> subprocess.Popen[bytes]:
    for ns in (NODE_NS, WEB_NS, CLIENT_NS):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", NODE_NS, "link", "add", "kbr0", "type", "bridge")
    sh("ip", "-n", NODE_NS, "addr", "add", "10.244.0.1/24", "dev", "kbr0")
    sh("ip", "-n", NODE_NS, "link", "set", "kbr0", "up")
    for ns, ip, port in ((WEB_NS, WEB_IP, "vweb"), (CLIENT_NS, CLIENT_IP, "vclient")):
        sh("ip", "-n", NODE_NS, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", NODE_NS, "link", "set", port, "master", "kbr0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", "10.244.0.1")
    sh("ip", "-n", NODE_NS, "route", "add", "10.96.0.0/12", "dev", "kbr0", "src", "10.244.0.1")
    sh("ip", "-n", NODE_NS, "route", "add", "blackhole", "10.200.0.0/13")
    sh("ip", "netns", "exec", NODE_NS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
       "net.bridge.bridge-nf-call-iptables=1")
    sh("ip", "netns", "exec", CLIENT_NS, "sysctl", "-q", "-w",
       "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1")
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp))
    # Its own session, so the master and its worker can be killed together.
    return subprocess.Popen(["ip", "netns", "exec", WEB_NS, "nginx", "-p", str(tmp), "-e",
                             str(tmp / "error.log"), "-c", str(conf)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def teardown(nginx: subprocess.Popen[bytes] | None) -> None:
    if nginx is not None:
        os.killpg(nginx.pid, signal.SIGKILL)
        nginx.wait()
    for ns in (NODE_NS, WEB_NS, CLIENT_NS):
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def wrk(target: str, close: bool, duration: int) -> float:
    # A fresh conntrack table for each run, so no run pays for the last one's entries.
    subprocess.run(["ip", "netns", "exec", NODE_NS, "conntrack", "-F"], capture_output=True)
    return rate(CLIENT_NS, f"http://{target}/", duration,
                headers=("Connection: close",) if close else (), errors_fail=False)


def paired(close: bool, args: argparse.Namespace) -> tuple[float, float]:
    """Medians for the pod IP and the VIP, measured alternately so drift hits both alike."""
    direct: list[float] = []
    vip: list[float] = []
    for i in range(args.runs):
        order = [(WEB_IP, direct), (VIP, vip)]
        for target, results in order if i % 2 == 0 else reversed(order):
            results.append(wrk(target, close, args.duration))
    return statistics.median(direct), statistics.median(vip)


def service(name: str, namespace: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}]}}


def endpoint_slice(name: str, namespace: str, ips: list[str]) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": f"{name}-1",
                         "labels": {"kubernetes.io/service-name": name}},
            "endpoints": [{"addresses": [ip], "nodeName": "node-b"} for ip in ips],
            "ports": [{"name": "http", "port": 80}]}


def fake_endpoints(i: int, count: int, generation: int = 0) -> list[str]:
    """Addresses in 10.200.0.0/13, which the node blackholes."""
    base = (i * count + generation * 7919) % (1 << 19)
    return [f"10.{200 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"
            for n in (base + k for k in range(count))]


def fill(tracker: ChangeTracker, services: int, endpoints: int) -> None:
    # Namespace "bench" sorts before "default": the real Service comes last in iptables'
    # KUBE-SERVICES, the worst case for its linear search (as the research measured).
    for i in range(services):
        name = f"svc-{i:05d}"
        tracker.service_changed(None, service(name, "bench", f"10.100.{i // 250}.{i % 250 + 1}"))
        tracker.slice_changed(None, endpoint_slice(name, "bench", fake_endpoints(i, endpoints)))


def cpu() -> float:
    """CPU seconds of this process and its finished children (nft, iptables-restore): on a
    shared machine a steadier measure of the work than wall time."""
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                     resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def timed(coro: Any) -> tuple[float, float]:
    """(wall, CPU) seconds of awaiting `coro`."""
    start, start_cpu = time.perf_counter(), cpu()
    await coro
    return time.perf_counter() - start, cpu() - start_cpu


MODES = {"nftables": ("nftables", "iptables"), "iptables-legacy": ("iptables", "iptables-legacy"),
         "iptables-nft": ("iptables", "iptables-nft")}


async def bench_mode(name: str, args: argparse.Namespace) -> dict[str, float]:
    mode, backend = MODES[name]
    services = min(args.services, args.iptables_nft_services) if name == "iptables-nft" \
        else args.services
    r: dict[str, float] = {"services": services}
    dataplane = new_dataplane(mode, NODE, NODE_NS, iptables_backend=backend)
    tracker = ChangeTracker("node-a")
    tracker.service_changed(None, service("web", "default", VIP))
    tracker.slice_changed(None, endpoint_slice("web", "default", [WEB_IP]))
    await dataplane.sync(tracker.snapshot(), full=True)
    await asyncio.sleep(0.5)
    r["direct keep-alive"], r["VIP keep-alive"] = paired(False, args)
    r["direct new-conn"], r["VIP new-conn"] = paired(True, args)

    await cleanup(mode, NODE_NS, iptables_backend=backend)
    dataplane = new_dataplane(mode, NODE, NODE_NS, iptables_backend=backend)
    fill(tracker, services, args.endpoints)

    async def full_sync() -> None:
        await dataplane.sync(tracker.snapshot(), full=True)

    r["full sync s"], r["full sync CPU s"] = await timed(full_sync())

    same: list[tuple[float, float]] = []
    more: list[tuple[float, float]] = []
    for k in range(args.runs * 2):
        i = (k * 997) % services
        name = f"svc-{i:05d}"
        replaced = fake_endpoints(i, args.endpoints)
        replaced[0] = fake_endpoints(i, 1, generation=k + 1)[0]
        for ips, results in ((replaced, same), ([*replaced, "10.207.255.1"], more)):

            results.append(await timed(change(tracker, dataplane, name, ips)))
    for label, results in (("same count", same), ("+1 endpoint", more)):
        r[f"one-Service change, {label} ms"] = statistics.median(w for w, _ in results) * 1000
        r[f"one-Service change, {label} CPU ms"] = statistics.median(c for _, c in results) * 1000
    await asyncio.sleep(0.5)
    r["direct new-conn, all Services"], r["VIP new-conn, all Services"] = paired(True, args)
    r["cleanup s"], _ = await timed(cleanup(mode, NODE_NS, iptables_backend=backend))
    return r


async def change(tracker: ChangeTracker, dataplane: Dataplane, name: str,
                 ips: list[str]) -> None:
    """One Service's endpoints change, synced as the proxy would: snapshot, plan, apply."""
    tracker.slice_changed(None, endpoint_slice(name, "bench", ips))
    await dataplane.sync(tracker.snapshot(), full=False)


def report(results: dict[str, dict[str, float]]) -> None:
    modes = list(results)
    print(f"\n{'':40}" + "".join(f"{m:>17}" for m in modes))
    for key in results[modes[0]]:
        print(f"{key:40}" + "".join(f"{results[m][key]:>17.2f}" for m in modes))
    for m in modes:
        r = results[m]
        alone = r["VIP new-conn"] / r["direct new-conn"]
        loaded = r["VIP new-conn, all Services"] / r["direct new-conn, all Services"]
        print(f"{m}: VIP/direct keep-alive {r['VIP keep-alive'] / r['direct keep-alive']:.2f}, "
              f"new-conn {alone:.2f}; new-conn with all {r['services']:.0f} Services "
              f"{loaded:.2f} (VIP {r['VIP new-conn, all Services'] / r['VIP new-conn']:.2f}x "
              "of alone)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--modes", nargs="+", choices=list(MODES),
                        default=["nftables", "iptables-legacy", "iptables-nft"])
    parser.add_argument("--iptables-nft-services", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    args = parser.parse_args()
    nginx = None
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="kpb") as tmp:
            nginx = build(Path(tmp))
            await asyncio.sleep(0.5)
            for mode in args.modes:
                results[mode] = await bench_mode(mode, args)
                print(mode, results[mode], flush=True)
    finally:
        teardown(nginx)
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
