"""Which conntrack entries a sync leaves stale (kube-proxy's pkg/proxy/conntrack, for UDP).

TCP needs nothing: a connection to a removed endpoint fails and the client reconnects, which
creates a new entry and a new choice. A UDP flow keeps its entry, and so its old endpoint, for
as long as datagrams keep coming, so its entries are deleted when:
- an endpoint stops being used: entries DNAT-ed to it, per Service address and NodePort;
- a service port gets endpoints after having none (or is new): entries to its addresses that
  were never DNAT-ed, made while nothing could answer (a DNS client retrying from one port,
  say), which would otherwise bypass the new rules for as long as the client keeps sending.
  Entries that were DNAT-ed are left alone, so a proxy restart breaks no flow.

Both follow from the difference between two snapshots, which a proxy that just started does not
have: an endpoint that left while it was down is in neither. So full syncs also reconcile the
kernel's entries with the snapshot (kube-proxy's CleanStaleEntries, `stale_udp_entries`).
"""

from __future__ import annotations

from collections.abc import Iterable

from kubesvc.kernel.conntrack import Entry, FlowFilter
from kubesvc.proxy.topology import categorize_endpoints
from kubesvc.proxy.tracker import SnapshotUpdate
from kubesvc.proxy.types import Endpoint, ProxySnapshot, ServicePort, ServicePortName


def _reachable(snapshot: ProxySnapshot, name: ServicePortName
               ) -> tuple[ServicePort | None, set[Endpoint]]:
    svc = snapshot.services.get(name)
    if svc is None:
        return None, set()
    return svc, set(categorize_endpoints(svc, snapshot.endpoints_of(name)).reachable)


def _addresses(svc: ServicePort) -> tuple[str, ...]:
    return (svc.cluster_ip, *svc.external_ips, *svc.load_balancer_ips)


def stale_udp_flows(update: SnapshotUpdate) -> list[FlowFilter]:
    flows: set[FlowFilter] = set()
    for name in update.changed:
        if name.protocol != "UDP":
            continue
        old, old_eps = _reachable(update.previous, name)
        new, new_eps = _reachable(update.current, name)
        if old is not None:
            gone = {ep.ip for ep in old_eps} - {ep.ip for ep in new_eps}
            for ip in gone:
                flows.update(FlowFilter("udp", orig_dst=a, dst_nat=ip) for a in _addresses(old))
                if old.node_port:
                    flows.add(FlowFilter("udp", orig_port_dst=old.node_port, dst_nat=ip))
        if new is not None and new_eps and not old_eps:
            flows.update(FlowFilter("udp", orig_dst=a, reply_src=a) for a in _addresses(new))
            if new.node_port:
                flows.add(FlowFilter("udp", orig_port_dst=new.node_port,
                                     reply_port_src=new.node_port))
    return sorted(flows, key=FlowFilter.argv)


# The modes in which the kernel DNATs each flow to its endpoint. userspace mode redirects every
# flow to its own relay, which picks endpoints (and ends the sessions of those that leave).
DNAT_MODES = ("nftables", "iptables", "ipvs")


def stale_udp_entries(snapshot: ProxySnapshot, entries: Iterable[Entry]) -> list[FlowFilter]:
    """Filters for the UDP entries sent to a service port's address and port, or to its
    NodePort, and DNAT-ed to an IP that does not serve that port.

    Serving endpoints count whatever the traffic policies say, as in kube-proxy: a policy change
    steers new flows, not existing ones, as it does for TCP.
    """
    serving_at: dict[tuple[str, int], set[str]] = {}
    serving_at_node_port: dict[int, set[str]] = {}
    for name, svc in snapshot.services.items():
        if name.protocol != "UDP":
            continue
        serving = {ep.ip for ep in snapshot.endpoints_of(name) if ep.serving}
        for address in _addresses(svc):
            serving_at[(address, svc.port)] = serving
        if svc.node_port:
            serving_at_node_port[svc.node_port] = serving
    flows: set[FlowFilter] = set()
    for entry in entries:
        if entry.protocol != "udp" or not entry.dnat:
            continue
        at_address = serving_at.get((entry.orig_dst, entry.orig_port_dst))
        if at_address is not None and entry.reply_src not in at_address:
            flows.add(FlowFilter("udp", orig_dst=entry.orig_dst,
                                 orig_port_dst=entry.orig_port_dst, dst_nat=entry.reply_src))
        at_node_port = serving_at_node_port.get(entry.orig_port_dst)
        if at_node_port is not None and entry.reply_src not in at_node_port:
            flows.add(FlowFilter("udp", orig_port_dst=entry.orig_port_dst,
                                 dst_nat=entry.reply_src))
    return sorted(flows, key=FlowFilter.argv)
