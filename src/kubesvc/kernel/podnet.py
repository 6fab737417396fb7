"""A pod's network namespace: a veth pair from the node's bridge, the pod IP, a default route."""

from __future__ import annotations

import ipaddress

from kubesvc.kernel import links
from kubesvc.kernel.netns import add_netns, delete_netns, netns_exists
from kubesvc.kernel.nodenet import NodeNetwork


async def create_pod_network(node: NodeNetwork, netns: str, veth: str, ip: str) -> None:
    """Plumb `netns` into the node's bridge with `ip`; completes a half-made one."""
    await add_netns(netns)
    address = ipaddress.IPv4Interface(f"{ip}/{node.pod_cidr.prefixlen}")
    if not await links.link_exists(node.netns, veth):
        await links.ip_batch(
            node.netns, [f"link add {veth} type veth peer name eth0 netns {netns}"]
        )
    # hairpin: a pod reaching itself through a Service VIP gets the frame back out of the
    # port it came in on (what the CNI bridge plugin's hairpinMode sets).
    await links.ip_batch(
        node.netns,
        [
            f"link set {veth} master {node.bridge}",
            f"link set {veth} type bridge_slave hairpin on",
            f"link set {veth} up",
        ],
    )
    await links.ip_batch(
        netns,
        [
            f"addr replace {address.with_prefixlen} dev eth0",
            "link set eth0 up",
            f"route replace default via {node.gateway} dev eth0",
        ],
    )


async def pod_network_ready(node: NodeNetwork, netns: str, veth: str) -> bool:
    return netns_exists(netns) and await links.link_exists(node.netns, veth)


async def delete_pod_network(node: NodeNetwork, netns: str, veth: str) -> None:
    """Remove the pod's veth pair and namespace; missing pieces are fine."""
    await links.delete_link(node.netns, veth)
    await delete_netns(netns)
