"""nftables mode: golden transactions for a small world, full and partial.

Expectations are the exact `nft -f` text, so they read as documentation of the layout. Chain
and set names are checked against kube-proxy's own test expectations (its hashes for
ns1/svc1/tcp/p80 and friends), so the naming is kube-proxy's, not merely similar.
"""

from __future__ import annotations

from textwrap import dedent

from test_proxy_tracker import endpoint_slice, feed, service

from kubesvc.proxy import nftables
from kubesvc.proxy.tracker import ChangeTracker
from kubesvc.proxy.types import Endpoint, NodeConfig, ServicePortName

NODE = NodeConfig("node-a", ("192.168.0.2",), "10.0.0.0/8", "172.30.0.0/16", "10.180.0.0/24")
SVC2 = dict(namespace="ns2", type="NodePort", node_port=3001, externalIPs=["192.168.99.22"],
            externalTrafficPolicy="Local")


def test_names_are_kube_proxys() -> None:
    svc1 = ServicePortName("ns1", "svc1", "p80", "TCP")
    assert nftables.cluster_chain(svc1) == "service-ULMVA6XW-ns1/svc1/tcp/p80"
    assert nftables.external_chain(ServicePortName("ns2", "svc2", "p80", "TCP")) == (
        "external-42NFTM6N-ns2/svc2/tcp/p80")
    assert nftables.affinity_set(svc1, Endpoint("10.180.0.1", 80)) == (
        "affinity-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80")
    long = ServicePortName("n" * 63, "s" * 63, "p" * 15, "TCP")
    assert len(nftables.cluster_chain(long)) <= nftables.CHAIN_NAME_MAX


def world() -> tuple[ChangeTracker, nftables.Ruleset]:
    tracker = ChangeTracker("node-a")
    feed(tracker, service("svc1", "172.30.0.41"), endpoint_slice("svc1", "10.180.0.1"),
         service("svc2", "172.30.0.42", **SVC2),
         endpoint_slice("svc2", "10.180.0.2", "10.180.1.2", namespace="ns2"),
         service("svc3", "172.30.0.43", namespace="ns3"))
    return tracker, nftables.Ruleset(NODE)


