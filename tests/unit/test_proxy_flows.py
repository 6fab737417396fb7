"""What the generated rules *do*, checked by tracing packets through them, for both modes.

Each mode gets a small tracer (kube-proxy's nftablesTracer / iptablesTracer idea): an
interpreter of exactly the rule shapes its renderer emits, run over the full ruleset of one
snapshot. A flow is a new connection's first packet; the tracer follows every random branch
and reports where the packet can end up, with what probability, and whether it is
masqueraded. One table of flows specifies the behaviour once for both modes.

Conventions: pods are in 10.0.0.0/8 (local ones in 10.180.0.0/24, remote ones in
10.180.1.0/24), ClusterIPs in 172.30.0.0/16, the node is 192.168.0.2, external IPs are in
192.168.99.0/24, LoadBalancer IPs are 1.2.3.x, outside clients 203.0.113.x.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
from test_proxy_tracker import NOT_READY, TERMINATING, endpoint_slice, service, snapshot_of

from kubesvc.proxy import iptables, nftables
from kubesvc.proxy.types import NodeConfig, ProxySnapshot

NODE = NodeConfig("node-a", ("192.168.0.2",), "10.0.0.0/8", "172.30.0.0/16", "10.180.0.0/24")


LB = "LoadBalancer"


def world() -> ProxySnapshot:
    return snapshot_of(
        service("svc1", "172.30.0.41"), endpoint_slice("svc1", "10.180.0.1"),
        service("svc2", "172.30.0.42", node_port=3001, lb_ips=("1.2.3.4",),
                externalIPs=["192.168.99.22"], externalTrafficPolicy="Local"),
        endpoint_slice("svc2", "10.180.0.2", "10.180.1.2"),
        service("svc3", "172.30.0.43", node_port=3003, lb_ips=("1.2.3.5",)),
        endpoint_slice("svc3", "10.180.0.3", "10.180.1.3", "10.180.1.33"),
        service("svc4", "172.30.0.44", externalIPs=["192.168.99.44"]),
        service("svc5", "172.30.0.45", port=53, protocol="UDP"),
        endpoint_slice("svc5", "10.180.0.5", port=5353, protocol="UDP"),
        service("svc6", "172.30.0.46", internalTrafficPolicy="Local"),
        endpoint_slice("svc6", "10.180.1.6"),
        service("svc7", "172.30.0.47"),
        endpoint_slice("svc7", ("10.180.0.7", TERMINATING), ("10.180.1.7", NOT_READY)),
        service("svc8", "172.30.0.48", sessionAffinity="ClientIP"),
        endpoint_slice("svc8", "10.180.0.8", "10.180.1.8"),
        service("svc9", "172.30.0.49", type="NodePort", node_port=3009,
                externalTrafficPolicy="Local"),
        endpoint_slice("svc9", "10.180.1.9"),
    )


@dataclass(frozen=True)
class Flow:
    name: str
    src: str
    proto: str
    dst: str
    port: int
    output: str  # "ip:port, ip:port" (all equally likely), "REJECT", "DROP" or "" (untouched)
    masq: bool = False
    iptables_output: str | None = None  # where iptables mode differs (no cluster-ips-check)


FLOWS = [
    Flow("pod to cluster IP", "10.0.0.2", "tcp", "172.30.0.41", 80, "10.180.0.1:80"),
    Flow("node to cluster IP", "192.168.0.2", "tcp", "172.30.0.41", 80, "10.180.0.1:80",
         masq=True),
    Flow("off-cluster to cluster IP", "203.0.113.5", "tcp", "172.30.0.41", 80,
         "10.180.0.1:80", masq=True),
    Flow("hairpin: endpoint to its own service", "10.180.0.1", "tcp", "172.30.0.41", 80,
         "10.180.0.1:80", masq=True),
    Flow("pod to cluster IP, 3 endpoints", "10.0.0.2", "tcp", "172.30.0.43", 80,
         "10.180.0.3:80, 10.180.1.3:80, 10.180.1.33:80"),
    Flow("outside to NodePort", "203.0.113.5", "tcp", "192.168.0.2", 3003,
         "10.180.0.3:80, 10.180.1.3:80, 10.180.1.33:80", masq=True),
    Flow("pod to NodePort", "10.0.0.2", "tcp", "192.168.0.2", 3003,
         "10.180.0.3:80, 10.180.1.3:80, 10.180.1.33:80", masq=True),
    Flow("outside to LoadBalancer IP", "203.0.113.5", "tcp", "1.2.3.5", 80,
         "10.180.0.3:80, 10.180.1.3:80, 10.180.1.33:80", masq=True),
    Flow("outside to NodePort, externalTrafficPolicy Local", "203.0.113.5", "tcp",
         "192.168.0.2", 3001, "10.180.0.2:80"),
    Flow("outside to external IP, Local", "203.0.113.5", "tcp", "192.168.99.22", 80,
         "10.180.0.2:80"),
    Flow("outside to LoadBalancer IP, Local", "203.0.113.5", "tcp", "1.2.3.4", 80,
         "10.180.0.2:80"),
    Flow("pod to LoadBalancer IP, Local: short-circuited", "10.0.0.2", "tcp", "1.2.3.4", 80,
         "10.180.0.2:80, 10.180.1.2:80"),
    Flow("node to LoadBalancer IP, Local: short-circuited", "192.168.0.2", "tcp", "1.2.3.4",
         80, "10.180.0.2:80, 10.180.1.2:80", masq=True),
    Flow("outside to NodePort, Local, no local endpoint", "203.0.113.5", "tcp", "192.168.0.2",
         3009, "DROP"),
    Flow("pod to NodePort, Local, no local endpoint", "10.0.0.2", "tcp", "192.168.0.2", 3009,
         "10.180.1.9:80"),
    Flow("no endpoints: refused", "10.0.0.2", "tcp", "172.30.0.44", 80, "REJECT"),
    Flow("no endpoints: refused from the node", "192.168.0.2", "tcp", "172.30.0.44", 80,
         "REJECT"),
    Flow("no endpoints: external IP refused", "203.0.113.5", "tcp", "192.168.99.44", 80,
         "REJECT"),
    Flow("UDP", "10.0.0.2", "udp", "172.30.0.45", 53, "10.180.0.5:5353"),
    Flow("TCP to a UDP service port", "10.0.0.2", "tcp", "172.30.0.45", 53, "REJECT",
         iptables_output=""),
    Flow("unserved port of a cluster IP", "10.0.0.2", "tcp", "172.30.0.41", 81, "REJECT",
         iptables_output=""),
    Flow("unallocated cluster IP", "10.0.0.2", "tcp", "172.30.0.99", 80, "DROP",
         iptables_output=""),
    Flow("internalTrafficPolicy Local, no local endpoint", "10.0.0.2", "tcp", "172.30.0.46",
         80, "DROP"),
    Flow("only a terminating endpoint still serving", "10.0.0.2", "tcp", "172.30.0.47", 80,
         "10.180.0.7:80"),
    Flow("ClientIP affinity, first connection", "10.0.0.2", "tcp", "172.30.0.48", 80,
         "10.180.0.8:80, 10.180.1.8:80"),
    Flow("pod to pod, not a service", "10.0.0.2", "tcp", "10.180.0.1", 80, ""),
    Flow("to the node, not a NodePort", "203.0.113.5", "tcp", "192.168.0.2", 22, ""),
]


@dataclass(frozen=True)
class Packet:
    src: str
    proto: str
    dst: str
    port: int
    mark: int = 0
    dnat: str | None = None  # "ip:port" once DNAT-ed
    masq: bool = False
    verdict: str = ""  # "", ACCEPT, DROP, REJECT

    @property
    def daddr(self) -> str:
        return self.dnat.rsplit(":", 1)[0] if self.dnat else self.dst

    @property
    def dport(self) -> int:
        return int(self.dnat.rsplit(":", 1)[1]) if self.dnat else self.port


Path = tuple[float, Packet]


def _in(ip: str, spec: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(spec, strict=False)


def _local(ip: str) -> bool:
    return ip in NODE.node_ips or ip.startswith("127.")


def outcome(paths: list[Path]) -> dict[tuple[str, bool], float]:
    result: dict[tuple[str, bool], float] = defaultdict(float)
    for prob, pkt in paths:
        key = pkt.verdict if pkt.verdict in ("DROP", "REJECT") else (pkt.dnat or "")
        result[(key, pkt.masq)] += prob
    return dict(result)


def walk(packet: Packet, hooks: dict[str, list[Callable[[Packet], list[Path]]]]) -> list[Path]:
    """The netfilter path of a new connection: local ones through output, others through
    prerouting, then input (to the node) or forward; postrouting for what leaves."""
    order = ["output"] if _local(packet.src) else ["prerouting"]
    paths: list[Path] = [(1.0, packet)]
    for hook in order:
        paths = _through(paths, hooks[hook])
    if not _local(packet.src):
        ends = []
        for prob, pkt in paths:
            nxt = "input" if pkt.verdict not in ("DROP", "REJECT") and _local(pkt.daddr) \
                else "forward"
            ends += _through([(prob, pkt)], hooks[nxt])
        paths = ends
    return _through(paths, hooks["postrouting"])


def _through(paths: list[Path], chains: list[Callable[[Packet], list[Path]]]) -> list[Path]:
    for chain in chains:
        nxt: list[Path] = []
        for prob, pkt in paths:
            if pkt.verdict in ("DROP", "REJECT"):
                nxt.append((prob, pkt))
                continue
            nxt += [(prob * p, replace(q, verdict="" if q.verdict == "ACCEPT" else q.verdict))
                    for p, q in chain(pkt)]
        paths = nxt
    return paths


# --- nftables --------------------------------------------------------------------------------

def _qualify(table: str, rule: str) -> str:
    """Set and chain references of a rule (or verdict) in `table`, as `<table>:<name>`."""
    rule = re.sub(r"@(\S+)", rf"@{table}:\1", rule)
    return re.sub(r"\b(jump|goto) (\S+)", rf"\1 {table}:\2", rule)


@dataclass
class NFTables:
    """The tables a transaction builds, as the tracer needs them. Chains and sets are named
    `<table>:<name>` here, so one table's names never meet another's."""

    chains: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    elements: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    hooks: dict[str, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def load(cls, text: str) -> NFTables:
        tables = cls()
        family = nftables.FAMILY
        for line in text.splitlines():
            if m := re.match(rf"add table {family} (\S+) {{", line):
                for kind in (tables.chains, tables.elements, tables.hooks):
                    for key in [k for k in kind if k.startswith(f"{m[1]}:")]:
                        del kind[key]  # a table recreated in the same transaction
            elif m := re.match(
                    rf"add chain {family} (\S+) (\S+) {{ type \w+ hook (\w+) priority (-?\d+)",
                    line):
                tables.hooks[m[3]].append((int(m[4]), f"{m[1]}:{m[2]}"))
            elif m := re.match(rf"add rule {family} (\S+) (\S+) (.*)$", line):
                tables.chains[f"{m[1]}:{m[2]}"].append(_qualify(m[1], m[3]))
            elif m := re.match(rf"(flush|delete) chain {family} (\S+) (\S+)$", line):
                tables.chains.pop(f"{m[2]}:{m[3]}", None)
            elif m := re.match(rf"(add|delete) element {family} (\S+) (\S+) {{ (.*) }}$", line):
                for item in m[4].split(", "):
                    key, _, value = item.partition(" : ")
                    if m[1] == "add":
                        tables.elements[f"{m[2]}:{m[3]}"][key] = _qualify(m[2], value)
                    else:
                        del tables.elements[f"{m[2]}:{m[3]}"][key]
        return tables

    def trace(self, pkt: Packet) -> list[Path]:
        hooks = {hook: [self._base(name) for _, name in sorted(chains)]
                 for hook, chains in self.hooks.items()}
        hooks.setdefault("input", [])
        return walk(pkt, hooks)

    def _base(self, chain: str) -> Callable[[Packet], list[Path]]:
        return lambda pkt: [(p, q) for p, q, _ in self._run(chain, pkt)]

    def _run(self, chain: str, pkt: Packet) -> list[tuple[float, Packet, bool]]:
        """Paths through `chain`: (probability, packet, ended with a verdict)."""
        return self._rules(self.chains[chain], 0, pkt)

    def _rules(self, rules: list[str], i: int,
               pkt: Packet) -> list[tuple[float, Packet, bool]]:
        if i == len(rules):
            return [(1.0, pkt, False)]
        results = []
        for prob, state, action in self._rule(rules[i], pkt):
            if action == "next":
                results += [(prob * p, q, v) for p, q, v in self._rules(rules, i + 1, state)]
            elif action == "return":
                results.append((prob, state, False))
            elif action.startswith(("jump ", "goto ")):
                for p, q, ended in self._run(action[5:], state):
                    if ended:
                        results.append((prob * p, q, True))
                    elif action.startswith("goto "):
                        results.append((prob * p, q, False))
                    else:
                        results += [(prob * p * pp, qq, vv)
                                    for pp, qq, vv in self._rules(rules, i + 1, q)]
            else:
                results.append((prob, replace(state, verdict=action), True))
        return results

    def _rule(self, rule: str, pkt: Packet) -> list[tuple[float, Packet, str]]:
        """Match `rule` against `pkt`: [(probability, packet, action)], where the action is
        "next" when the rule does not apply (or applies without a verdict)."""
        out = []
        pending: list[tuple[float, Packet, str | None]] = [
            (1.0, pkt, re.sub(r' comment "[^"]*"', "", rule))]
        while pending:
            prob, p, rest = pending.pop()
            if not rest:
                out.append((prob, p, "next"))
            elif rest.startswith("@"):
                out.append((prob, p, rest[1:]))
            else:
                pending += [(prob * sp, sq, srest) for sp, sq, srest in self._step(rest, p)]
        return out

    def _step(self, rule: str, p: Packet) -> list[tuple[float, Packet, str | None]]:
        """Evaluate the first expression of `rule`: the packet(s) to go on with and the rest
        of the rule, which is None if it stopped matching and "@action" once decided."""
        lookups: list[tuple[str, Callable[[re.Match[str]], str | None]]] = [
            (r"ip daddr \. meta l4proto \. th dport vmap @(\S+)",
             lambda m: self.elements[m[1]].get(f"{p.daddr} . {p.proto} . {p.dport}")),
            (r"ip daddr @(\S+) meta l4proto \. th dport vmap @(\S+)",
             lambda m: self.elements[m[2]].get(f"{p.proto} . {p.dport}")
             if p.daddr in self.elements[m[1]] else None),
        ]
        for pattern, verdict in lookups:
            if m := re.match(pattern + " ?", rule):
                found = verdict(m)
                if found is None:
                    return [(1.0, p, None)]
                return [(1.0, p, "@" + ("DROP" if found == "drop" else found))]
        conditions: list[tuple[str, Callable[[re.Match[str]], bool]]] = [
            (r"ct state new", lambda m: True),
            (r"ct status dnat", lambda m: p.dnat is not None),
            (r"ip saddr \. ip daddr @(\S+)",
             lambda m: f"{p.src} . {p.daddr}" in self.elements[m[1]]),
            (r"ip (s|d)addr (!= )?@(\S+)",
             lambda m: ((p.src if m[1] == "s" else p.daddr) in self.elements[m[3]])
             != bool(m[2])),
            (r"ip (s|d)addr (!= )?([\d./]+)",
             lambda m: _in(p.src if m[1] == "s" else p.daddr, m[3]) != bool(m[2])),
            (r"(tcp|udp|sctp) dport (\d+)", lambda m: p.proto == m[1] and p.dport == int(m[2])),
            (r"meta l4proto (tcp|udp|sctp)", lambda m: p.proto == m[1]),
            (r"fib saddr type local", lambda m: _local(p.src)),
            (r"meta mark & (0x[0-9a-f]+) == 0", lambda m: not p.mark & int(m[1], 16)),
            (r"update @\S+ \{ ip saddr \}", lambda m: True),
        ]
        for pattern, test in conditions:
            if m := re.match(pattern + " ?", rule):
                return [(1.0, p, rule[m.end():] if test(m) else None)]
        if m := re.match(r"numgen random mod (\d+) 0 ?", rule):
            n = int(m[1])
            return [(1 / n, p, rule[m.end():]), ((n - 1) / n, p, None)]
        if m := re.match(r"dnat ip to numgen random mod (\d+) offset (\d+) map @(\S+)$", rule):
            # One of the map's n elements from the offset on, each as likely.
            n, first, endpoints = int(m[1]), int(m[2]), self.elements[m[3]]
            return [(1 / n, replace(p, dnat=endpoints[str(first + i)].replace(" . ", ":")),
                     "@ACCEPT") for i in range(n)]
        actions: list[tuple[str, Callable[[re.Match[str]], tuple[Packet, str]]]] = [
            (r"meta mark set meta mark \| (0x[0-9a-f]+)",
             lambda m: (replace(p, mark=p.mark | int(m[1], 16)), "")),
            (r"meta mark set meta mark \^ (0x[0-9a-f]+)",
             lambda m: (replace(p, mark=p.mark ^ int(m[1], 16)), "")),
            (r"dnat to (\S+)", lambda m: (replace(p, dnat=m[1]), "@ACCEPT")),
            (r"masquerade.*", lambda m: (replace(p, masq=True), "@ACCEPT")),
            (r"reject.*", lambda m: (p, "@REJECT")),
            (r"drop", lambda m: (p, "@DROP")),
            (r"return", lambda m: (p, "@return")),
            (r"(jump|goto) (\S+)", lambda m: (p, f"@{m[1]} {m[2]}")),
        ]
        for pattern, act in actions:
            if m := re.match(pattern + " ?", rule):
                q, then = act(m)
                return [(1.0, q, then or rule[m.end():])]
        raise AssertionError(f"the tracer does not know: {rule!r}")


# --- iptables --------------------------------------------------------------------------------

@dataclass
class IPTables:
    tables: dict[str, dict[str, list[list[str]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))

    @classmethod
    def load(cls, text: str) -> IPTables:
        ipt = cls()
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith("-A "):
                args = shlex.split(line)
                ipt.tables[table][args[1]].append(args[2:])
        # The jumps from the built-in chains, which the dataplane keeps in place.
        for jump in iptables.JUMP_RULES:
            ipt.tables[jump.table][jump.chain].insert(0, jump.args())
        return ipt

    def trace(self, pkt: Packet) -> list[Path]:
        def chain(table: str, name: str) -> Callable[[Packet], list[Path]]:
            return lambda p: [(pp, q) for pp, q, _ in self._run(table, name, p)]

        return walk(pkt, {
            "prerouting": [chain("nat", "PREROUTING")],
            "output": [chain("nat", "OUTPUT"), chain("filter", "OUTPUT")],
            "input": [chain("filter", "INPUT")],
            "forward": [chain("filter", "FORWARD")],
            "postrouting": [chain("nat", "POSTROUTING")],
        })

    def _run(self, table: str, chain: str, pkt: Packet) -> list[tuple[float, Packet, bool]]:
        return self._rules(table, self.tables[table][chain], 0, pkt)

    def _rules(self, table: str, rules: list[list[str]], i: int,
               pkt: Packet) -> list[tuple[float, Packet, bool]]:
        if i == len(rules):
            return [(1.0, pkt, False)]
        results = []
        prob, target, args = self._match(rules[i], pkt)
        if prob < 1.0:
            results += [((1 - prob) * p, q, v) for p, q, v in self._rules(table, rules, i + 1, pkt)]
        if prob == 0.0:
            return results
        if target in ("ACCEPT", "DROP", "REJECT"):
            return [*results, (prob, replace(pkt, verdict=target), True)]
        if target == "RETURN":
            return [*results, (prob, pkt, False)]
        if target == "DNAT":
            dnat = args[args.index("--to-destination") + 1]
            return [*results, (prob, replace(pkt, dnat=dnat, verdict="ACCEPT"), True)]
        if target == "MASQUERADE":
            return [*results, (prob, replace(pkt, masq=True, verdict="ACCEPT"), True)]
        if target == "MARK":
            op, value = args[args.index("MARK") + 1:args.index("MARK") + 3]
            mark = pkt.mark | int(value, 16) if op == "--or-mark" else pkt.mark ^ int(value, 16)
            return results + [(prob * p, q, v) for p, q, v in
                              self._rules(table, rules, i + 1, replace(pkt, mark=mark))]
        for p, q, ended in self._run(table, target, pkt):
            if ended:
                results.append((prob * p, q, True))
            else:
                results += [(prob * p * pp, qq, vv)
                            for pp, qq, vv in self._rules(table, rules, i + 1, q)]
        return results

    def _match(self, args: list[str], p: Packet) -> tuple[float, str, list[str]]:
        """(probability the rule matches, its target, its arguments)."""
        prob = 1.0
        target = args[args.index("-j") + 1]
        i = 0
        while i < len(args) and args[i] != "-j":
            negate = args[i] == "!"
            if negate:
                i += 1
            opt, val = args[i], args[i + 1] if i + 1 < len(args) else ""
            ok = True
            if opt in ("-s", "-d"):
                ok = _in(p.src if opt == "-s" else p.daddr, val)
            elif opt == "-p":
                ok = p.proto == val
            elif opt == "--dport":
                ok = p.dport == int(val)
            elif opt in ("--dst-type", "--src-type"):
                ok = _local(p.daddr if opt == "--dst-type" else p.src)
            elif opt == "--ctstate":
                ok = "NEW" in val.split(",")
            elif opt == "--mark":
                ok = bool(p.mark & int(val.split("/")[0], 16))
            elif opt == "--probability":
                prob *= float(val)
            elif opt == "--rcheck":
                ok = False  # first connection: no client is remembered yet
                i -= 1
            elif opt in ("--reap", "--set"):
                i -= 1
            if ok == negate:
                return 0.0, target, args
            i += 2
        return prob, target, args


def _assert_flow(paths: list[Path], expected: str, masq: bool) -> None:
    result = outcome(paths)
    assert sum(result.values()) == pytest.approx(1.0)
    targets = sorted(t for t, _ in result)
    want = sorted(x.strip() for x in expected.split(",")) if expected else [""]
    assert targets == want, result
    assert all(m == masq for _, m in result), result
    for t in targets:  # every endpoint equally likely
        assert sum(p for (tt, _), p in result.items() if tt == t) == pytest.approx(
            1 / len(targets))


@pytest.fixture(scope="module")
def snapshot() -> ProxySnapshot:
    return world()


@pytest.mark.parametrize("shard_size", [nftables.SHARD_SIZE, 2])
@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_nftables_flows(flow: Flow, shard_size: int, snapshot: ProxySnapshot) -> None:
    table = NFTables.load(nftables.Ruleset(NODE, shard_size).plan_full(snapshot).text)
    _assert_flow(table.trace(Packet(flow.src, flow.proto, flow.dst, flow.port)),
                 flow.output, flow.masq)


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_iptables_flows(flow: Flow, snapshot: ProxySnapshot) -> None:
    ipt = IPTables.load(iptables.Ruleset(NODE).plan_full(snapshot, ()).text)
    expected = flow.output if flow.iptables_output is None else flow.iptables_output
    _assert_flow(ipt.trace(Packet(flow.src, flow.proto, flow.dst, flow.port)), expected,
                 flow.masq if expected not in ("", "DROP", "REJECT") else False)


def test_partial_syncs_trace_like_a_full_one(snapshot: ProxySnapshot) -> None:
    """Building the tables service by service, through partial plans, ends where a full
    plan does: the same rules, elements and flows, in both modes."""
    nft, ipt = nftables.Ruleset(NODE, shard_size=2), iptables.Ruleset(NODE)
    nft.commit(nft.plan_full(ProxySnapshot(snapshot.services, {})))
    ipt.commit(ipt.plan_full(ProxySnapshot(), ()))
    nft_text = nft.plan_full(ProxySnapshot(snapshot.services, {})).text
    ipt_text = ""
    for name in sorted(snapshot.services):
        step = ProxySnapshot(snapshot.services,
                             {n: e for n, e in snapshot.endpoints.items() if n <= name})
        plan = nft.plan_partial(step, [name])
        assert "table" not in plan.text
        nft.commit(plan)
        nft_text += plan.text
        step = ProxySnapshot({n: s for n, s in snapshot.services.items() if n <= name},
                             snapshot.endpoints)
        iplan = ipt.plan_partial(step, [name])
        ipt.commit(iplan)
        ipt_text = iplan.text  # each restore rewrites every top-level chain
    full_nft = NFTables.load(nftables.Ruleset(NODE, shard_size=2).plan_full(snapshot).text)
    built_nft = NFTables.load(nft_text)
    assert dict(built_nft.elements) == dict(full_nft.elements)
    assert dict(built_nft.chains) == dict(full_nft.chains)
    for flow in FLOWS:
        pkt = Packet(flow.src, flow.proto, flow.dst, flow.port)
        assert outcome(built_nft.trace(pkt)) == outcome(full_nft.trace(pkt)), flow.name
    assert "KUBE-NODEPORTS -m comment --comment ns1/svc9:p80" in ipt_text
