"""iptables mode: golden iptables-restore payloads, full and partial.

The layout and chain names are kube-proxy's iptables mode (KUBE-SVC-XPGD46QRK7WJZT7O and
KUBE-SEP-SXIVWICOYRO3J4NJ are its own test expectations for ns1/svc1:p80).
"""

from __future__ import annotations

import re
from textwrap import dedent

from test_proxy_tracker import endpoint_slice, feed, service

from kubesvc.proxy import iptables
from kubesvc.proxy.tracker import ChangeTracker
from kubesvc.proxy.types import Endpoint, NodeConfig, ServicePortName

NODE = NodeConfig("node-a", ("192.168.0.2",), "10.0.0.0/8", "172.30.0.0/16")
SVC2 = dict(namespace="ns2", type="NodePort", node_port=3001, externalIPs=["192.168.99.22"],
            externalTrafficPolicy="Local")


def test_names_are_kube_proxys() -> None:
    svc1 = ServicePortName("ns1", "svc1", "p80", "TCP")
    assert iptables.service_chain(svc1) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert iptables.endpoint_chain(svc1, Endpoint("10.180.0.1", 80)) == (
        "KUBE-SEP-SXIVWICOYRO3J4NJ")
    assert iptables.external_chain(ServicePortName("ns2", "svc2", "p80", "TCP")) == (
        "KUBE-EXT-GNZBNJ2PO5MGZ6GT")


def world() -> tuple[ChangeTracker, iptables.Ruleset]:
    tracker = ChangeTracker("node-a")
    feed(tracker, service("svc1", "172.30.0.41"), endpoint_slice("svc1", "10.180.0.1"),
         service("svc2", "172.30.0.42", **SVC2),
         endpoint_slice("svc2", "10.180.0.2", "10.180.1.2", namespace="ns2"),
         service("svc3", "172.30.0.43", namespace="ns3"))
    return tracker, iptables.Ruleset(NODE)


def test_full_restore_deletes_leftover_chains() -> None:
    tracker, ruleset = world()
    # What an earlier run left: a service chain of ours, and a top-level chain we rewrite.
    plan = ruleset.plan_full(tracker.snapshot().current, ["KUBE-SVC-OLD", "KUBE-SERVICES"])
    assert plan.text == dedent("""\
    *filter
    :KUBE-SERVICES - [0:0]
    :KUBE-EXTERNAL-SERVICES - [0:0]
    :KUBE-FORWARD - [0:0]
    -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j REJECT --reject-with tcp-reset
    COMMIT
    *nat
    :KUBE-SERVICES - [0:0]
    :KUBE-NODEPORTS - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
    :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
    :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
    :KUBE-SVL-GNZBNJ2PO5MGZ6GT - [0:0]
    :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
    :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
    :KUBE-SEP-J7UNSSMXXN3UTZD6 - [0:0]
    :KUBE-SVC-OLD - [0:0]
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
    -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
    -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-RS4RBKLTHTF2IUXJ
    -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.1.2:80" -j KUBE-SEP-J7UNSSMXXN3UTZD6
    -A KUBE-SVL-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVL-GNZBNJ2PO5MGZ6GT
    -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
    -A KUBE-SEP-J7UNSSMXXN3UTZD6 -m comment --comment ns2/svc2:p80 -s 10.180.1.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-J7UNSSMXXN3UTZD6 -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.1.2:80
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS
    -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -X KUBE-SVC-OLD
    COMMIT
    """)  # noqa: E501


def _partial(tracker: ChangeTracker, ruleset: iptables.Ruleset) -> str:
    update = tracker.snapshot()
    plan = ruleset.plan_partial(update.current, update.changed)
    ruleset.commit(plan)
    return plan.text


def _declared(text: str) -> list[str]:
    """The per-service chains a payload flushes and refills (or deletes)."""
    return [c for c in re.findall(r"^:(\S+)", text, re.MULTILINE) if iptables.is_service_chain(c)]


def test_partial_restores_rewrite_only_changed_services() -> None:
    tracker, ruleset = world()
    ruleset.commit(ruleset.plan_full(tracker.snapshot().current, []))
    tracker.slice_changed(None, endpoint_slice("svc1", "10.180.0.1", "10.180.1.1"))
    text = _partial(tracker, ruleset)
    assert _declared(text) == ["KUBE-SVC-XPGD46QRK7WJZT7O", "KUBE-SEP-SXIVWICOYRO3J4NJ",
                               "KUBE-SEP-TOIS5JUHRKSSXDL7"]
    assert ('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" '
            "-m statistic --mode random --probability 0.5000000000 "
            "-j KUBE-SEP-SXIVWICOYRO3J4NJ") in text
    # Every top-level rule is still written: the restore flushes those chains.
    assert text.count("-A KUBE-SERVICES") == 5

    tracker.slice_changed(None, endpoint_slice("svc1"))
    text = _partial(tracker, ruleset)
    assert re.findall(r"^-X (\S+)", text, re.MULTILINE) == [
        "KUBE-SEP-SXIVWICOYRO3J4NJ", "KUBE-SEP-TOIS5JUHRKSSXDL7", "KUBE-SVC-XPGD46QRK7WJZT7O"]
    assert ('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp '
            "-d 172.30.0.41 --dport 80 -j REJECT --reject-with tcp-reset") in text
    assert ruleset.counts() == {"nat": 20, "filter": 5}


def test_affinity_and_udp() -> None:
    tracker = ChangeTracker("node-a")
    ruleset = iptables.Ruleset(NODE)
    feed(tracker, service("dns", "172.30.0.10", port=53, protocol="UDP", port_name="dns",
                          sessionAffinity="ClientIP"),
         endpoint_slice("dns", "10.180.0.5", port=5353, protocol="UDP", port_name="dns"))
    text = ruleset.plan_full(tracker.snapshot().current, []).text
    sep = iptables.endpoint_chain(ServicePortName("ns1", "dns", "dns", "UDP"),
                                  Endpoint("10.180.0.5", 5353))
    assert (f"-m recent --name {sep} --rcheck --seconds 10800 --reap -j {sep}") in text
    assert (f"-A {sep} -m comment --comment ns1/dns:dns -m recent --name {sep} --set "
            "-m udp -p udp -j DNAT --to-destination 10.180.0.5:5353") in text


def test_jump_rules() -> None:
    assert [(j.table, j.chain, j.target) for j in iptables.JUMP_RULES if j.table == "nat"] == [
        ("nat", "OUTPUT", "KUBE-SERVICES"), ("nat", "PREROUTING", "KUBE-SERVICES"),
        ("nat", "POSTROUTING", "KUBE-POSTROUTING")]
    assert iptables.JUMP_RULES[2].args() == [
        "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
        "kubernetes service portals", "-j", "KUBE-SERVICES"]
