"""ipvs mode on a real kernel: run inside the test VM by tests/integration/test_proxy_ipvs.py,
every scenario in one boot.

    python tests/vm/ipvs_scenarios.py RESULTS.json

Inside the VM (no network device; every address here exists only there):

    outside 192.0.2.1(+.20-.25) ── eth0 192.0.2.2  node  kbr0 10.244.0.1/24 ─┬─ pod1   .2
                                                   kube-ipvs0 (ClusterIPs)    ├─ pod2   .3
                                                                              └─ client .4(+.20-.25)

pod1 and pod2 run busybox httpd answering with their name. Services go through the real
change tracker into IPVSDataplane. Each scenario's outcome is written to RESULTS.json as
{"name": {"ok": bool, "detail": str}}; one failing does not stop the others.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kubesvc.kernel.ipvs import IP_VS_SVC_F_PERSISTENT, IPVS, RealServerStatus, VirtualServer
from kubesvc.kernel.netns import open_socket
from kubesvc.proxy import ipvs as ipvs_mode
from kubesvc.proxy.ipvs import IPVSDataplane
from kubesvc.proxy.schedulers import DestinationHashing, Scheduler, SourceHashing
from kubesvc.proxy.tracker import ChangeTracker
from kubesvc.proxy.types import NodeConfig

NODE, OUTSIDE = "vmnode", "vmout"
PODS = {"pod1": "10.244.0.2", "pod2": "10.244.0.3", "client": "10.244.0.4"}
NODE_IP, OUTSIDE_IP = "192.0.2.2", "192.0.2.1"
CLIENT_SOURCES = [f"10.244.0.{n}" for n in range(20, 26)]
OUTSIDE_SOURCES = [f"192.0.2.{n}" for n in range(20, 26)]
NODE_CONFIG = NodeConfig("vm-node", (NODE_IP,), "10.244.0.0/16", "10.96.0.0/12")
SCHEDULERS = ("rr", "lc", "dh", "sh", "sed", "nq")
SCENARIOS = ("schedulers_cluster_ip", "schedulers_node_port", "kernel_counters",
             "endpoint_changes", "draining", "session_affinity", "hairpin",
             "resync_repairs", "cleanup")


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def build(www: Path) -> None:
    for ns in (NODE, OUTSIDE, *PODS):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", NODE, "link", "add", "kbr0", "type", "bridge")
    sh("ip", "-n", NODE, "addr", "add", "10.244.0.1/24", "dev", "kbr0")
    sh("ip", "-n", NODE, "link", "set", "kbr0", "up")
    for pod, ip in PODS.items():
        sh("ip", "-n", NODE, "link", "add", f"v{pod}", "type", "veth", "peer", "name", "eth0",
           "netns", pod)
        sh("ip", "-n", NODE, "link", "set", f"v{pod}", "master", "kbr0", "up")
        sh("bridge", "-n", NODE, "link", "set", "dev", f"v{pod}", "hairpin", "on")
        sh("ip", "-n", pod, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", pod, "link", "set", "eth0", "up")
        sh("ip", "-n", pod, "route", "add", "default", "via", "10.244.0.1")
    for ip in CLIENT_SOURCES:
        sh("ip", "-n", "client", "addr", "add", f"{ip}/24", "dev", "eth0")
    sh("ip", "-n", NODE, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
       "netns", OUTSIDE)
    sh("ip", "-n", NODE, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
    sh("ip", "-n", NODE, "link", "set", "eth0", "up")
    for ip in (OUTSIDE_IP, *OUTSIDE_SOURCES):
        sh("ip", "-n", OUTSIDE, "addr", "add", f"{ip}/24", "dev", "eth0")
    sh("ip", "-n", OUTSIDE, "link", "set", "eth0", "up")
    sh("ip", "netns", "exec", NODE, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
       "net.bridge.bridge-nf-call-iptables=1")
    for pod in ("pod1", "pod2"):
        (www / pod).mkdir()
        (www / pod / "index.html").write_text(pod)
        sh("ip", "netns", "exec", pod, "busybox", "httpd", "-p", "80", "-h", str(www / pod))


def service(name: str, ip: str, *, scheduler: str = "", node_port: int = 0,
            **spec: Any) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 80}
    if node_port:
        port["nodePort"] = node_port
        spec["type"] = "NodePort"
    annotations = {"kubesvc.io/scheduler": scheduler} if scheduler else {}
    return {"metadata": {"namespace": "default", "name": name, "annotations": annotations},
            "spec": {"clusterIP": ip, "ports": [port], **spec}}


def endpoint_slice(name: str, pods: list[str]) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"{name}-1",
                         "labels": {"kubernetes.io/service-name": name}},
            "endpoints": [{"addresses": [PODS[p]], "nodeName": "vm-node"} for p in pods],
            "ports": [{"name": "http", "port": 80}]}


async def connect(netns: str, host: str, port: int, source: str | None = None
                  ) -> socket.socket:
    sock = await open_socket(netns)
    if source:
        sock.bind((source, 0))
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), 5)
    return sock


async def request(sock: socket.socket) -> str:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := await asyncio.wait_for(loop.sock_recv(sock, 4096), 5):
        data += chunk
    return data.decode().partition("\r\n\r\n")[2]


async def get(netns: str, host: str, port: int = 80, source: str | None = None) -> str:
    sock = await connect(netns, host, port, source)
    try:
        return await request(sock)
    finally:
        sock.close()


def _pick(scheduler: Scheduler, client: str, dest: str) -> int:
    index = scheduler.pick(client, dest)
    assert index is not None
    return index


def reset(sock: socket.socket) -> None:
    """Close with a reset: IPVS then forgets the connection in seconds, not minutes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Scenarios:
    def __init__(self) -> None:
        self.tracker = ChangeTracker("vm-node")
        self.dataplane = IPVSDataplane(NODE_CONFIG, NODE)
        self.ipvs: IPVS | None = None
        self.held: list[socket.socket] = []

    async def apply(self, *objects: dict[str, Any], full: bool = False) -> None:
        for obj in objects:
            if "spec" in obj:
                self.tracker.service_changed(None, obj)
            else:
                self.tracker.slice_changed(None, obj)
        await self.dataplane.sync(self.tracker.snapshot(), full)

    async def real_servers(self, address: str, port: int) -> list[RealServerStatus]:
        assert self.ipvs is not None
        for vs in await self.ipvs.virtual_servers():
            if (vs.address, vs.port) == (address, port):
                return await self.ipvs.real_servers(vs)
        raise AssertionError(f"no virtual server {address}:{port}")

    async def holder_of(self, address: str, port: int) -> str:
        """The backend with an active connection (the one a held connection went to)."""
        busy = [s.server.address for s in await self.real_servers(address, port) if s.active]
        assert len(busy) == 1, busy
        return next(p for p, ip in PODS.items() if ip == busy[0])

    async def check_scheduler(self, scheduler: str, netns: str, address: str, port: int,
                              sources: list[str]) -> str:
        """Requests to a virtual server behave as `scheduler` should; what was seen."""
        answers = [await get(netns, address, port) for _ in range(4)]
        if scheduler == "rr":
            assert all(a != b for a, b in itertools.pairwise(answers)), answers
        elif scheduler in ("lc", "sed", "nq"):
            held = await connect(netns, address, port)
            self.held.append(held)
            busy = await self.holder_of(address, port)
            answers = [await get(netns, address, port) for _ in range(3)]
            reset(held)
            self.held.remove(held)
            assert busy not in answers, (busy, answers)
            answers.insert(0, f"held:{busy}")
        else:
            order = [s.server for s in await self.real_servers(address, port)]
            pods = [next(p for p, ip in PODS.items() if ip == rs.address) for rs in order]
            weights = [rs.weight for rs in order]
            # kubesvc's own pickers, run over the kernel's list of real servers, predict it.
            if scheduler == "dh":
                expected = [pods[_pick(DestinationHashing(weights), "", address)]] * 4
            else:
                answers = [await get(netns, address, port, src) for src in sources]
                expected = [pods[_pick(SourceHashing(weights), src, "")] for src in sources]
                assert len(set(answers)) == 2, answers
            assert answers == expected, (answers, expected)
        return f"{scheduler}: {' '.join(answers)}"

    async def schedulers_cluster_ip(self) -> str:
        objects = []
        for i, scheduler in enumerate(SCHEDULERS):
            objects += [service(f"s-{scheduler}", f"10.96.1.{10 + i}", scheduler=scheduler,
                                node_port=30100 + i),
                        endpoint_slice(f"s-{scheduler}", ["pod1", "pod2"])]
        await self.apply(*objects)
        seen = []
        for i, scheduler in enumerate(SCHEDULERS):
            vs = next(v for v in await self._servers() if v.address == f"10.96.1.{10 + i}")
            assert vs.scheduler == scheduler, vs
            seen.append(await self.check_scheduler(scheduler, "client", vs.address, 80,
                                                   CLIENT_SOURCES))
        return "; ".join(seen)

    async def schedulers_node_port(self) -> str:
        seen = []
        for i, scheduler in enumerate(SCHEDULERS):
            seen.append(await self.check_scheduler(scheduler, OUTSIDE, NODE_IP, 30100 + i,
                                                   OUTSIDE_SOURCES))
        return "; ".join(seen)

    async def _servers(self) -> list[VirtualServer]:
        assert self.ipvs is not None
        return await self.ipvs.virtual_servers()

    async def kernel_counters(self) -> str:
        """Every connection made so far to the rr Service shows in the kernel's counters."""
        await self.apply(service("counted", "10.96.1.30", node_port=30130),
                         endpoint_slice("counted", ["pod1", "pod2"]))
        seen = [await get("client", "10.96.1.30") for _ in range(6)]
        seen += [await get(OUTSIDE, NODE_IP, 30130) for _ in range(4)]
        expected = {"pod1": seen.count("pod1"), "pod2": seen.count("pod2")}
        deadline = time.monotonic() + 15  # IPVS sums its per-CPU counters every 2 s
        while True:
            counted = {"pod1": 0, "pod2": 0}
            for address, port in (("10.96.1.30", 80), (NODE_IP, 30130)):
                for status in await self.real_servers(address, port):
                    pod = next(p for p, ip in PODS.items() if ip == status.server.address)
                    counted[pod] += status.connections
            if counted == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert counted == expected, (counted, expected)
        return f"answers {expected}, kernel counted {counted}"

    async def endpoint_changes(self) -> str:
        await self.apply(service("moving", "10.96.1.40"), endpoint_slice("moving", ["pod1"]))
        assert {await get("client", "10.96.1.40") for _ in range(3)} == {"pod1"}
        held = await connect("client", "10.96.1.40", 80)  # to pod1, kept across the change
        try:
            await self.apply(endpoint_slice("moving", ["pod2"]))
            after = {await get("client", "10.96.1.40") for _ in range(4)}
            assert after == {"pod2"}, after
            old = await request(held)
            assert old == "pod1", old
        finally:
            held.close()
        await self.apply(endpoint_slice("moving", ["pod1", "pod2"]))
        both = {await get("client", "10.96.1.40") for _ in range(4)}
        assert both == {"pod1", "pod2"}, both
        return f"pod1 -> pod2 (held connection still on {old}) -> both"

    async def draining(self) -> str:
        await self.apply(service("drain", "10.96.1.50"), endpoint_slice("drain", ["pod1"]))
        held = await connect("client", "10.96.1.50", 80)
        await self.apply(endpoint_slice("drain", ["pod2"]))
        states = {s.server.address: (s.server.weight, s.active)
                  for s in await self.real_servers("10.96.1.50", 80)}
        assert states == {PODS["pod1"]: (0, 1), PODS["pod2"]: (1, 0)}, states
        reset(held)
        deadline = time.monotonic() + 30  # a reset connection leaves IPVS in 10 s
        while True:
            await self.dataplane.sync(self.tracker.snapshot(), True)
            left = [s.server.address for s in await self.real_servers("10.96.1.50", 80)]
            if left == [PODS["pod2"]] or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        assert left == [PODS["pod2"]], left
        return f"quiesced {states}, then only {left}"

    async def session_affinity(self) -> str:
        await self.apply(
            service("sticky", "10.96.1.60", sessionAffinity="ClientIP",
                    sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}),
            endpoint_slice("sticky", ["pod1", "pod2"]))
        vs = next(v for v in await self._servers() if v.address == "10.96.1.60")
        assert vs.flags & IP_VS_SVC_F_PERSISTENT and vs.timeout == 60, vs
        answers = [await get("client", "10.96.1.60") for _ in range(6)]
        assert len(set(answers)) == 1, answers
        return f"persistent {vs.timeout}s: {' '.join(answers)}"

    async def hairpin(self) -> str:
        await self.apply(service("self", "10.96.1.70"), endpoint_slice("self", ["pod1"]))
        answers = [await get("pod1", "10.96.1.70") for _ in range(2)]
        assert answers == ["pod1", "pod1"], answers
        return "pod1 reached itself through its ClusterIP"

    async def resync_repairs(self) -> str:
        """A full sync puts back what was removed behind its back and removes strangers."""
        assert self.ipvs is not None
        stranger = VirtualServer("10.96.9.9", "TCP", 81)
        await self.ipvs.add_virtual_server(stranger)
        vs = next(v for v in await self._servers() if v.address == "10.96.1.40")
        await self.ipvs.delete_virtual_server(vs)
        await self.dataplane.sync(self.tracker.snapshot(), True)
        addresses = {v.address for v in await self._servers()}
        assert "10.96.1.40" in addresses and "10.96.9.9" not in addresses, addresses
        assert await get("client", "10.96.1.40") in ("pod1", "pod2")
        return "restored 10.96.1.40, removed 10.96.9.9"

    async def cleanup(self) -> str:
        await self.dataplane.close()
        await ipvs_mode.cleanup(NODE)
        assert not await self._servers()
        out = subprocess.run(["ip", "-n", NODE, "link", "show", ipvs_mode.DUMMY],
                             capture_output=True, text=True)
        assert out.returncode != 0, out.stdout
        rules = await ipvs_mode.programmed_rules(NODE)
        assert "kubesvc-ipvs" not in rules, rules
        return "no virtual server, no kube-ipvs0, no table"


async def run(results_path: Path) -> None:
    results: dict[str, dict[str, Any]] = {}
    scenarios = Scenarios()
    with tempfile.TemporaryDirectory() as www:
        build(Path(www))
        scenarios.ipvs = await IPVS.open(NODE)
        await scenarios.apply(full=True)  # as the proxy starts: everything, once
        for name in SCENARIOS:
            check: Callable[[], Awaitable[str]] = getattr(scenarios, name)
            start = time.monotonic()
            try:
                detail = await check()
                results[name] = {"ok": True, "detail": detail}
            except Exception:  # reported to the host, which fails that test
                results[name] = {"ok": False, "detail": traceback.format_exc()}
            results[name]["seconds"] = round(time.monotonic() - start, 1)
            print(name, results[name], flush=True)
            results_path.write_text(json.dumps(results, indent=1))
        scenarios.ipvs.close()


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1])))
