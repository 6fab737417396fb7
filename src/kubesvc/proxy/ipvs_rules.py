"""ipvs mode's nftables table: the masquerading IPVS needs, and the filter kube-proxy adds.

IPVS rewrites destinations only; kube-proxy's IPVS proxier adds iptables rules over ipsets for
the rest, and this table carries the same rules over nftables sets (set names follow the
ipsets: KUBE-CLUSTER-IP is cluster-ips, KUBE-LOOP-BACK hairpin-endpoints, ...):

- traffic to a ClusterIP from outside the cluster CIDR, and to an external IP, LoadBalancer IP
  or NodePort of a Service with externalTrafficPolicy Cluster, is marked and masqueraded, so
  replies come back through this node (IPVS must see them: net.ipv4.vs.conntrack=1 keeps the
  connections in conntrack for that);
- a pod reaching itself through a Service (a hairpin) is masqueraded;
- new connections to a Service address on a port that is no Service's are refused, since the
  addresses live on the node's kube-ipvs0 and would otherwise reach the node's own sockets
  (KUBE-IPVS-FILTER).

The chains never change; a sync only changes set elements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kubesvc.proxy.nftsets import Element, element_changes, element_commands
from kubesvc.proxy.topology import categorize_endpoints
from kubesvc.proxy.types import Endpoint, NodeConfig, ServicePort

TABLE = "kubesvc-ipvs"
FAMILY = "ip"
MASQ_MARK = "0x4000"
CLUSTER_IPS = "cluster-ips"
EXTERNAL_IPS = "external-ips"
NODE_PORTS = "node-ports"
HAIRPIN = "hairpin-endpoints"
SERVICE_ADDRESSES = "service-addresses"
SERVICE_PORTS = "service-ports"

_SETS = (
    (CLUSTER_IPS, "ipv4_addr . inet_proto . inet_service", "ClusterIP service ports"),
    (EXTERNAL_IPS, "ipv4_addr . inet_proto . inet_service",
     "external and LoadBalancer IP service ports to masquerade"),
    (NODE_PORTS, "inet_proto . inet_service", "NodePorts to masquerade"),
    (HAIRPIN, "ipv4_addr . ipv4_addr", "endpoint pairs for hairpin masquerade"),
    (SERVICE_ADDRESSES, "ipv4_addr", "addresses on kube-ipvs0"),
    (SERVICE_PORTS, "ipv4_addr . inet_proto . inet_service", "every address:port served"),
)


def _chains(node: NodeConfig) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(name, base chain declaration or "", rules)."""
    masquerade = "jump mark-for-masquerade"
    return (
        ("nat-prerouting", "type nat hook prerouting priority -100 ;", ("jump services",)),
        ("nat-output", "type nat hook output priority -100 ;", ("jump services",)),
        ("nat-postrouting", "type nat hook postrouting priority 100 ;", (
            f"ip saddr . ip daddr @{HAIRPIN} masquerade",
            f"meta mark & {MASQ_MARK} == 0 return",
            f"meta mark set meta mark ^ {MASQ_MARK}",
            "masquerade fully-random")),
        # Before IPVS takes the packet in LOCAL_IN.
        ("filter-input", "type filter hook input priority -110 ;", (
            f"ct state new ip daddr @{SERVICE_ADDRESSES} "
            f"ip daddr . meta l4proto . th dport != @{SERVICE_PORTS} reject",)),
        ("services", "", (
            f"ip daddr . meta l4proto . th dport @{CLUSTER_IPS} "
            f"ip saddr != {node.cluster_cidr} {masquerade}",
            f"ip daddr . meta l4proto . th dport @{EXTERNAL_IPS} {masquerade}",
            f"fib daddr type local meta l4proto . th dport @{NODE_PORTS} {masquerade}")),
        ("mark-for-masquerade", "", (f"meta mark set meta mark | {MASQ_MARK}",)),
    )


def service_elements(svc: ServicePort, endpoints: tuple[Endpoint, ...]) -> dict[Element, str]:
    proto = svc.protocol.lower()
    elements: dict[Element, str] = {}
    key = f"{svc.cluster_ip} . {proto} . {svc.port}"
    elements[(CLUSTER_IPS, key)] = ""
    elements[(SERVICE_ADDRESSES, svc.cluster_ip)] = ""
    elements[(SERVICE_PORTS, key)] = ""
    for ip in (*svc.external_ips, *svc.load_balancer_ips):
        key = f"{ip} . {proto} . {svc.port}"
        elements[(SERVICE_ADDRESSES, ip)] = ""
        elements[(SERVICE_PORTS, key)] = ""
        if not svc.external_policy_local:  # Local keeps the client's address
            elements[(EXTERNAL_IPS, key)] = ""
    if svc.node_port and not svc.external_policy_local:
        elements[(NODE_PORTS, f"{proto} . {svc.node_port}")] = ""
    for ep in categorize_endpoints(svc, endpoints).reachable:
        elements[(HAIRPIN, f"{ep.ip} . {ep.ip}")] = ""
    return elements


def desired_elements(services: Iterable[tuple[ServicePort, tuple[Endpoint, ...]]]
                     ) -> dict[Element, str]:
    elements: dict[Element, str] = {}
    for svc, endpoints in services:
        elements.update(service_elements(svc, endpoints))
    return elements


def render_full(node: NodeConfig, elements: Mapping[Element, str]) -> str:
    t = f"{FAMILY} {TABLE}"
    lines = [f'add table {t} {{ comment "rules for kubesvc ipvs mode" ; }}',
             f"delete table {t}",
             f'add table {t} {{ comment "rules for kubesvc ipvs mode" ; }}']
    lines += [f'add set {t} {name} {{ type {kind} ; comment "{comment}" ; }}'
              for name, kind, comment in _SETS]
    chains = _chains(node)
    lines += [f"add chain {t} {name} {{ {decl} }}" if decl else f"add chain {t} {name}"
              for name, decl, _ in chains]
    lines += [f"add rule {t} {name} {rule}" for name, _, rules in chains for rule in rules]
    lines += element_commands(t, "add", elements)
    return "\n".join(lines) + "\n"


def render_changes(before: Mapping[Element, str], after: Mapping[Element, str]) -> str:
    return element_changes(f"{FAMILY} {TABLE}", before, after)