def test_full_ruleset() -> None:
    tracker, ruleset = world()
    plan = ruleset.plan_full(tracker.snapshot().current)
    assert plan.text == dedent("""\
    add table ip kubesvc
    delete table ip kubesvc
    add table ip kubesvc-services-0
    delete table ip kubesvc-services-0
    add table ip kubesvc { comment "rules for kubesvc" ; }
    add chain ip kubesvc filter-input { type filter hook input priority -110 ; }
    add chain ip kubesvc filter-forward { type filter hook forward priority -110 ; }
    add chain ip kubesvc filter-output { type filter hook output priority -110 ; }
    add chain ip kubesvc filter-output-post-dnat { type filter hook output priority -90 ; }
    add chain ip kubesvc nat-postrouting { type nat hook postrouting priority 100 ; }
    add chain ip kubesvc mark-for-masquerade
    add chain ip kubesvc masquerading
    add chain ip kubesvc service-endpoints-check
    add chain ip kubesvc nodeport-endpoints-check
    add chain ip kubesvc cluster-ips-check
    add chain ip kubesvc reject-chain
    add set ip kubesvc cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
    add set ip kubesvc nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
    add set ip kubesvc hairpin-endpoints { type ipv4_addr . ipv4_addr ; comment "Pods of this node, for hairpin SNAT" ; }
    add map ip kubesvc no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
    add map ip kubesvc no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
    add table ip kubesvc-services-0 { comment "service chains of kubesvc" ; }
    add chain ip kubesvc-services-0 nat-prerouting { type nat hook prerouting priority -100 ; }
    add chain ip kubesvc-services-0 nat-output { type nat hook output priority -100 ; }
    add chain ip kubesvc-services-0 mark-for-masquerade
    add chain ip kubesvc-services-0 services
    add set ip kubesvc-services-0 nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
    add map ip kubesvc-services-0 service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
    add map ip kubesvc-services-0 service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
    add map ip kubesvc-services-0 tcp-endpoints-0 { typeof numgen random mod 1 : ip daddr . tcp dport ; comment "endpoints of service chains, by index" ; }
    add chain ip kubesvc-services-0 service-ULMVA6XW-ns1/svc1/tcp/p80
    add chain ip kubesvc-services-0 service-42NFTM6N-ns2/svc2/tcp/p80
    add chain ip kubesvc-services-0 local-42NFTM6N-ns2/svc2/tcp/p80
    add chain ip kubesvc-services-0 external-42NFTM6N-ns2/svc2/tcp/p80
    add rule ip kubesvc filter-input ct state new jump nodeport-endpoints-check
    add rule ip kubesvc filter-input ct state new jump service-endpoints-check
    add rule ip kubesvc filter-forward ct state new jump service-endpoints-check
    add rule ip kubesvc filter-forward ct state new jump cluster-ips-check
    add rule ip kubesvc filter-output ct state new jump service-endpoints-check
    add rule ip kubesvc filter-output-post-dnat ct state new jump cluster-ips-check
    add rule ip kubesvc nat-postrouting jump masquerading
    add rule ip kubesvc mark-for-masquerade meta mark set meta mark | 0x4000
    add rule ip kubesvc masquerading ct status dnat ip saddr . ip daddr @hairpin-endpoints jump mark-for-masquerade
    add rule ip kubesvc masquerading meta mark & 0x4000 == 0 return
    add rule ip kubesvc masquerading meta mark set meta mark ^ 0x4000
    add rule ip kubesvc masquerading masquerade fully-random
    add rule ip kubesvc service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
    add rule ip kubesvc nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
    add rule ip kubesvc cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
    add rule ip kubesvc cluster-ips-check ip daddr 172.30.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"
    add rule ip kubesvc reject-chain meta l4proto tcp reject with tcp reset
    add rule ip kubesvc reject-chain reject
    add element ip kubesvc nodeport-ips { 192.168.0.2 }
    add rule ip kubesvc-services-0 nat-prerouting jump services
    add rule ip kubesvc-services-0 nat-output jump services
    add rule ip kubesvc-services-0 mark-for-masquerade meta mark set meta mark | 0x4000
    add rule ip kubesvc-services-0 services ip daddr . meta l4proto . th dport vmap @service-ips
    add rule ip kubesvc-services-0 services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
    add element ip kubesvc-services-0 nodeport-ips { 192.168.0.2 }
    add rule ip kubesvc-services-0 service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kubesvc-services-0 service-ULMVA6XW-ns1/svc1/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 1 offset 0 map @tcp-endpoints-0
    add rule ip kubesvc-services-0 service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kubesvc-services-0 service-42NFTM6N-ns2/svc2/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 2 offset 65536 map @tcp-endpoints-0
    add rule ip kubesvc-services-0 local-42NFTM6N-ns2/svc2/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 1 offset 131072 map @tcp-endpoints-0
    add rule ip kubesvc-services-0 external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
    add rule ip kubesvc-services-0 external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
    add rule ip kubesvc-services-0 external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
    add rule ip kubesvc-services-0 external-42NFTM6N-ns2/svc2/tcp/p80 goto local-42NFTM6N-ns2/svc2/tcp/p80
    add element ip kubesvc cluster-ips { 172.30.0.41, 172.30.0.42, 172.30.0.43 }
    add element ip kubesvc hairpin-endpoints { 10.180.0.1 . 10.180.0.1, 10.180.0.2 . 10.180.0.2 }
    add element ip kubesvc no-endpoint-services { 172.30.0.43 . tcp . 80 : goto reject-chain }
    add element ip kubesvc-services-0 service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80, 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80, 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kubesvc-services-0 service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kubesvc-services-0 tcp-endpoints-0 { 0 : 10.180.0.1 . 80, 131072 : 10.180.0.2 . 80, 65536 : 10.180.0.2 . 80, 65537 : 10.180.1.2 . 80 }
    """)  # noqa: E501


def _plan(tracker: ChangeTracker, ruleset: nftables.Ruleset) -> nftables.Plan:
    update = tracker.snapshot()
    plan = ruleset.plan_partial(update.current, update.changed)
    ruleset.commit(plan)
    return plan


def _partial(tracker: ChangeTracker, ruleset: nftables.Ruleset) -> str:
    return _plan(tracker, ruleset).text


