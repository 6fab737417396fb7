"""nftables mode: rule generation, a pure function from a snapshot to an `nft -f` transaction.

The rules follow kube-proxy's nftables mode (pkg/proxy/nftables): fixed base chains, then
dispatch through verdict maps keyed by address, protocol and port (`service-ips`) or by
protocol and port on the node's IPs (`service-nodeports`), to one chain per service port and
traffic policy (`service-…`, `local-…`, `external-…`), and filter-hook checks that reject or
drop traffic to service ports without endpoints. Names are kube-proxy's.

Where it departs from kube-proxy, it is for scale on the kernels we measured (6.18, nft 1.0.6;
research/dataplane-feasibility.md and the bench): at 10,000 services x 10 endpoints

- a service chain picks its endpoint with one rule, `dnat ip to numgen random mod <n> offset
  <first> map @<protocol>-endpoints-<g>`: maps from an index to an endpoint's address and
  port, each shared by SLOTS_PER_MAP chains of one protocol (nft types a map's port by the
  protocol it was declared with), a chain owning the indexes from `first` on (its slot);
  instead of an anonymous `numgen … vmap { … }` to one chain per endpoint: binding each
  anonymous set walks the whole transaction (145 s to load), nft re-reads every chain of a
  table before an update (with 110,000 chains 2.5 s, with 10,000 chains 20 ms), and the kernel
  parses every expression of every rule by name (a cascade of one rule per endpoint took 5 s
  to load). The kernel checks every element added to a map against every rule using the map,
  and a map per chain costs more to create than its few elements: 16 chains a map loaded
  fastest. A changed endpoint is then two map elements, and only a changed endpoint count
  rewrites the chain. With session affinity a chain needs one rule per endpoint anyway (each
  remembers its client in its own set), so those chains keep a cascade of `numgen random mod
  <n-i> 0` rules that DNAT directly (the arithmetic of iptables' `--probability 1/(n-i)`);
- so the hairpin check kube-proxy puts in each endpoint chain (`ip saddr <endpoint>`) is one
  postrouting lookup instead: a packet DNAT-ed to the very address it came from is
  masqueraded, using the set `hairpin-endpoints` of `<ip> . <ip>` pairs of this node's pods;
- the service chains live in shard tables of at most SHARD_SIZE service ports
  (`kubesvc-services-<n>`), next to the table `kubesvc` that holds the checks and the
  masquerading: every commit that adds a rule makes the kernel re-validate every chain of
  the table it touches, from each base chain (about 50 ms for 10,000 services in one table);
  a shard keeps that to the services that share it. NAT chains only see the first packet of
  a connection, so each shard costs one more map lookup per new connection and nothing on
  established ones. Up to SHARD_SIZE service ports there is a single shard;
- updates change only what differs: a chain is rewritten (flush and refill) only if its rules
  changed, map elements are added and deleted one by one, all in one atomic transaction. An
  update of elements only (an endpoint replaced, a Service without endpoints getting some)
  also comes as an nfnetlink batch (kernel/nftnl.py), which skips the 40-60 ms nft spends
  reading every chain and set at 10,000 services before it applies anything.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import itertools
import math
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from kubesvc.kernel.nftnl import Batch, SetType, compile_rule
from kubesvc.proxy.topology import categorize_endpoints, policy_chains
from kubesvc.proxy.types import Endpoint, NodeConfig, ProxySnapshot, ServicePort, ServicePortName

FAMILY = "ip"
TABLE = "kubesvc"
SHARD_TABLE = "kubesvc-services-{}"
SHARD_TABLE_RE = re.compile(r"kubesvc-services-\d+")
SHARD_SIZE = 1000
MASQ_MARK = "0x4000"  # kube-proxy's default --masquerade-bit 14
CHAIN_NAME_MAX = 240  # nft allows 256; kube-proxy keeps the same margin
ELEMENTS_PER_COMMAND = 1000
# A service chain's endpoints are the elements `<slot % SLOTS_PER_MAP> << ENDPOINT_BITS`
# + 0..n-1 of the map `<protocol>-endpoints-<slot // SLOTS_PER_MAP>`.
ENDPOINT_BITS = 16
SLOTS_PER_MAP = 16
MAX_SLOTS = 1 << 16

MARK_MASQ_CHAIN = "mark-for-masquerade"
MASQUERADING_CHAIN = "masquerading"
SERVICES_CHAIN = "services"
SERVICE_ENDPOINTS_CHECK_CHAIN = "service-endpoints-check"
NODEPORT_ENDPOINTS_CHECK_CHAIN = "nodeport-endpoints-check"
CLUSTER_IPS_CHECK_CHAIN = "cluster-ips-check"
REJECT_CHAIN = "reject-chain"

CLUSTER_IPS_SET = "cluster-ips"
NODEPORT_IPS_SET = "nodeport-ips"
HAIRPIN_SET = "hairpin-endpoints"
SERVICE_IPS_MAP = "service-ips"
SERVICE_NODEPORTS_MAP = "service-nodeports"
NO_ENDPOINT_SERVICES_MAP = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS_MAP = "no-endpoint-nodeports"
ENDPOINTS_MAP = "{}-endpoints-{}"
# nft 1.0.6 names no 32-bit integer type: the key is typed by the expression making it.
ENDPOINTS_MAP_DECL = ("typeof numgen random mod 1 : ip daddr . {} dport ; "
                      'comment "endpoints of service chains, by index" ;')

_ADDR_PROTO_PORT = "ipv4_addr . inet_proto . inet_service"
# The types of the sets and maps, for element updates over netlink (the declarations say
# the same in nft's words).
_ADDR, _PROTO, _PORT = "ipv4_addr", "inet_proto", "inet_service"
SET_TYPES = {
    CLUSTER_IPS_SET: SetType((_ADDR,)),
    NODEPORT_IPS_SET: SetType((_ADDR,)),
    HAIRPIN_SET: SetType((_ADDR, _ADDR)),
    SERVICE_IPS_MAP: SetType((_ADDR, _PROTO, _PORT), ("verdict",)),
    NO_ENDPOINT_SERVICES_MAP: SetType((_ADDR, _PROTO, _PORT), ("verdict",)),
    SERVICE_NODEPORTS_MAP: SetType((_PROTO, _PORT), ("verdict",)),
    NO_ENDPOINT_NODEPORTS_MAP: SetType((_PROTO, _PORT), ("verdict",)),
}
ENDPOINTS_MAP_TYPE = SetType(("integer",), (_ADDR, _PORT))
_NODEPORT_IPS = (NODEPORT_IPS_SET, 'type ipv4_addr ; comment "IPs that accept NodePort traffic" ;')


def _fixed_rules(node: NodeConfig) -> dict[str, list[str]]:
    """The rules of the fixed chains, whichever table holds them."""
    return {
        MARK_MASQ_CHAIN: [f"meta mark set meta mark | {MASQ_MARK}"],
        MASQUERADING_CHAIN: [
            f"ct status dnat ip saddr . ip daddr @{HAIRPIN_SET} jump {MARK_MASQ_CHAIN}",
            f"meta mark & {MASQ_MARK} == 0 return",
            f"meta mark set meta mark ^ {MASQ_MARK}",
            "masquerade fully-random",
        ],
        SERVICES_CHAIN: [
            f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS_MAP}",
            f"ip daddr @{NODEPORT_IPS_SET} meta l4proto . th dport vmap @{SERVICE_NODEPORTS_MAP}",
        ],
        SERVICE_ENDPOINTS_CHECK_CHAIN: [
            f"ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES_MAP}",
        ],
        NODEPORT_ENDPOINTS_CHECK_CHAIN: [
            f"ip daddr @{NODEPORT_IPS_SET} meta l4proto . th dport "
            f"vmap @{NO_ENDPOINT_NODEPORTS_MAP}",
        ],
        CLUSTER_IPS_CHECK_CHAIN: [
            f'ip daddr @{CLUSTER_IPS_SET} reject comment "Reject traffic to invalid ports of '
            'ClusterIPs"',
            f'ip daddr {node.service_cidr} drop comment "Drop traffic to unallocated ClusterIPs"',
        ],
        # Refused at once, never black-holed: TCP gets a reset, the rest port-unreachable.
        REJECT_CHAIN: ["meta l4proto tcp reject with tcp reset", "reject"],
    }


@dataclass(frozen=True)
class TableSkeleton:
    """The fixed part of a table: chains (base chains with their hook) and sets."""

    comment: str
    base_chains: tuple[tuple[str, str, str, int], ...]  # (name, type, hook, priority)
    jumps: tuple[tuple[str, str, str], ...]  # (from, to, condition)
    chains: tuple[str, ...]  # regular chains, whose rules come from _fixed_rules
    sets: tuple[tuple[str, str], ...]  # (name, declaration)
    maps: tuple[tuple[str, str], ...]

    def rules(self, node: NodeConfig) -> dict[str, tuple[str, ...]]:
        rules: dict[str, list[str]] = {name: [] for name, *_ in self.base_chains}
        rules.update({name: [] for name in self.chains})
        for src, dst, condition in self.jumps:
            rules[src].append(f"{condition} jump {dst}".strip())
        for name, body in _fixed_rules(node).items():
            if name in rules:
                rules[name] += body
        return {name: tuple(body) for name, body in rules.items()}


# nft 1.0.6 rejects `dstnat` on the output hook, so numbers: dstnat is -100, srcnat 100; the
# filter checks run just before DNAT (and one just after).
MAIN = TableSkeleton(
    "rules for kubesvc",
    (("filter-input", "filter", "input", -110),
     ("filter-forward", "filter", "forward", -110),
     ("filter-output", "filter", "output", -110),
     ("filter-output-post-dnat", "filter", "output", -90),
     ("nat-postrouting", "nat", "postrouting", 100)),
    (("filter-input", NODEPORT_ENDPOINTS_CHECK_CHAIN, "ct state new"),
     ("filter-input", SERVICE_ENDPOINTS_CHECK_CHAIN, "ct state new"),
     ("filter-forward", SERVICE_ENDPOINTS_CHECK_CHAIN, "ct state new"),
     ("filter-output", SERVICE_ENDPOINTS_CHECK_CHAIN, "ct state new"),
     ("filter-forward", CLUSTER_IPS_CHECK_CHAIN, "ct state new"),
     ("filter-output-post-dnat", CLUSTER_IPS_CHECK_CHAIN, "ct state new"),
     ("nat-postrouting", MASQUERADING_CHAIN, "")),
    (MARK_MASQ_CHAIN, MASQUERADING_CHAIN, SERVICE_ENDPOINTS_CHECK_CHAIN,
     NODEPORT_ENDPOINTS_CHECK_CHAIN, CLUSTER_IPS_CHECK_CHAIN, REJECT_CHAIN),
    ((CLUSTER_IPS_SET, 'type ipv4_addr ; comment "Active ClusterIPs" ;'),
     _NODEPORT_IPS,
     (HAIRPIN_SET, 'type ipv4_addr . ipv4_addr ; comment "Pods of this node, for hairpin SNAT" ;')),
    ((NO_ENDPOINT_SERVICES_MAP, f"type {_ADDR_PROTO_PORT} : verdict ; "
      'comment "vmap to drop or reject packets to services with no endpoints" ;'),
     (NO_ENDPOINT_NODEPORTS_MAP, "type inet_proto . inet_service : verdict ; "
      'comment "vmap to drop or reject packets to service nodeports with no endpoints" ;')),
)
SHARD = TableSkeleton(
    "service chains of kubesvc",
    (("nat-prerouting", "nat", "prerouting", -100),
     ("nat-output", "nat", "output", -100)),
    (("nat-output", SERVICES_CHAIN, ""),
     ("nat-prerouting", SERVICES_CHAIN, "")),
    (MARK_MASQ_CHAIN, SERVICES_CHAIN),
    (_NODEPORT_IPS,),
    ((SERVICE_IPS_MAP, f"type {_ADDR_PROTO_PORT} : verdict ; "
      'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ;'),
     (SERVICE_NODEPORTS_MAP, "type inet_proto . inet_service : verdict ; "
      'comment "NodePort traffic" ;')),
)


def hash_and_truncate(name: str) -> str:
    """`<8 base32 chars of sha256>-<name>`, unique even where names are cut to length."""
    # 5 bytes are exactly 8 base32 characters.
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()[:5]).decode()
    full = f"{digest}-{name}"
    return full if len(full) <= CHAIN_NAME_MAX else full[: CHAIN_NAME_MAX - 3] + "..."


def _chain_base(name: ServicePortName) -> str:
    # Chain names may hold [A-Za-z0-9_./-]; namespaces, names and port names only [a-z0-9-],
    # so "/" separates the parts unambiguously.
    return f"{name.namespace}/{name.name}/{name.protocol.lower()}/{name.port}"


@functools.lru_cache(maxsize=65536)
def _hashed_base(name: ServicePortName) -> str:
    """Shared by a service port's chains, and kept across syncs: hashing 10,000s of names
    at every full sync would take a good part of a second."""
    return hash_and_truncate(_chain_base(name))


def cluster_chain(name: ServicePortName) -> str:
    return "service-" + _hashed_base(name)


def local_chain(name: ServicePortName) -> str:
    return "local-" + _hashed_base(name)


def external_chain(name: ServicePortName) -> str:
    return "external-" + _hashed_base(name)


def affinity_set(name: ServicePortName, ep: Endpoint) -> str:
    return "affinity-" + hash_and_truncate(f"{_chain_base(name)}__{ep.ip}/{ep.port}")


ElementKey = tuple[str, str, str]  # (table, set or map, element key)


@dataclass(frozen=True)
class ServiceRules:
    """What one service port contributes: chains and affinity sets in its shard table, map
    elements in its shard table and in the main one. `elements` may be claimed by other
    service ports too (two ports of a Service share its ClusterIP in cluster-ips);
    `own_elements`, its endpoints in its slots, by no other."""

    table: str
    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    slots: Mapping[str, int] = field(default_factory=dict)  # chain -> its endpoint indexes
    maps: tuple[str, ...] = ()  # the endpoint maps its chains use
    sets: Mapping[str, str] = field(default_factory=dict)  # affinity sets: name -> declaration
    elements: Mapping[ElementKey, str] = field(default_factory=dict)  # -> value, "" in sets
    own_elements: Mapping[ElementKey, str] = field(default_factory=dict)


def _uses_endpoint_map(svc: ServicePort, endpoints: tuple[Endpoint, ...]) -> bool:
    return not svc.affinity_timeout and len(endpoints) <= 1 << ENDPOINT_BITS


def endpoints_map(protocol: str, slot: int) -> str:
    return ENDPOINTS_MAP.format(protocol.lower(), slot // SLOTS_PER_MAP)


def _endpoint_map_rule(svc: ServicePort, endpoints: tuple[Endpoint, ...], table: str,
                       slot: int, elements: dict[ElementKey, str]) -> str:
    """The rule that picks one of `endpoints` through the slot's map; the slot's elements
    go into `elements`."""
    first = (slot % SLOTS_PER_MAP) << ENDPOINT_BITS
    emap = endpoints_map(svc.protocol, slot)
    for i, ep in enumerate(endpoints):
        elements[(table, emap, str(first + i))] = f"{ep.ip} . {ep.port}"
    return (f"meta l4proto {svc.protocol.lower()} dnat ip to numgen random mod {len(endpoints)} "
            f"offset {first} map @{emap}")


def _cascade_rules(svc: ServicePort, endpoints: tuple[Endpoint, ...]) -> list[str]:
    proto = svc.protocol.lower()
    n = len(endpoints)
    rules = []
    if svc.affinity_timeout:
        # A client seen recently goes back to the endpoint it had, refreshing the timer.
        for ep in endpoints:
            aff = affinity_set(svc.name, ep)
            rules.append(f"ip saddr @{aff} update @{aff} {{ ip saddr }} "
                         f"meta l4proto {proto} dnat to {ep}")
    for i, ep in enumerate(endpoints):
        # Rule i is reached with probability (n-i)/n and taken with 1/(n-i): 1/n each.
        pick = f"numgen random mod {n - i} 0 " if i < n - 1 else ""
        remember = ""
        if svc.affinity_timeout:
            remember = f"update @{affinity_set(svc.name, ep)} {{ ip saddr }} "
        rules.append(f"{pick}{remember}meta l4proto {proto} dnat to {ep}")
    return rules


@functools.cache
def _pod_network(pod_cidr: str) -> tuple[int, int]:
    net = ipaddress.IPv4Network(pod_cidr)
    return int(net.network_address), int(net.netmask)


def _on_this_node(node: NodeConfig, ip: str) -> bool:
    if not node.pod_cidr:
        return True
    # Integer arithmetic: ipaddress objects for 100,000 endpoints would take seconds.
    network, mask = _pod_network(node.pod_cidr)
    return int.from_bytes(socket.inet_aton(ip), "big") & mask == network


def service_rules(svc: ServicePort, endpoints: tuple[Endpoint, ...], node: NodeConfig,
                  table: str, slot: Callable[[str], int]) -> ServiceRules:
    """The chains, affinity sets and map elements of one service port, in shard `table`;
    `slot` gives a service chain the slot of its endpoint indexes."""
    eps = categorize_endpoints(svc, endpoints)
    proto = svc.protocol.lower()
    name = svc.name
    chains: dict[str, list[str]] = {}
    sets: dict[str, str] = {}
    elements: dict[ElementKey, str] = {}
    own: dict[ElementKey, str] = {}
    slots: dict[str, int] = {}

    policy = policy_chains(svc, eps, cluster_chain(name), local_chain(name))
    uses_cluster_chain, uses_local_chain = policy.uses_cluster, policy.uses_local
    internal_chain, has_internal = policy.internal, policy.has_internal
    external_policy_chain, has_external = policy.external, policy.has_external
    uses_external_chain = policy.uses_external
    # No endpoints at all: refuse. Endpoints, but none for this traffic policy: drop.
    filter_verdict = "drop" if eps.has_any else f"goto {REJECT_CHAIN}"

    for used, chain, chosen in ((uses_cluster_chain, cluster_chain(name), eps.cluster),
                                (uses_local_chain, local_chain(name), eps.local)):
        if not used:
            continue
        if _uses_endpoint_map(svc, chosen):
            slots[chain] = slot(chain)
            chains[chain] = [_endpoint_map_rule(svc, chosen, table, slots[chain], own)]
        else:
            chains[chain] = _cascade_rules(svc, chosen)
    if svc.affinity_timeout:
        for ep in sorted({*eps.cluster, *eps.local}):
            sets[affinity_set(name, ep)] = (
                f"type ipv4_addr ; flags dynamic,timeout ; timeout {svc.affinity_timeout}s ;")

    cluster_key = f"{svc.cluster_ip} . {proto} . {svc.port}"
    elements[(TABLE, CLUSTER_IPS_SET, svc.cluster_ip)] = ""
    if has_internal:
        # Off-cluster traffic to a ClusterIP may have been routed here from another node,
        # and its replies must come back the same way.
        chains[internal_chain].insert(
            0, f"ip daddr {svc.cluster_ip} {proto} dport {svc.port} "
               f"ip saddr != {node.cluster_cidr} jump {MARK_MASQ_CHAIN}")
        elements[(table, SERVICE_IPS_MAP, cluster_key)] = f"goto {internal_chain}"
    else:
        elements[(TABLE, NO_ENDPOINT_SERVICES_MAP, cluster_key)] = filter_verdict

    if uses_external_chain:
        ext: list[str] = []
        if not svc.external_policy_local:
            # The endpoint may be on another node, whose replies must come back through here.
            ext.append(f"jump {MARK_MASQ_CHAIN}")
        else:
            ext += [
                f"ip saddr {node.cluster_cidr} goto {cluster_chain(name)} "
                'comment "short-circuit pod traffic"',
                f'fib saddr type local jump {MARK_MASQ_CHAIN} comment "masquerade local traffic"',
                f"fib saddr type local goto {cluster_chain(name)} "
                'comment "short-circuit local traffic"',
            ]
        if has_external:
            ext.append(f"goto {external_policy_chain}")
        chains[external_chain(name)] = ext
    for ip in (*svc.external_ips, *svc.load_balancer_ips):
        key = f"{ip} . {proto} . {svc.port}"
        if uses_external_chain:
            elements[(table, SERVICE_IPS_MAP, key)] = f"goto {external_chain(name)}"
        if not has_external:
            elements[(TABLE, NO_ENDPOINT_SERVICES_MAP, key)] = filter_verdict
    if svc.node_port:
        key = f"{proto} . {svc.node_port}"
        if uses_external_chain:
            elements[(table, SERVICE_NODEPORTS_MAP, key)] = f"goto {external_chain(name)}"
        if not has_external:
            elements[(TABLE, NO_ENDPOINT_NODEPORTS_MAP, key)] = filter_verdict

    # Only a pod of this node can be DNAT-ed back to itself here.
    for ep in eps.reachable:
        if _on_this_node(node, ep.ip):
            elements[(TABLE, HAIRPIN_SET, f"{ep.ip} . {ep.ip}")] = ""
    maps = tuple(sorted({endpoints_map(svc.protocol, slot) for slot in slots.values()}))
    return ServiceRules(table, {k: tuple(v) for k, v in chains.items()}, slots, maps, sets,
                        elements, own)


Elements = list[tuple[ElementKey, str]]


def _by_set(elements: Iterable[tuple[ElementKey, str]]
            ) -> list[tuple[tuple[str, str], list[tuple[str, str]]]]:
    """(table, set) and its (key, value) pairs, in a stable order."""
    by_set: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for (table, set_name, key), value in elements:
        by_set.setdefault((table, set_name), []).append((key, value))
    return [(where, sorted(items)) for where, items in sorted(by_set.items())]


def _element_commands(verb: str, elements: Iterable[tuple[ElementKey, str]]) -> list[str]:
    """`add|delete element` commands, batched per set."""
    commands = []
    for (table, set_name), pairs in _by_set(elements):
        items = [key if verb == "delete" or not value else f"{key} : {value}"
                 for key, value in pairs]
        for i in range(0, len(items), ELEMENTS_PER_COMMAND):
            batch = ", ".join(items[i:i + ELEMENTS_PER_COMMAND])
            commands.append(f"{verb} element {FAMILY} {table} {set_name} {{ {batch} }}")
    return commands


@dataclass(frozen=True)
class Rewrite:
    """A transaction that only rewrites existing chains and changes elements."""

    chains: list[tuple[str, str, tuple[str, ...]]]  # (table, chain, its new rules)
    removed: Elements
    added: Elements


def netlink_batch(rewrite: Rewrite) -> Batch | None:
    """The transaction as a netlink batch, in the same order as its text; None if a rule
    is beyond what kernel/nftnl.py compiles (the text then goes to nft)."""
    batch = Batch(FAMILY)
    for table, chain, rules in rewrite.chains:
        batch.flush_chain(table, chain)
        for rule in rules:
            if (exprs := compile_rule(rule)) is None:
                return None
            batch.add_rule(table, chain, exprs)
    for verb, elements in (("delete", rewrite.removed), ("add", rewrite.added)):
        for (table, set_name), pairs in _by_set(elements):
            kind = SET_TYPES.get(set_name, ENDPOINTS_MAP_TYPE)
            if verb == "delete":
                batch.delete(table, set_name, kind, [key for key, _ in pairs])
            else:
                batch.add(table, set_name, kind, [(key, value or None) for key, value in pairs])
    return batch


def _effective(owners: Mapping[ServicePortName, str]) -> str | None:
    """The value of an element several service ports claim (say, two ports of one Service
    both add its ClusterIP to cluster-ips): the first owner's, so the choice is stable."""
    return owners[min(owners)] if owners else None


