"""ipvs mode, as kube-proxy's IPVS proxier (pkg/proxy/ipvs) does it.

- A dummy interface, kube-ipvs0, holds every ClusterIP, external IP and LoadBalancer IP, so
  the node accepts packets for them and IPVS (in LOCAL_IN, and LOCAL_OUT for the node's own
  connections) sends them on to a real server, masquerading as configured in ipvs_rules.py.
- One virtual server per Service address and port, and per node address for a NodePort, with
  the Service's scheduler (its kubesvc.io/scheduler annotation, else the proxy's default) and,
  for sessionAffinity ClientIP, persistence for timeoutSeconds.
- Real servers are the ready endpoints with their pods' weights. An endpoint that goes away or
  starts terminating is quiesced (weight 0: no new connections) and deleted once its
  connections have drained, as kube-proxy's graceful termination does; UDP ones at once, since
  their "connections" never end by themselves.
- IPVS has no transaction to apply, so the kernel is diffed against the snapshot: a full sync
  reads every virtual and real server back and repairs anything that differs (IPVS in the
  node's namespace is the proxy's: a virtual server it did not make goes, as with
  kube-proxy); a partial one reads back the real servers of the changed Service ports only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from kubesvc.kernel import links, nft
from kubesvc.kernel.ipvs import (
    IP_VS_SVC_F_PERSISTENT,
    IP_VS_SVC_F_SCHED1,
    IPVS,
    RealServer,
    RealServerStatus,
    VirtualServer,
    ipvs_loaded,
)
from kubesvc.kernel.sysctl import read_sysctl, set_sysctls
from kubesvc.proxy import ipvs_rules
from kubesvc.proxy.nftsets import Element
from kubesvc.proxy.schedulers import (
    DEFAULT_SCHEDULER,
    DEFAULT_WEIGHT,
    IPVS_SCHEDULERS,
    choose_scheduler,
)
from kubesvc.proxy.topology import categorize_endpoints
from kubesvc.proxy.tracker import SnapshotUpdate
from kubesvc.proxy.types import Endpoint, NodeConfig, ProxySnapshot, ServicePort, ServicePortName

log = logging.getLogger(__name__)

DUMMY = "kube-ipvs0"
# kube-proxy's: keep connections in conntrack (for masquerading), drop those of deleted real
# servers at their next packet, and expire the persistence of quiesced ones.
SYSCTLS = {"net.ipv4.vs.conntrack": "1", "net.ipv4.vs.expire_nodest_conn": "1",
           "net.ipv4.vs.expire_quiescent_template": "1"}

VSKey = tuple[str, str, int]  # address, protocol, port
RSKey = tuple[str, int]  # address, port


@dataclass(frozen=True)
class Desired:
    """A virtual server and the weights of its real servers."""

    vs: VirtualServer
    real: Mapping[RSKey, int]


def virtual_servers(svc: ServicePort, endpoints: tuple[Endpoint, ...], node: NodeConfig,
                    scheduler: str, weight: Callable[[str], int]) -> list[Desired]:
    """What one Service port needs in IPVS."""
    name = choose_scheduler(svc.scheduler, scheduler, IPVS_SCHEDULERS)
    flags = IP_VS_SVC_F_SCHED1 if name in ("sh", "mh") else 0  # fall back past weight 0
    if svc.affinity_timeout:
        flags |= IP_VS_SVC_F_PERSISTENT
    categorized = categorize_endpoints(svc, endpoints)

    def real(eps: tuple[Endpoint, ...]) -> dict[RSKey, int]:
        return {(ep.ip, ep.port): weight(ep.ip) for ep in eps}

    internal = real(categorized.local if svc.internal_policy_local else categorized.cluster)
    external = real(categorized.local if svc.external_policy_local else categorized.cluster)

    def server(address: str, port: int) -> VirtualServer:
        return VirtualServer(address, svc.protocol, port, name, flags, svc.affinity_timeout)

    found = [Desired(server(svc.cluster_ip, svc.port), internal)]
    found += [Desired(server(ip, svc.port), external)
              for ip in (*svc.external_ips, *svc.load_balancer_ips)]
    if svc.node_port:
        found += [Desired(server(ip, svc.node_port), external) for ip in node.node_ips]
    return found


def service_addresses(snapshot: ProxySnapshot) -> set[str]:
    """The addresses kube-ipvs0 holds."""
    return {ip for svc in snapshot.services.values()
            for ip in (svc.cluster_ip, *svc.external_ips, *svc.load_balancer_ips)}


@dataclass(frozen=True)
class Change:
    """One IPVS request: `op` is add, set or delete, of a virtual server (rs None) or of a
    real server."""

    op: str
    vs: VirtualServer
    rs: RealServer | None = None


def plan(desired: Mapping[VSKey, Desired],
         current: Mapping[VSKey, tuple[VirtualServer, list[RealServerStatus]]],
         ) -> list[Change]:
    """The requests that take the kernel from `current` to `desired`, for the virtual servers
    in either. Real servers no longer desired are quiesced while connections remain."""
    changes: list[Change] = []
    for key in sorted(current.keys() - desired.keys()):
        changes.append(Change("delete", current[key][0]))
    for key in sorted(desired):
        want = desired[key]
        vs = want.vs
        if key not in current:
            changes.append(Change("add", vs))
            have: dict[RSKey, RealServerStatus] = {}
        else:
            if current[key][0] != vs:
                changes.append(Change("set", vs))
            have = {(s.server.address, s.server.port): s for s in current[key][1]}
        for rs_key, weight in sorted(want.real.items()):
            rs = RealServer(rs_key[0], rs_key[1], weight)
            if rs_key not in have:
                changes.append(Change("add", vs, rs))
            elif have[rs_key].server.weight != weight:
                changes.append(Change("set", vs, rs))
        for rs_key, status in sorted(have.items()):
            if rs_key in want.real:
                continue
            if vs.protocol == "UDP" or status.active + status.inactive == 0:
                changes.append(Change("delete", vs, status.server))
            elif status.server.weight != 0:
                changes.append(Change("set", vs, RealServer(rs_key[0], rs_key[1], 0)))
    return changes


class IPVSDataplane:
    mode = "ipvs"

    def __init__(self, node: NodeConfig, netns: str | None, *,
                 scheduler: str = DEFAULT_SCHEDULER,
                 weights: Callable[[str], int] = lambda ip: DEFAULT_WEIGHT) -> None:
        self.node = node
        self.netns = netns
        self.scheduler = scheduler
        self.weights = weights
        self._ipvs: IPVS | None = None
        # What each service port programmed, as of the last sync.
        self._servers: dict[ServicePortName, dict[VSKey, VirtualServer]] = {}
        self._addresses: set[str] = set()
        self._elements: dict[Element, str] = {}
        self._real_servers: dict[ServicePortName, int] = {}  # how many each one wants

    def counts(self) -> dict[str, int]:
        return {"virtual_servers": sum(len(s) for s in self._servers.values()),
                "real_servers": sum(self._real_servers.values()),
                "addresses": len(self._addresses), "elements": len(self._elements)}

    async def _open(self) -> IPVS:
        if self._ipvs is None:
            self._ipvs = await IPVS.open(self.netns)
        return self._ipvs

    async def sync(self, update: SnapshotUpdate, full: bool) -> None:
        ipvs = await self._open()
        snapshot = update.current
        if full:
            await self._prepare()
        names = set(snapshot.services) | set(self._servers) if full else set(update.changed)
        desired: dict[VSKey, Desired] = {}
        wanted: dict[ServicePortName, list[Desired]] = {}
        for name in names:
            svc = snapshot.services.get(name)
            if svc is not None:
                wanted[name] = virtual_servers(svc, snapshot.endpoints_of(name), self.node,
                                               self.scheduler, self.weights)
                desired.update((d.vs.key, d) for d in wanted[name])
        current = await self._current(ipvs, names, full)
        changes = plan(desired, current)
        addresses = service_addresses(snapshot)
        elements = ipvs_rules.desired_elements(
            (svc, snapshot.endpoints_of(name)) for name, svc in snapshot.services.items())
        # Masquerading first, then the virtual servers, then their addresses: a packet
        # reaches IPVS only once its address is on kube-ipvs0, and then finds it ready.
        text = (ipvs_rules.render_full(self.node, elements) if full
                else ipvs_rules.render_changes(self._elements, elements))
        if text:
            await nft.apply(self.netns, text)
        self._elements = elements
        await self._apply(ipvs, changes)
        await self._bind(addresses, full)
        for name in names:
            found = wanted.get(name)
            if found is None:
                self._servers.pop(name, None)
                self._real_servers.pop(name, None)
            else:
                self._servers[name] = {d.vs.key: d.vs for d in found}
                self._real_servers[name] = sum(len(d.real) for d in found)

    async def _prepare(self) -> None:
        """The dummy interface and the sysctls IPVS needs (which exist once ip_vs is in)."""
        if not await links.link_exists(self.netns, DUMMY):
            await links.ip_batch(self.netns, [f"link add {DUMMY} type dummy"])
        if self.netns is not None:
            await set_sysctls(self.netns, SYSCTLS)
            return
        for key, value in SYSCTLS.items():  # never written in the host's own namespace
            if await read_sysctl(None, key) != value:
                log.warning("%s is not %s: ipvs mode cannot masquerade (set it on the host)",
                            key, value)

    async def _current(self, ipvs: IPVS, names: Iterable[ServicePortName], full: bool
                       ) -> dict[VSKey, tuple[VirtualServer, list[RealServerStatus]]]:
        """The kernel's state of the virtual servers a sync looks at."""
        if full:
            servers = await ipvs.virtual_servers()
        else:
            servers = [vs for name in names for vs in self._servers.get(name, {}).values()]
        return {vs.key: (vs, await ipvs.real_servers(vs)) for vs in servers}

    async def _apply(self, ipvs: IPVS, changes: list[Change]) -> None:
        for change in changes:
            vs, rs = change.vs, change.rs
            if rs is None:
                if change.op == "add":
                    await ipvs.add_virtual_server(vs)
                elif change.op == "set":
                    await ipvs.update_virtual_server(vs)
                else:
                    await ipvs.delete_virtual_server(vs)
            elif change.op == "add":
                await ipvs.add_real_server(vs, rs)
            elif change.op == "set":
                await ipvs.update_real_server(vs, rs)
            else:
                await ipvs.delete_real_server(vs, rs)

    async def _bind(self, addresses: set[str], full: bool) -> None:
        have = self._addresses
        if full:
            have = {str(i.ip) for i in await links.ipv4_interfaces(self.netns, DUMMY)}
        commands = [f"addr add {ip}/32 dev {DUMMY}" for ip in sorted(addresses - have)]
        commands += [f"addr del {ip}/32 dev {DUMMY}" for ip in sorted(have - addresses)]
        await links.ip_batch(self.netns, commands)
        self._addresses = addresses

    async def close(self) -> None:
        """Let go of the netlink socket; IPVS keeps serving without the proxy."""
        if self._ipvs is not None:
            self._ipvs.close()
            self._ipvs = None


