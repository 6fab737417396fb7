"""Cluster DNS: queries per second and p99 latency, kubesvc's server against dnsmasq.

Both serve the same names on loopback: N Services' A records and their ClusterIPs' PTR
records, kubesvc's from its index (fed by an in-memory API, in a child process of its own, as
`kubesvc up` would run it) and dnsmasq's from a hosts file. dnsperf drives each in turn, in
alternating rounds: throughput at saturation (100 queries outstanding), then p99 latency at a
fixed moderate rate, where queueing does not drown the server's own latency. Neither server
ever forwards: no query leaves the machine.

    .venv/bin/python bench/dns_bench.py [--services 1000] [--seconds 8] [--rounds 2]

Needs dnsperf and dnsmasq (Debian: `apt-get install dnsperf dnsmasq-base`).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubesvc.dns.server import ClusterDNS
from kubesvc.dns.testing import FakeApi
from kubesvc.dns.wire import wire_name
from kubesvc.testing import free_port

ZONE = "cluster.local"


def cluster_ip(i: int) -> str:
    return str(ipaddress.IPv4Address("10.96.0.10") + i)


def names(count: int) -> list[tuple[str, str]]:
    return [(f"svc-{i}.default.svc.{ZONE}", cluster_ip(i)) for i in range(count)]


async def serve_kubesvc(port: int, count: int) -> None:
    """The child process: kubesvc's DNS server until killed."""
    api = FakeApi()
    api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    for i in range(count):
        api.put({"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": f"svc-{i}", "namespace": "default"},
                 "spec": {"clusterIP": cluster_ip(i),
                          "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    factory = api.informers()
    server = ClusterDNS(factory, zone=ZONE, upstreams=[])
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", port))
    factory.start()
    serving = asyncio.create_task(server.serve(udp, tcp, None))
    while not server.ready:
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    await serving


@contextmanager
def kubesvc_server(port: int, count: int, loop: str) -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--services",
                             str(count), "--loop", loop], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("kubesvc's DNS server did not start")
        yield
    finally:
        proc.kill()
        proc.wait()


@contextmanager
def dnsmasq_server(port: int, hosts: Path) -> Iterator[None]:
    proc = subprocess.Popen(
        ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
         "--no-hosts", f"--addn-hosts={hosts}", f"--port={port}", "--listen-address=127.0.0.1",
         "--bind-interfaces", "--pid-file=", "--log-facility=/dev/null", "--cache-size=0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_answer(port)
        yield
    finally:
        proc.kill()
        proc.wait()


def wait_for_answer(port: int) -> None:
    query = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             + wire_name(f"svc-0.default.svc.{ZONE}") + b"\x00\x01\x00\x01")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        for _ in range(100):
            sock.sendto(query, ("127.0.0.1", port))
            try:
                if sock.recv(512)[:2] == b"\x12\x34":
                    return
            except TimeoutError:
                time.sleep(0.1)
    raise RuntimeError(f"no DNS answer on port {port}")


def dnsperf(port: int, queries: Path, seconds: float, rate: int | None = None
            ) -> tuple[float, list[float]]:
    """Queries per second, and each answer's latency when `rate` is set (-v is costly)."""
    argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l",
            str(seconds), "-T", "1", "-c", "1"]
    if rate:
        argv += ["-Q", str(rate), "-v"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    if lost and int(lost.group(1)):
        print(f"  (port {port}: {lost.group(1)} queries lost)")
    latencies = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("> ")]
    return qps, latencies


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) > 100 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=int, default=5000, help="queries/s for the latency run")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if args.loop == "uvloop":
            import uvloop
            uvloop.run(serve_kubesvc(args.serve, args.services))
        else:
            asyncio.run(serve_kubesvc(args.serve, args.services))
        return
    missing = [tool for tool in ("dnsperf", "dnsmasq") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: apt-get install dnsperf dnsmasq-base")

    with tempfile.TemporaryDirectory() as tmp:
        hosts, queries = Path(tmp, "hosts"), Path(tmp, "queries")
        pairs = names(args.services)
        hosts.write_text("".join(f"{ip} {name}\n" for name, ip in pairs))
        # Four address lookups to one reverse lookup, every name in turn.
        queries.write_text("".join(
            f"{ipaddress.ip_address(ip).reverse_pointer} PTR\n" if i % 5 == 4 else f"{name} A\n"
            for i, (name, ip) in enumerate(pairs)))
        ports = {"kubesvc": free_port(), "dnsmasq": free_port()}
        best: dict[str, tuple[float, float]] = {}
        with kubesvc_server(ports["kubesvc"], args.services, args.loop), \
                dnsmasq_server(ports["dnsmasq"], hosts):
            wait_for_answer(ports["kubesvc"])
            for round_no in range(1, args.rounds + 1):
                for server, port in ports.items():
                    qps, _ = dnsperf(port, queries, args.seconds)
                    _, latencies = dnsperf(port, queries, args.seconds / 2, args.rate)
                    latency = p99(latencies)
                    print(f"round {round_no} {server:8} {qps:9.0f} q/s   "
                          f"p99 at {args.rate} q/s: {latency * 1000:.3f} ms")
                    old_qps, old_p99 = best.get(server, (0.0, float("inf")))
                    best[server] = (max(old_qps, qps), min(old_p99, latency))
    (k_qps, k_p99), (d_qps, d_p99) = best["kubesvc"], best["dnsmasq"]
    print(f"\n{args.services} Services, A:PTR 4:1, best of {args.rounds} rounds, "
          f"kubesvc on {args.loop}")
    print(f"{'':10}{'queries/s':>12}{'p99 (ms)':>12}")
    print(f"{'kubesvc':10}{k_qps:12.0f}{k_p99 * 1000:12.3f}")
    print(f"{'dnsmasq':10}{d_qps:12.0f}{d_p99 * 1000:12.3f}")
    print(f"ratio: {k_qps / d_qps:.2f}x dnsmasq's throughput (target >= 0.5x)")


if __name__ == "__main__":
    main()