def _by_name(item: tuple[ServicePortName, ServicePort]) -> tuple[str, str, str, str]:
    """A sort key much cheaper than the dataclass's own ordering."""
    name = item[0]
    return name.namespace, name.name, name.port, name.protocol


def shard_table(name: ServicePortName, shards: int) -> str:
    digest = hashlib.sha256(str(name).encode()).digest()
    return SHARD_TABLE.format(int.from_bytes(digest[:4], "big") % shards)


class _FreeSlots:
    """Hands out the slots no chain of a shard table holds, lowest first."""

    def __init__(self, table: str, taken: Iterable[int] = ()) -> None:
        self._table = table
        self._taken = set(taken)
        self._candidates: Iterator[int] = itertools.count()

    def take(self, chain: str) -> int:
        for slot in self._candidates:
            if slot >= MAX_SLOTS:
                break
            if slot not in self._taken:
                return slot
        # A full sync divides the services into more shards again.
        raise RuntimeError(f"no free endpoint slot in {self._table} for {chain}")

    def keeping(self, held: Mapping[str, int]) -> Callable[[str], int]:
        """The slot of a chain: the one it holds, else a free one."""
        return lambda chain: held[chain] if chain in held else self.take(chain)


def _map_commands(maps: Iterable[tuple[str, str]]) -> list[str]:
    return [f"add map {FAMILY} {table} {name} "
            f"{{ {ENDPOINTS_MAP_DECL.format(name.split('-', 1)[0])} }}"
            for table, name in sorted(maps)]


