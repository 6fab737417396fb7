"""userspace mode's rules: a pure function from what is served to an `nft -f` transaction.

kube-proxy's userspace mode captured each Service's "portals" (ClusterIP:port, external and
LoadBalancer IPs:port, and the NodePort on every local address) in iptables and redirected them
to the proxy's port for that Service port. Here that is one table of kubesvc's own, with the
portals as map elements, so a change is a few element updates in one atomic transaction:

    nat-prerouting, nat-output:
        meta l4proto { tcp, udp }
            redirect to : ip daddr . meta l4proto . th dport map @service-portals
        fib daddr type local meta l4proto { tcp, udp }
            redirect to : meta l4proto . th dport map @nodeport-portals

A Service port without endpoints has no portal: its addresses are refused at once (TCP reset or
ICMP port unreachable) by the filter chains, as in the kernel modes, rather than accepted and
dropped by the proxy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kubesvc.proxy.nftsets import Element, element_changes, element_commands
from kubesvc.proxy.types import ServicePort, ServicePortName

TABLE = "kubesvc-userspace"
FAMILY = "ip"
SERVICE_PORTALS = "service-portals"
NODEPORT_PORTALS = "nodeport-portals"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
REJECT_CHAIN = "reject-chain"

_SETS = (
    (SERVICE_PORTALS, "map", "type ipv4_addr . inet_proto . inet_service : inet_service ; "
     'comment "Service addresses and the proxy ports they are redirected to" ;'),
    (NODEPORT_PORTALS, "map", "type inet_proto . inet_service : inet_service ; "
     'comment "NodePorts and the proxy ports they are redirected to" ;'),
    (NO_ENDPOINT_SERVICES, "set", "type ipv4_addr . inet_proto . inet_service ; "
     'comment "Service addresses without endpoints, refused" ;'),
    (NO_ENDPOINT_NODEPORTS, "set", "type inet_proto . inet_service ; "
     'comment "NodePorts without endpoints, refused" ;'),
)
_REDIRECTS = (
    f"meta l4proto {{ tcp, udp }} redirect to : ip daddr . meta l4proto . th dport "
    f"map @{SERVICE_PORTALS}",
    f"fib daddr type local meta l4proto {{ tcp, udp }} redirect to : meta l4proto . th dport "
    f"map @{NODEPORT_PORTALS}",
)
_REFUSE = f"ip daddr . meta l4proto . th dport @{NO_ENDPOINT_SERVICES} goto {REJECT_CHAIN}"
# (name, type, hook, priority, rules); the filter chains run before DNAT, as nftables mode's.
CHAINS = (
    ("nat-prerouting", "nat", "prerouting", -100, _REDIRECTS),
    ("nat-output", "nat", "output", -100, _REDIRECTS),
    ("filter-input", "filter", "input", -110, (
        f"fib daddr type local meta l4proto . th dport @{NO_ENDPOINT_NODEPORTS} "
        f"goto {REJECT_CHAIN}",)),
    ("filter-forward", "filter", "forward", -110, (_REFUSE,)),
    ("filter-output", "filter", "output", -110, (
        _REFUSE,
        f"fib daddr type local meta l4proto . th dport @{NO_ENDPOINT_NODEPORTS} "
        f"goto {REJECT_CHAIN}")),
)


def service_elements(svc: ServicePort, proxy_port: int | None) -> dict[Element, str]:
    """What a Service port puts in the table: its portals, redirected to `proxy_port`, or, with
    no endpoints (None), its entries in the refusal sets."""
    proto = svc.protocol.lower()
    addresses = (svc.cluster_ip, *svc.external_ips, *svc.load_balancer_ips)
    elements: dict[Element, str] = {}
    for ip in addresses:
        key = f"{ip} . {proto} . {svc.port}"
        if proxy_port is None:
            elements[(NO_ENDPOINT_SERVICES, key)] = ""
        else:
            elements[(SERVICE_PORTALS, key)] = str(proxy_port)
    if svc.node_port:
        key = f"{proto} . {svc.node_port}"
        if proxy_port is None:
            elements[(NO_ENDPOINT_NODEPORTS, key)] = ""
        else:
            elements[(NODEPORT_PORTALS, key)] = str(proxy_port)
    return elements


def desired_elements(services: Iterable[ServicePort],
                     proxy_ports: Mapping[ServicePortName, int]) -> dict[Element, str]:
    """Every element, given each service port's proxy port (absent: no endpoints). Where two
    Service ports claim one address, the first by name keeps it."""
    elements: dict[Element, str] = {}
    for svc in sorted(services, key=lambda s: s.name):
        for key, value in service_elements(svc, proxy_ports.get(svc.name)).items():
            elements.setdefault(key, value)
    return elements


def render_full(elements: Mapping[Element, str]) -> str:
    """A transaction that replaces the whole table."""
    t = f"{FAMILY} {TABLE}"
    lines = [f'add table {t} {{ comment "rules for kubesvc userspace mode" ; }}',
             f"delete table {t}",
             f'add table {t} {{ comment "rules for kubesvc userspace mode" ; }}']
    lines += [f"add {kind} {t} {name} {{ {decl} }}" for name, kind, decl in _SETS]
    lines += [f"add chain {t} {name} {{ type {kind} hook {hook} priority {prio} ; }}"
              for name, kind, hook, prio, _ in CHAINS]
    lines += [f"add chain {t} {REJECT_CHAIN}",
              f"add rule {t} {REJECT_CHAIN} meta l4proto tcp reject with tcp reset",
              f"add rule {t} {REJECT_CHAIN} reject"]
    lines += [f"add rule {t} {name} {rule}" for name, *_, rules in CHAINS for rule in rules]
    lines += element_commands(t, "add", elements)
    return "\n".join(lines) + "\n"


def render_changes(before: Mapping[Element, str], after: Mapping[Element, str]) -> str:
    """A transaction that moves the table's elements from `before` to `after` ("" if none)."""
    return element_changes(f"{FAMILY} {TABLE}", before, after)
