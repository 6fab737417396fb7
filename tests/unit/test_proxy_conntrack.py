"""Which UDP conntrack entries the proxy deletes: from the change between two snapshots, and
from the kernel's table reconciled with one snapshot. Also reading that table."""

from __future__ import annotations

from typing import Any

from test_proxy_tracker import NOT_READY, TERMINATING, endpoint_slice, feed, service, snapshot_of

from kubesvc.kernel.conntrack import Entry, FlowFilter, parse_entries
from kubesvc.proxy.conntrack import stale_udp_entries, stale_udp_flows
from kubesvc.proxy.tracker import ChangeTracker, SnapshotUpdate

Obj = dict[str, Any]


def _update(before: list[Obj], after: list[Obj]) -> SnapshotUpdate:
    tracker = ChangeTracker("node-a")
    feed(tracker, *before)
    tracker.snapshot()
    feed(tracker, *after)
    return tracker.snapshot()


def test_stale_udp_flows() -> None:
    dns = service("dns", "172.30.0.10", port=53, protocol="UDP", port_name="dns",
                  node_port=3053, type="NodePort", externalIPs=["192.168.99.10"])
    slice_of = lambda *ips: endpoint_slice("dns", *ips, port=5353,  # noqa: E731
                                           protocol="UDP", port_name="dns")
    update = _update([dns, slice_of("10.180.0.5", "10.180.0.6")], [slice_of("10.180.0.6")])
    assert stale_udp_flows(update) == [
        FlowFilter("udp", orig_dst="172.30.0.10", dst_nat="10.180.0.5"),
        FlowFilter("udp", orig_dst="192.168.99.10", dst_nat="10.180.0.5"),
        FlowFilter("udp", orig_port_dst=3053, dst_nat="10.180.0.5"),
    ]
    # From no endpoints to some: entries made meanwhile, never DNAT-ed, bypass the new rules.
    update = _update([dns, slice_of()], [slice_of("10.180.0.6")])
    assert stale_udp_flows(update) == [
        FlowFilter("udp", orig_dst="172.30.0.10", reply_src="172.30.0.10"),
        FlowFilter("udp", orig_dst="192.168.99.10", reply_src="192.168.99.10"),
        FlowFilter("udp", orig_port_dst=3053, reply_port_src=3053)]
    assert FlowFilter("udp", orig_port_dst=3053, reply_port_src=3053).argv() == [
        "-p", "udp", "--orig-port-dst", "3053", "--reply-port-src", "3053"]
    # TCP connections are never touched.
    tcp = _update([service("svc1", "172.30.0.41"), endpoint_slice("svc1", "10.180.0.1")],
                  [endpoint_slice("svc1", "10.180.0.2")])
    assert stale_udp_flows(tcp) == []


def test_stale_udp_entries() -> None:
    snapshot = snapshot_of(
        service("dns", "172.30.0.10", port=53, protocol="UDP", port_name="dns",
                node_port=3053, type="NodePort", externalIPs=["192.168.99.10"]),
        endpoint_slice("dns", "10.180.0.6", ("10.180.0.7", TERMINATING),
                       ("10.180.1.8", NOT_READY), port=5353, protocol="UDP", port_name="dns"),
        service("empty", "172.30.0.11", port=53, protocol="UDP", port_name="dns"),
        service("local", "172.30.0.12", port=53, protocol="UDP", port_name="dns",
                internalTrafficPolicy="Local"),
        endpoint_slice("local", "10.180.1.12", port=5353, protocol="UDP", port_name="dns"),
        service("svc1", "172.30.0.41"), endpoint_slice("svc1", "10.180.0.1"))
    gone, node = "10.180.0.5", "192.168.0.2"
    stale = [
        Entry("udp", "172.30.0.10", 53, gone, 5353),
        Entry("udp", "172.30.0.10", 53, "10.180.1.8", 5353),  # not serving
        Entry("udp", "192.168.99.10", 53, gone, 5353),
        Entry("udp", node, 3053, gone, 5353),
        Entry("udp", "172.30.0.11", 53, gone, 5353),  # no endpoints left at all
    ]
    kept = [
        Entry("udp", "172.30.0.10", 53, "10.180.0.6", 5353),
        Entry("udp", "172.30.0.10", 53, "10.180.0.7", 5353),  # terminating, still serving
        Entry("udp", node, 3053, "10.180.0.6", 5353),
        # A traffic policy steers new flows only (the node has no local endpoint of it).
        Entry("udp", "172.30.0.12", 53, "10.180.1.12", 5353),
        # Never DNAT-ed: the change-driven deletion decides those.
        Entry("udp", "172.30.0.10", 53, "172.30.0.10", 53),
        Entry("udp", "172.30.0.10", 54, gone, 5353),  # no such service port
        Entry("tcp", "172.30.0.41", 80, gone, 80),
        Entry("udp", "10.180.0.9", 5000, "10.180.0.9", 5000),  # no Service involved
    ]
    assert stale_udp_entries(snapshot, [*stale, *kept]) == [
        FlowFilter("udp", orig_dst="172.30.0.10", orig_port_dst=53, dst_nat=gone),
        FlowFilter("udp", orig_dst="172.30.0.10", orig_port_dst=53, dst_nat="10.180.1.8"),
        FlowFilter("udp", orig_dst="172.30.0.11", orig_port_dst=53, dst_nat=gone),
        FlowFilter("udp", orig_dst="192.168.99.10", orig_port_dst=53, dst_nat=gone),
        FlowFilter("udp", orig_port_dst=3053, dst_nat=gone),
    ]
    assert stale_udp_entries(snapshot, kept) == []


def test_parse_entries() -> None:
    # conntrack 1.4.7's `conntrack -L` (its count goes to stderr).
    listing = (
        "udp      17 29 src=10.244.0.4 dst=10.96.0.10 sport=40000 dport=53 [UNREPLIED] "
        "src=10.244.0.2 dst=10.244.0.4 sport=5353 dport=40000 mark=0 use=1\n"
        "udp      17 115 src=192.0.2.1 dst=192.0.2.2 sport=41000 dport=30053 "
        "src=10.244.0.3 dst=10.244.0.1 sport=5353 dport=41000 [ASSURED] mark=0 use=1\n"
        "tcp      6 431999 ESTABLISHED src=10.244.0.4 dst=10.96.0.1 sport=51000 dport=443 "
        "src=192.168.50.1 dst=10.244.0.4 sport=6443 dport=51000 [ASSURED] mark=0 use=1\n")
    assert parse_entries(listing) == [
        Entry("udp", "10.96.0.10", 53, "10.244.0.2", 5353),
        Entry("udp", "192.0.2.2", 30053, "10.244.0.3", 5353),
        Entry("tcp", "10.96.0.1", 443, "192.168.50.1", 6443),
    ]
    assert parse_entries("") == []
    assert Entry("udp", "10.96.0.10", 53, "10.244.0.2", 53).dnat
    assert not Entry("udp", "10.96.0.10", 53, "10.96.0.10", 53).dnat
