"""iptables mode: rule generation, a pure function from a snapshot to `iptables-restore` input.

The layout is kube-proxy's iptables mode (pkg/proxy/iptables), the one the seed describes and
users know: nat KUBE-SERVICES matches each ClusterIP, external IP and LoadBalancer IP and
jumps to KUBE-SVC-* (KUBE-SVL-* for Local policy, KUBE-EXT-* for external traffic), which
picks a KUBE-SEP-* chain with `-m statistic --mode random --probability 1/(n-i)` (`-m recent`
first, for ClientIP affinity), which DNATs; KUBE-NODEPORTS does the same for NodePorts;
KUBE-MARK-MASQ marks, KUBE-POSTROUTING masquerades; filter KUBE-SERVICES and
KUBE-EXTERNAL-SERVICES refuse traffic to service ports without endpoints.

Each sync is one `iptables-restore --noflush` payload: a declared chain (`:CHAIN - [0:0]`) is
flushed and refilled, undeclared chains are left alone, so a partial sync writes the top-level
chains plus only the chains of services that changed, and deletes (`-X`) chains no longer used.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kubesvc.proxy.topology import categorize_endpoints, policy_chains
from kubesvc.proxy.types import Endpoint, NodeConfig, ProxySnapshot, ServicePort, ServicePortName

MASQ_MARK = "0x4000"
SERVICES_CHAIN = "KUBE-SERVICES"
EXTERNAL_SERVICES_CHAIN = "KUBE-EXTERNAL-SERVICES"
NODEPORTS_CHAIN = "KUBE-NODEPORTS"
POSTROUTING_CHAIN = "KUBE-POSTROUTING"
MARK_MASQ_CHAIN = "KUBE-MARK-MASQ"
FORWARD_CHAIN = "KUBE-FORWARD"
# Prefixes of the per-service chains, which syncs create and delete.
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-")

FILTER_CHAINS = (SERVICES_CHAIN, EXTERNAL_SERVICES_CHAIN, FORWARD_CHAIN)
NAT_CHAINS = (SERVICES_CHAIN, NODEPORTS_CHAIN, POSTROUTING_CHAIN, MARK_MASQ_CHAIN)


@dataclass(frozen=True)
class JumpRule:
    """A rule in a built-in chain that leads to one of ours; kept in place across syncs."""

    table: str
    chain: str
    target: str
    comment: str
    extra: tuple[str, ...] = ()

    def args(self) -> list[str]:
        return [*self.extra, "-m", "comment", "--comment", self.comment, "-j", self.target]


NEW = ("-m", "conntrack", "--ctstate", "NEW")
JUMP_RULES = (
    JumpRule("filter", "INPUT", EXTERNAL_SERVICES_CHAIN,
             "kubernetes externally-visible service portals", NEW),
    JumpRule("filter", "FORWARD", EXTERNAL_SERVICES_CHAIN,
             "kubernetes externally-visible service portals", NEW),
    JumpRule("filter", "FORWARD", SERVICES_CHAIN, "kubernetes service portals", NEW),
    JumpRule("filter", "OUTPUT", SERVICES_CHAIN, "kubernetes service portals", NEW),
    JumpRule("filter", "FORWARD", FORWARD_CHAIN, "kubernetes forwarding rules"),
    JumpRule("nat", "OUTPUT", SERVICES_CHAIN, "kubernetes service portals"),
    JumpRule("nat", "PREROUTING", SERVICES_CHAIN, "kubernetes service portals"),
    JumpRule("nat", "POSTROUTING", POSTROUTING_CHAIN, "kubernetes postrouting rules"),
)


def _static_filter_rules() -> list[str]:
    return [
        f"-A {FORWARD_CHAIN} -m conntrack --ctstate INVALID -j DROP",
        f'-A {FORWARD_CHAIN} -m comment --comment "kubernetes forwarding rules" '
        f"-m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT",
        f'-A {FORWARD_CHAIN} -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]


def _static_nat_rules() -> list[str]:
    return [
        f"-A {POSTROUTING_CHAIN} -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A {POSTROUTING_CHAIN} -j MARK --xor-mark {MASQ_MARK}",
        f'-A {POSTROUTING_CHAIN} -m comment --comment "kubernetes service traffic requiring '
        'SNAT" -j MASQUERADE --random-fully',
        f"-A {MARK_MASQ_CHAIN} -j MARK --or-mark {MASQ_MARK}",
    ]


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def service_chain(name: ServicePortName) -> str:
    return "KUBE-SVC-" + _hash16(str(name) + name.protocol.lower())


def local_chain(name: ServicePortName) -> str:
    return "KUBE-SVL-" + _hash16(str(name) + name.protocol.lower())


def external_chain(name: ServicePortName) -> str:
    return "KUBE-EXT-" + _hash16(str(name) + name.protocol.lower())


def endpoint_chain(name: ServicePortName, ep: Endpoint) -> str:
    return "KUBE-SEP-" + _hash16(str(name) + name.protocol.lower() + str(ep))


def _comment(text: str) -> str:
    return f'"{text}"' if " " in text else text


@dataclass(frozen=True)
class ServiceRules:
    """What one service port contributes: its own nat chains (rules as `-A` lines) and its
    lines in the shared chains."""

    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    nat_services: tuple[str, ...] = ()
    nat_nodeports: tuple[str, ...] = ()
    filter_services: tuple[str, ...] = ()
    filter_external: tuple[str, ...] = ()


def _service_to_endpoint_rules(svc: ServicePort, chain: str,
                               endpoints: tuple[Endpoint, ...]) -> list[str]:
    rules = []
    if svc.affinity_timeout:
        for ep in endpoints:
            sep = endpoint_chain(svc.name, ep)
            rules.append(f"-A {chain} -m comment --comment {_comment(f'{svc.name} -> {ep}')} "
                         f"-m recent --name {sep} --rcheck --seconds {svc.affinity_timeout} "
                         f"--reap -j {sep}")
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        pick = f"-m statistic --mode random --probability {1.0 / (n - i):0.10f} " if i < n - 1 \
            else ""
        rules.append(f"-A {chain} -m comment --comment {_comment(f'{svc.name} -> {ep}')} "
                     f"{pick}-j {endpoint_chain(svc.name, ep)}")
    return rules


def service_rules(svc: ServicePort, endpoints: tuple[Endpoint, ...],
                  node: NodeConfig) -> ServiceRules:
    eps = categorize_endpoints(svc, endpoints)
    name = svc.name
    proto = svc.protocol.lower()
    match = f"-m {proto} -p {proto}"
    chains: dict[str, list[str]] = {}
    nat_services: list[str] = []
    nat_nodeports: list[str] = []
    filter_services: list[str] = []
    filter_external: list[str] = []

    policy = policy_chains(svc, eps, service_chain(name), local_chain(name))
    uses_cluster_chain, uses_local_chain = policy.uses_cluster, policy.uses_local
    internal_chain, has_internal = policy.internal, policy.has_internal
    external_policy_chain, has_external = policy.external, policy.has_external
    uses_external_chain = policy.uses_external
    # No endpoints at all: refuse (TCP with a reset, the rest port-unreachable) at once.
    # Endpoints, but none for this traffic policy: drop.
    if eps.has_any:
        no_endpoints = f"{_comment(f'{name} has no local endpoints')} {match}"
        target = "-j DROP"
    else:
        no_endpoints = f"{_comment(f'{name} has no endpoints')} {match}"
        target = "-j REJECT --reject-with tcp-reset" if proto == "tcp" else "-j REJECT"

    cluster_dst = f"-d {svc.cluster_ip} --dport {svc.port}"
    if has_internal:
        nat_services.append(f"-A {SERVICES_CHAIN} -m comment --comment "
                            f'"{name} cluster IP" {match} {cluster_dst} -j {internal_chain}')
    else:
        filter_services.append(f"-A {SERVICES_CHAIN} -m comment --comment {no_endpoints} "
                               f"{cluster_dst} {target}")
    for kind, ips in (("external IP", svc.external_ips),
                      ("loadbalancer IP", svc.load_balancer_ips)):
        for ip in ips:
            dst = f"-d {ip} --dport {svc.port}"
            if uses_external_chain:
                nat_services.append(f'-A {SERVICES_CHAIN} -m comment --comment "{name} {kind}" '
                                    f"{match} {dst} -j {external_chain(name)}")
            if not has_external:
                filter_external.append(f"-A {EXTERNAL_SERVICES_CHAIN} -m comment --comment "
                                       f"{no_endpoints} {dst} {target}")
    if svc.node_port:
        if uses_external_chain:
            nat_nodeports.append(f"-A {NODEPORTS_CHAIN} -m comment --comment {_comment(str(name))}"
                                 f" {match} --dport {svc.node_port} -j {external_chain(name)}")
        if not has_external:
            filter_external.append(f"-A {EXTERNAL_SERVICES_CHAIN} -m comment --comment "
                                   f"{no_endpoints} -m addrtype --dst-type LOCAL {match} "
                                   f"--dport {svc.node_port} {target}")

    if uses_cluster_chain:
        chains[service_chain(name)] = _service_to_endpoint_rules(
            svc, service_chain(name), eps.cluster)
    if uses_local_chain:
        chains[local_chain(name)] = _service_to_endpoint_rules(svc, local_chain(name), eps.local)
    if has_internal:
        # Off-cluster traffic to a ClusterIP may have been routed here from another node,
        # and its replies must come back the same way.
        chains[internal_chain].insert(
            0, f'-A {internal_chain} -m comment --comment "{name} cluster IP" {match} '
               f"{cluster_dst} ! -s {node.cluster_cidr} -j {MARK_MASQ_CHAIN}")
    if uses_external_chain:
        ext = external_chain(name)
        rules = []
        if not svc.external_policy_local:
            rules.append(f'-A {ext} -m comment --comment "masquerade traffic for {name} '
                         f'external destinations" -j {MARK_MASQ_CHAIN}')
        else:
            rules += [
                f'-A {ext} -m comment --comment "pod traffic for {name} external destinations" '
                f"-s {node.cluster_cidr} -j {service_chain(name)}",
                f'-A {ext} -m comment --comment "masquerade LOCAL traffic for {name} external '
                f'destinations" -m addrtype --src-type LOCAL -j {MARK_MASQ_CHAIN}',
                f'-A {ext} -m comment --comment "route LOCAL traffic for {name} external '
                f'destinations" -m addrtype --src-type LOCAL -j {service_chain(name)}',
            ]
        if has_external:
            rules.append(f"-A {ext} -j {external_policy_chain}")
        chains[ext] = rules
    for ep in eps.reachable:
        sep = endpoint_chain(name, ep)
        remember = f"-m recent --name {sep} --set " if svc.affinity_timeout else ""
        chains[sep] = [
            # A pod that reached itself through the Service must see the reply come from
            # the Service, not from itself: masquerade.
            f"-A {sep} -m comment --comment {_comment(str(name))} -s {ep.ip} "
            f"-j {MARK_MASQ_CHAIN}",
            f"-A {sep} -m comment --comment {_comment(str(name))} {remember}{match} "
            f"-j DNAT --to-destination {ep}",
        ]
    return ServiceRules({k: tuple(v) for k, v in chains.items()}, tuple(nat_services),
                        tuple(nat_nodeports), tuple(filter_services), tuple(filter_external))


@dataclass
class Plan:
    text: str
    full: bool
    services: dict[ServicePortName, ServiceRules | None]


def is_service_chain(chain: str) -> bool:
    return chain.startswith(SERVICE_CHAIN_PREFIXES)


class Ruleset:
    """The rules the kernel holds (as last committed) and the restores that move them to a
    new snapshot. Planning never changes the state; `commit` does, once applied."""

    def __init__(self, node: NodeConfig) -> None:
        self.node = node
        self._services: dict[ServicePortName, ServiceRules] = {}

    def counts(self) -> dict[str, int]:
        """Rules per table."""
        rules = self._services.values()
        nat = len(_static_nat_rules()) + len(self.node.node_ips) + sum(
            len(r.nat_services) + len(r.nat_nodeports)
            + sum(len(c) for c in r.chains.values()) for r in rules)
        filter_ = len(_static_filter_rules()) + sum(
            len(r.filter_services) + len(r.filter_external) for r in rules)
        return {"nat": nat, "filter": filter_}

    def _restore(self, services: Mapping[ServicePortName, ServiceRules],
                 write: Iterable[ServicePortName], delete: Iterable[str]) -> str:
        """The payload: top-level chains in full, the chains of `write`, `-X` for `delete`."""
        ordered = [services[name] for name in sorted(services)]
        written = [services[name] for name in sorted(write) if name in services]
        delete = sorted(delete)
        filter_lines = ["*filter", *(f":{c} - [0:0]" for c in FILTER_CHAINS)]
        filter_lines += _static_filter_rules()
        for r in ordered:
            filter_lines += r.filter_services
        for r in ordered:
            filter_lines += r.filter_external
        nat_lines = ["*nat", *(f":{c} - [0:0]" for c in NAT_CHAINS)]
        nat_lines += [f":{c} - [0:0]" for r in written for c in r.chains]
        nat_lines += [f":{c} - [0:0]" for c in delete]
        nat_lines += _static_nat_rules()
        for r in written:
            for body in r.chains.values():
                nat_lines += body
        for r in ordered:
            nat_lines += r.nat_services
        # Last: everything else addressed to the node may be a NodePort.
        nat_lines += [f'-A {SERVICES_CHAIN} -m comment --comment "kubernetes service '
                      f'nodeports; NOTE: this must be the last rule in this chain" -d {ip} '
                      f"-j {NODEPORTS_CHAIN}" for ip in self.node.node_ips]
        for r in ordered:
            nat_lines += r.nat_nodeports
        nat_lines += [f"-X {c}" for c in delete]
        return "\n".join([*filter_lines, "COMMIT", *nat_lines, "COMMIT", ""])

    def plan_full(self, snapshot: ProxySnapshot, existing_chains: Iterable[str]) -> Plan:
        """Rewrite every chain; delete per-service chains in `existing_chains` that are not
        wanted any more (leftovers of an earlier run)."""
        services = {
            name: service_rules(svc, snapshot.endpoints_of(name), self.node)
            for name, svc in snapshot.services.items()
        }
        wanted = {c for r in services.values() for c in r.chains}
        stale = {c for c in existing_chains if is_service_chain(c) and c not in wanted}
        text = self._restore(services, services, stale)
        return Plan(text, True, dict(services))

    def plan_partial(self, snapshot: ProxySnapshot,
                     changed: Iterable[ServicePortName]) -> Plan:
        planned: dict[ServicePortName, ServiceRules | None] = {}
        rewrite: set[ServicePortName] = set()
        stale: set[str] = set()
        for name in changed:
            old = self._services.get(name)
            svc = snapshot.services.get(name)
            new = service_rules(svc, snapshot.endpoints_of(name), self.node) if svc else None
            planned[name] = new
            if new is not None:
                rewrite.add(name)
            if old is not None:
                stale.update(c for c in old.chains if new is None or c not in new.chains)
        services = {n: r for n, r in self._services.items() if n not in planned}
        services.update({n: r for n, r in planned.items() if r is not None})
        return Plan(self._restore(services, rewrite, stale), False, planned)

    def commit(self, plan: Plan) -> None:
        if plan.full:
            self._services = {}
        for name, rules in plan.services.items():
            if rules is None:
                self._services.pop(name, None)
            else:
                self._services[name] = rules