async def cleanup(netns: str | None) -> None:
    """Remove everything ipvs mode made in `netns`: its table, every virtual server and
    kube-ipvs0. Harmless if there is none: IPVS is only touched where kube-ipvs0 shows that
    ipvs mode ran, and ip_vs is never loaded to find out."""
    await nft.delete_table(netns, ipvs_rules.FAMILY, ipvs_rules.TABLE)
    if ipvs_loaded() and await links.link_exists(netns, DUMMY):
        ipvs = await IPVS.open(netns)
        try:
            for vs in await ipvs.virtual_servers():
                await ipvs.delete_virtual_server(vs)
        finally:
            ipvs.close()
    await links.delete_link(netns, DUMMY)


async def programmed_rules(netns: str | None) -> str:
    """The table and IPVS's virtual and real servers, as text (in ipvsadm -Ln's spirit)."""
    lines = [await nft.list_table(netns, ipvs_rules.FAMILY, ipvs_rules.TABLE) or ""]
    if ipvs_loaded():
        ipvs = await IPVS.open(netns)
        try:
            for vs in sorted(await ipvs.virtual_servers()):
                persistent = f" persistent {vs.timeout}" if vs.timeout else ""
                lines.append(f"{vs} {vs.scheduler}{persistent}")
                for status in sorted(await ipvs.real_servers(vs), key=lambda s: s.server):
                    rs = status.server
                    lines.append(f"  -> {rs.address}:{rs.port} weight {rs.weight} "
                                 f"active {status.active} inactive {status.inactive}")
        finally:
            ipvs.close()
    return "\n".join(lines) + "\n"
