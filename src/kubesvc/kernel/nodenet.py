"""A node's network: the namespace pods hang off, with the pod bridge and its safety net.

A node is either the host's own namespace (`isolated=False`) or a namespace kubesvc creates
(`ksvc-<cluster>`), joined to the host by a veth pair on a small 172.30.<n>.0/24 link, so the
host reaches the node's IP the way it reaches a minikube VM. Several clusters, told apart by
name, can run side by side.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from kubesvc.kernel import guard, links
from kubesvc.kernel.netns import add_netns, delete_netns
from kubesvc.kernel.sysctl import read_sysctl, set_sysctls

BRIDGE = "kbr0"
NODE_LINK_SUPERNET = ipaddress.IPv4Network("172.30.0.0/16")
_IFNAMSIZ = 15


class NodeNetworkError(Exception):
    """The node's network cannot be set up (e.g. no free 172.30.<n>.0/24 link subnet)."""


def cluster_tag(name: str) -> str:
    """`name` shortened so that `ksvc-<tag>h` fits in an interface name."""
    clean = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-") or "k"
    room = _IFNAMSIZ - len("ksvc-h")
    if len(clean) <= room:
        return clean
    return clean[:4] + hashlib.sha256(name.encode()).hexdigest()[: room - 4]


class NodeNetwork:
    def __init__(
        self,
        name: str,
        pod_cidr: str = "10.244.0.0/24",
        isolated: bool = True,
        *,
        cluster_cidr: str = "10.244.0.0/16",
        service_cidr: str = "10.96.0.0/12",
    ) -> None:
        self.name = name
        self.tag = cluster_tag(name)
        self.pod_cidr = ipaddress.IPv4Network(pod_cidr)
        self.cluster_cidr = ipaddress.IPv4Network(cluster_cidr)
        self.service_cidr = ipaddress.IPv4Network(service_cidr)
        self.isolated = isolated
        self.bridge = BRIDGE
        self.gateway = str(self.pod_cidr.network_address + 1)
        self.host_link = f"ksvc-{self.tag}h"
        self._node_if: ipaddress.IPv4Interface | None = None
        self._host_ip: str | None = None
        # Settings a host-namespace node needs but that kubesvc never changes on the host.
        self.warnings: list[str] = []

    @property
    def netns(self) -> str | None:
        """The `ip netns` name of the node, None when the node is the host's namespace."""
        return f"ksvc-{self.tag}" if self.isolated else None

    @property
    def node_ip(self) -> str:
        if self._node_if is None:
            raise NodeNetworkError(f"node network {self.name!r} is not set up")
        return str(self._node_if.ip)

    @property
    def host_ip(self) -> str:
        """The host's address facing the node (the node's own IP for a host-namespace node)."""
        if self._host_ip is None:
            raise NodeNetworkError(f"node network {self.name!r} is not set up")
        return self._host_ip

    def pod_netns(self, short_id: str) -> str:
        return f"ksvc-{self.tag}-{short_id}"

    async def setup(self) -> None:
        """Create or complete the node network; safe to call again after a restart."""
        if self.isolated:
            await self._setup_isolated()
        else:
            await self._setup_host()
        ns = self.netns
        await links.ip_batch(
            ns,
            (
                []
                if await links.link_exists(ns, self.bridge)
                else [f"link add {self.bridge} type bridge"]
            )
            + [
                f"addr replace {self.gateway}/{self.pod_cidr.prefixlen} dev {self.bridge}",
                f"link set {self.bridge} up",
            ]
            # The node's own connections to ClusterIPs need a route to start from (a host
            # has its default route; an isolated node has none): DNAT re-routes them.
            + ([f"route replace {self.service_cidr} dev {self.bridge}"] if self.isolated else []),
        )
        allowed = [str(self.cluster_cidr), str(self.service_cidr)]
        if self._node_if is not None and self.isolated:
            allowed.append(str(self._node_if.network))
        await guard.apply_guard(ns, self.bridge, allowed)
        if ns is not None:
            # Measured (research/dataplane-feasibility.md): forwarding for pod->VIP, conntrack
            # on bridged frames so DNAT'd replies are un-NATed, localhost NodePorts via kbr0.
            await set_sysctls(
                ns,
                {
                    "net.ipv4.ip_forward": "1",
                    "net.bridge.bridge-nf-call-iptables": "1",
                    f"net.ipv4.conf.{self.bridge}.route_localnet": "1",
                },
            )
        else:
            await self._check_host_sysctls()

    async def teardown(self) -> None:
        """Remove everything setup() made. Pods should have been stopped first."""
        if self.isolated:
            assert self.netns is not None
            await delete_netns(self.netns)
            # A process still inside would keep the namespace, and so the veth pair, alive.
            await links.delete_link(None, self.host_link)
        else:
            await guard.delete_guard(None)
            await links.delete_link(None, self.bridge)
        self._node_if = None
        self._host_ip = None

    async def _setup_isolated(self) -> None:
        ns = self.netns
        assert ns is not None
        await add_netns(ns)
        if await links.link_exists(None, self.host_link):
            host_ifs = await links.ipv4_interfaces(None, self.host_link)
            if host_ifs and await links.link_exists(ns, "eth0"):
                self._set_link(host_ifs[0].network)
                return
            await links.delete_link(None, self.host_link)
        subnet = await self._free_link_subnet()
        self._set_link(subnet)
        assert self._node_if is not None
        await links.ip_batch(
            None,
            [
                f"link add {self.host_link} type veth peer name eth0 netns {ns}",
                f"addr add {self._host_ip}/{subnet.prefixlen} dev {self.host_link}",
                f"link set {self.host_link} up",
            ],
        )
        await links.ip_batch(
            ns, [f"addr replace {self._node_if.with_prefixlen} dev eth0", "link set eth0 up"]
        )

    def _set_link(self, subnet: ipaddress.IPv4Network) -> None:
        self._host_ip = str(subnet.network_address + 1)
        self._node_if = ipaddress.IPv4Interface(f"{subnet.network_address + 2}/{subnet.prefixlen}")

    async def _free_link_subnet(self) -> ipaddress.IPv4Network:
        """172.30.<n>.0/24 with n derived from the name, moving on while the host uses it."""
        used = [i.network for i in await links.ipv4_interfaces(None)]
        used += await links.ipv4_routes(None)
        start = int(hashlib.sha256(self.name.encode()).hexdigest(), 16) % 254
        for step in range(254):
            n = (start + step) % 254 + 1
            candidate = ipaddress.IPv4Network(f"172.30.{n}.0/24")
            if not any(candidate.overlaps(net) for net in used):
                return candidate
        raise NodeNetworkError(f"no free /24 in {NODE_LINK_SUPERNET} for node {self.name!r}")

    async def _setup_host(self) -> None:
        globals_ = [
            i
            for i in await links.ipv4_interfaces(None)
            if not i.ip.is_loopback and i.ip not in self.pod_cidr
        ]
        if not globals_:
            raise NodeNetworkError("the host has no IPv4 address to serve as the node IP")
        self._node_if = globals_[0]
        self._host_ip = str(globals_[0].ip)

    async def _check_host_sysctls(self) -> None:
        wanted = {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"}
        self.warnings = [
            f"{key} is not {value} on the host: pods cannot reach Services"
            for key, value in wanted.items()
            if await read_sysctl(None, key) != value
        ]