def _table_commands(table: str, skeleton: TableSkeleton,
                    node: NodeConfig) -> tuple[list[str], list[str]]:
    """The commands that declare a table's fixed part, and those that fill its chains."""
    t = f"{FAMILY} {table}"
    declare = [f'add table {t} {{ comment "{skeleton.comment}" ; }}']
    declare += [f"add chain {t} {name} {{ type {kind} hook {hook} priority {prio} ; }}"
                for name, kind, hook, prio in skeleton.base_chains]
    declare += [f"add chain {t} {name}" for name in skeleton.chains]
    declare += [f"add set {t} {name} {{ {decl} }}" for name, decl in skeleton.sets]
    declare += [f"add map {t} {name} {{ {decl} }}" for name, decl in skeleton.maps]
    fill = [f"add rule {t} {chain} {rule}"
            for chain, body in skeleton.rules(node).items() for rule in body]
    fill += _element_commands("add", [((table, NODEPORT_IPS_SET, ip), "")
                                      for ip in node.node_ips])
    return declare, fill


@dataclass
class Plan:
    """A transaction and the state the tables will be in once it has been applied."""

    text: str
    full: bool
    shards: int
    services: dict[ServicePortName, ServiceRules | None]
    owners: dict[ElementKey, dict[ServicePortName, str]]
    maps: set[tuple[str, str]]  # endpoint maps it declares: (table, map)
    # When the plan creates and deletes nothing: what it changes, as in `text`.
    in_place: Rewrite | None = None


