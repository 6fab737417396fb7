"""LoadBalancer addresses the node answers for: each Service's status.loadBalancer IP that
lies on the node's own link is held on the node's loopback, so the host's ARP for it is
answered by the node (as MetalLB announces its addresses), and the service proxy's rules
take the traffic from there."""

from __future__ import annotations

import asyncio
import ipaddress

from kubesvc.api.resources import of
from kubesvc.client.informer import InformerFactory
from kubesvc.kernel.links import set_local_addresses
from kubesvc.kernel.nodenet import NodeNetwork

SERVICES = of("v1", "Service")


class LoadBalancerAddresses:
    def __init__(self, informers: InformerFactory, node: NodeNetwork) -> None:
        self.node = node
        self.services = informers.get(SERVICES)
        self._changed = asyncio.Event()
        self.services.add_handlers(lambda _s: self._changed.set(),
                                   lambda _o, _n: self._changed.set(),
                                   lambda _s: self._changed.set())

    def _wanted(self) -> set[str]:
        link = ipaddress.ip_network(f"{self.node.node_ip}/24", strict=False)
        ips = set()
        for svc in self.services.list():
            for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get(
                    "ingress") or []:
                ip = ingress.get("ip")
                if ip and ipaddress.ip_address(ip) in link and ip != self.node.node_ip:
                    ips.add(ip)
        return ips

    async def run(self) -> None:
        await self.services.synced.wait()
        while True:
            self._changed.clear()
            await set_local_addresses(self.node.netns, "lo", self._wanted())
            await self._changed.wait()