def test_partial_syncs_touch_only_what_changed() -> None:
    tracker, ruleset = world()
    ruleset.commit(ruleset.plan_full(tracker.snapshot().current))

    # An endpoint more, on another node: the service chain picks from one more element.
    tracker.slice_changed(None, endpoint_slice("svc1", "10.180.0.1", "10.180.1.1"))
    plan = _plan(tracker, ruleset)
    assert plan.text == dedent("""\
    flush chain ip kubesvc-services-0 service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kubesvc-services-0 service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kubesvc-services-0 service-ULMVA6XW-ns1/svc1/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 2 offset 0 map @tcp-endpoints-0
    add element ip kubesvc-services-0 tcp-endpoints-0 { 1 : 10.180.1.1 . 80 }
    """)  # noqa: E501
    assert plan.in_place is not None and nftables.netlink_batch(plan.in_place) is not None

    # An endpoint replaced: its element only.
    tracker.slice_changed(None, endpoint_slice("svc1", "10.180.0.1", "10.180.1.7"))
    assert _partial(tracker, ruleset) == dedent("""\
    delete element ip kubesvc-services-0 tcp-endpoints-0 { 1 }
    add element ip kubesvc-services-0 tcp-endpoints-0 { 1 : 10.180.1.7 . 80 }
    """)

    # A new NodePort: map elements only, no chain is rewritten.
    tracker.service_changed(None, service("svc2", "172.30.0.42", **{**SVC2, "node_port": 3002}))
    assert _partial(tracker, ruleset) == dedent("""\
    delete element ip kubesvc-services-0 service-nodeports { tcp . 3001 }
    add element ip kubesvc-services-0 service-nodeports { tcp . 3002 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    """)  # noqa: E501

    # No endpoints left: refused from now on, and the chain goes.
    tracker.slice_changed(None, endpoint_slice("svc1"))
    plan = _plan(tracker, ruleset)
    assert plan.text == dedent("""\
    delete element ip kubesvc hairpin-endpoints { 10.180.0.1 . 10.180.0.1 }
    delete element ip kubesvc-services-0 service-ips { 172.30.0.41 . tcp . 80 }
    delete element ip kubesvc-services-0 tcp-endpoints-0 { 0, 1 }
    add element ip kubesvc no-endpoint-services { 172.30.0.41 . tcp . 80 : goto reject-chain }
    flush chain ip kubesvc-services-0 service-ULMVA6XW-ns1/svc1/tcp/p80
    delete chain ip kubesvc-services-0 service-ULMVA6XW-ns1/svc1/tcp/p80
    """)
    assert plan.in_place is None  # a chain deleted: for nft

    tracker.service_changed(service("svc3", "172.30.0.43", namespace="ns3"), None)
    assert _partial(tracker, ruleset) == dedent("""\
    delete element ip kubesvc cluster-ips { 172.30.0.43 }
    delete element ip kubesvc no-endpoint-services { 172.30.0.43 . tcp . 80 }
    """)

    assert _partial(tracker, ruleset) == ""


def test_affinity_sets_come_and_go_with_their_endpoints() -> None:
    tracker, ruleset = world()
    ruleset.commit(ruleset.plan_full(tracker.snapshot().current))
    sticky = service("svc1", "172.30.0.41", sessionAffinity="ClientIP",
                     sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    tracker.service_changed(None, sticky)
    text = _partial(tracker, ruleset)
    aff = "affinity-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    assert text.splitlines()[0] == (
        f"add set ip kubesvc-services-0 {aff} "
        "{ type ipv4_addr ; flags dynamic,timeout ; timeout 60s ; }")
    assert (f"ip saddr @{aff} update @{aff} {{ ip saddr }} meta l4proto tcp dnat to "
            "10.180.0.1:80") in text
    tracker.slice_changed(None, endpoint_slice("svc1", "10.180.1.1"))
    text = _partial(tracker, ruleset)
    assert text.splitlines()[-1] == f"delete set ip kubesvc-services-0 {aff}"


def test_elements_shared_by_service_ports() -> None:
    """Two ports of one Service share its ClusterIP in cluster-ips: removing one port must
    not remove the address the other still needs."""
    tracker = ChangeTracker("node-a")
    ruleset = nftables.Ruleset(NODE)
    both = service("svc1", "172.30.0.41")
    both["spec"]["ports"].append({"name": "p81", "port": 81, "protocol": "TCP"})
    feed(tracker, both)
    ruleset.commit(ruleset.plan_full(tracker.snapshot().current))
    tracker.service_changed(both, service("svc1", "172.30.0.41"))
    text = _partial(tracker, ruleset)
    assert text == (
        "delete element ip kubesvc no-endpoint-services { 172.30.0.41 . tcp . 81 }\n")
    assert ruleset.counts() == {"tables": 2, "chains": 15, "rules": 23, "elements": 4}


def test_service_chains_are_sharded() -> None:
    tracker = ChangeTracker("node-a")
    for i in range(5):
        feed(tracker, service(f"svc{i}", f"172.30.0.{i + 1}"),
             endpoint_slice(f"svc{i}", f"10.180.0.{i + 1}"))
    ruleset = nftables.Ruleset(NODE, shard_size=2)
    plan = ruleset.plan_full(tracker.snapshot().current,
                             existing_tables=["kubesvc-services-7", "kubesvc-guard", "other"])
    ruleset.commit(plan)
    created = [line.split()[3] for line in plan.text.splitlines()
               if line.startswith("add table") and "comment" in line]
    assert created == ["kubesvc", "kubesvc-services-0", "kubesvc-services-1",
                       "kubesvc-services-2"]
    deleted = [line.split()[3] for line in plan.text.splitlines()
               if line.startswith("delete table")]
    assert deleted == ["kubesvc", "kubesvc-services-0", "kubesvc-services-1",
                       "kubesvc-services-2", "kubesvc-services-7"]  # never another's table
    svc3 = ServicePortName("ns1", "svc3", "p80", "TCP")
    shard = nftables.shard_table(svc3, 3)
    assert f"add chain ip {shard} {nftables.cluster_chain(svc3)}" in plan.text
    tracker.slice_changed(None, endpoint_slice("svc3", "10.180.0.9"))
    assert _partial(tracker, ruleset).endswith(
        f"add element ip {shard} tcp-endpoints-0 {{ 0 : 10.180.0.9 . 80 }}\n")
    assert ruleset.counts()["tables"] == 4