class Ruleset:
    """The rules the kernel holds (as last committed) and the transactions that move them to
    a new snapshot. Planning never changes the state; `commit` does, once applied.

    A full plan picks the number of shards; partial plans keep it, so shards may outgrow
    SHARD_SIZE until the next full sync divides the services again."""

    def __init__(self, node: NodeConfig, shard_size: int = SHARD_SIZE) -> None:
        self.node = node
        self.shard_size = shard_size
        self.shards = 1
        self._services: dict[ServicePortName, ServiceRules] = {}
        self._slots: dict[str, set[int]] = {}  # shard table -> the slots its chains hold
        # Endpoint maps stay once declared (empty ones cost nothing) until a full sync.
        self._maps: set[tuple[str, str]] = set()
        self._owners: dict[ElementKey, dict[ServicePortName, str]] = {}

    def counts(self) -> dict[str, int]:
        """How many tables, chains, rules and map elements are programmed."""
        main, shard = MAIN.rules(self.node), SHARD.rules(self.node)
        chains = len(main) + self.shards * len(shard) + sum(
            len(r.chains) for r in self._services.values())
        rules = sum(map(len, main.values())) + self.shards * sum(map(len, shard.values()))
        rules += sum(len(c) for r in self._services.values() for c in r.chains.values())
        return {"tables": 1 + self.shards, "chains": chains, "rules": rules,
                "elements": len(self._owners) + (1 + self.shards) * len(self.node.node_ips)
                + sum(len(r.own_elements) for r in self._services.values())}

    def plan_full(self, snapshot: ProxySnapshot, existing_tables: Iterable[str] = ()) -> Plan:
        """Recreate every table in one transaction; shard tables in `existing_tables` that are
        no longer needed (there were more shards before) go too."""
        shards = max(1, math.ceil(len(snapshot.services) / self.shard_size))
        free: dict[str, _FreeSlots] = {}
        services = {}
        for name, svc in sorted(snapshot.services.items(), key=_by_name):
            table = shard_table(name, shards)
            slots = free.setdefault(table, _FreeSlots(table))
            services[name] = service_rules(svc, snapshot.endpoints_of(name), self.node, table,
                                           slots.take)
        owners: dict[ElementKey, dict[ServicePortName, str]] = {}
        for name, rules in services.items():
            for key, value in rules.elements.items():
                owners.setdefault(key, {})[name] = value
        tables = [TABLE, *(SHARD_TABLE.format(i) for i in range(shards))]
        stale = {t for t in existing_tables if SHARD_TABLE_RE.fullmatch(t)}
        lines = []
        for table in sorted({*tables, *stale}):
            lines += [f"add table {FAMILY} {table}", f"delete table {FAMILY} {table}"]
        fills = []
        for table in tables:
            declare, fill = _table_commands(table, MAIN if table == TABLE else SHARD, self.node)
            lines += declare
            fills += fill
        maps = {(r.table, name) for r in services.values() for name in r.maps}
        lines += _map_commands(maps)
        for rules in services.values():
            t = f"{FAMILY} {rules.table}"
            lines += [f"add set {t} {name} {{ {decl} }}" for name, decl in rules.sets.items()]
            lines += [f"add chain {t} {chain}" for chain in rules.chains]
        lines += fills
        for rules in services.values():
            lines += [f"add rule {FAMILY} {rules.table} {chain} {rule}"
                      for chain, body in rules.chains.items() for rule in body]
        lines += _element_commands("add", itertools.chain(
            ((key, v) for key, o in owners.items() if (v := _effective(o)) is not None),
            (item for rules in services.values() for item in rules.own_elements.items())))
        return Plan("\n".join(lines) + "\n", True, shards, dict(services), owners, maps)

    def plan_partial(self, snapshot: ProxySnapshot,
                     changed: Iterable[ServicePortName]) -> Plan:
        """Rewrite only what the changed service ports need, in one transaction."""
        services: dict[ServicePortName, ServiceRules | None] = {}
        owners: dict[ElementKey, dict[ServicePortName, str]] = {}
        add_sets, new_chains, rewrite, delete_chains, delete_sets = [], [], [], [], []
        rewritten: list[tuple[str, str, tuple[str, ...]]] = []
        maps: set[tuple[str, str]] = set()
        old_own: dict[ServicePortName, Mapping[ElementKey, str]] = {}
        # Slots freed by this plan are taken again only once it has been committed.
        free: dict[str, _FreeSlots] = {}
        for name in sorted(changed):
            old = self._services.get(name)
            svc = snapshot.services.get(name)
            new = None
            if svc is not None:
                table = shard_table(name, self.shards)
                if table not in free:
                    free[table] = _FreeSlots(table, self._slots.get(table, ()))
                slot = free[table].keeping(old.slots if old else {})
                new = service_rules(svc, snapshot.endpoints_of(name), self.node, table, slot)
            services[name] = new
            if old is not None:
                old_own[name] = old.own_elements
            old_chains = old.chains if old else {}
            old_sets = old.sets if old else {}
            if new is not None:
                maps.update((new.table, name) for name in new.maps)
                t = f"{FAMILY} {new.table}"
                add_sets += [f"add set {t} {s} {{ {d} }}" for s, d in new.sets.items()
                             if s not in old_sets]
                for chain, body in new.chains.items():
                    if chain not in old_chains:
                        new_chains.append(f"add chain {t} {chain}")
                    elif old_chains[chain] == body:
                        continue
                    else:
                        rewrite.append(f"flush chain {t} {chain}")
                        rewritten.append((new.table, chain, body))
                    rewrite += [f"add rule {t} {chain} {rule}" for rule in body]
            if old is not None:
                t = f"{FAMILY} {old.table}"
                kept = new.chains if new else {}
                delete_chains += [f"{t} {c}" for c in old_chains if c not in kept]
                delete_sets += [f"{t} {s}" for s in old_sets if new is None or s not in new.sets]
            for key in {*(old.elements if old else ()), *(new.elements if new else ())}:
                claims = owners.setdefault(key, dict(self._owners.get(key, {})))
                if new is not None and key in new.elements:
                    claims[name] = new.elements[key]
                else:
                    claims.pop(name, None)
        removed, added = [], []
        for name, rules in services.items():
            had = old_own.get(name, {})
            has = rules.own_elements if rules else {}
            removed += [(key, v) for key, v in had.items() if has.get(key) != v]
            added += [(key, v) for key, v in has.items() if had.get(key) != v]
        for key, claims in owners.items():
            before = _effective(self._owners.get(key, {}))
            after = _effective(claims)
            if before != after:
                if before is not None:
                    removed.append((key, before))
                if after is not None:
                    added.append((key, after))
        # Order matters within the transaction: sets and chains exist before rules and
        # elements refer to them; elements and rules pointing at a chain go before it does.
        maps -= self._maps
        lines = _map_commands(maps) + add_sets + new_chains + rewrite
        # Nothing created or deleted: rules of existing chains and elements only.
        in_place = not (maps or add_sets or new_chains or delete_chains or delete_sets)
        lines += _element_commands("delete", removed)
        lines += _element_commands("add", added)
        lines += [f"flush chain {chain}" for chain in delete_chains]
        lines += [f"delete chain {chain}" for chain in delete_chains]
        lines += [f"delete set {s}" for s in delete_sets]
        text = "\n".join(lines) + "\n" if lines else ""
        return Plan(text, False, self.shards, services, owners, maps,
                    Rewrite(rewritten, removed, added) if in_place and lines else None)

    def commit(self, plan: Plan) -> None:
        """Record that `plan` has been applied."""
        if plan.full:
            self._services = {}
            self._owners = {}
            self._slots = {}
            self._maps = set()
        self.shards = plan.shards
        self._maps |= plan.maps
        for name, rules in plan.services.items():
            if (old := self._services.pop(name, None)) is not None:
                self._slots[old.table].difference_update(old.slots.values())
            if rules is not None:
                self._services[name] = rules
                self._slots.setdefault(rules.table, set()).update(rules.slots.values())
        for key, claims in plan.owners.items():
            if claims:
                self._owners[key] = claims
            else:
                self._owners.pop(key, None)
