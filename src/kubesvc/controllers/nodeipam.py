"""Node IPAM: gives each node a /24 pod CIDR from the cluster CIDR."""

from __future__ import annotations

import ipaddress

from kubesvc.api.resources import of
from kubesvc.client.informer import InformerFactory
from kubesvc.controllers.base import Controller

NODES = of("v1", "Node")
NODE_MASK = 24


class NodeIpamController(Controller):
    name = "node-ipam"

    def __init__(self, informers: InformerFactory, cluster_cidr: str) -> None:
        super().__init__(informers)
        self.cidr = ipaddress.ip_network(cluster_cidr)
        self.nodes = self.informer(NODES)
        self.nodes.add_handlers(self.enqueue_obj, lambda _o, n: self.enqueue_obj(n))

    async def reconcile(self, key: str) -> None:
        node = self.nodes.cache.get(key)
        if node is None or (node.get("spec") or {}).get("podCIDR"):
            return
        taken = {(n.get("spec") or {}).get("podCIDR") for n in self.nodes.list()}
        for subnet in self.cidr.subnets(new_prefix=NODE_MASK):
            if str(subnet) not in taken:
                await self.client.patch(NODES, node["metadata"]["name"], {
                    "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                    "spec": {"podCIDR": str(subnet), "podCIDRs": [str(subnet)]}})
                return
        raise RuntimeError(f"cluster CIDR {self.cidr} has no free /{NODE_MASK} for {key}")
