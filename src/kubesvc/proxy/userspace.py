"""userspace mode: the seed's first proxy mode, a relay in userspace behind redirect rules.

For each Service port the proxy opens a port of its own on the node (a random one, in the
node's network namespace), and rules in its nftables table (portals.py) redirect the Service's
addresses there. Relay worker processes, one per core, accept on those ports, choose a backend
with the Service's scheduler and ClientIP affinity, and relay TCP or UDP to it; a backend that
refuses or does not answer is replaced by the next one, which iptables and IPVS modes cannot
do. Unlike the kernel modes, relaying stops with the proxy: connections end when it does.

The listening sockets stay open for as long as their Service port exists, so its proxy port
never changes; a sync sends the changed ports' configurations to the workers and waits for
them, then rewrites the rule elements, and only then closes the ports of removed Services.
Connections already relayed are never touched, even when their backend leaves the endpoints.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kubesvc.kernel import nft
from kubesvc.kernel.netns import open_socket
from kubesvc.proxy import portals
from kubesvc.proxy.nftsets import Element
from kubesvc.proxy.relay.pool import RelayPool, default_workers
from kubesvc.proxy.relay.shared import EVERY_WORKER, MAX_PORTS, MAX_SLOTS, PortConfig, Target
from kubesvc.proxy.schedulers import (
    DEFAULT_SCHEDULER,
    DEFAULT_WEIGHT,
    USERSPACE_SCHEDULERS,
    choose_scheduler,
)
from kubesvc.proxy.topology import categorize_endpoints
from kubesvc.proxy.tracker import SnapshotUpdate
from kubesvc.proxy.types import Endpoint, NodeConfig, ServicePort, ServicePortName

log = logging.getLogger(__name__)

PROTOCOLS = ("TCP", "UDP")  # as kube-proxy's userspace mode, no SCTP
LISTEN_BACKLOG = 4096

SlotKey = tuple[ServicePortName, str, int]  # service port, endpoint IP, endpoint port


class SlotTable:
    """Connection-counter slots of (service port, endpoint) pairs.

    A pair keeps its slot while it is an endpoint, and gets it back if it returns before the
    slot is reused, with its connections still counted (as IPVS keeps a removed real server
    in its trash). A slot is reused only once every connection it counted has ended.
    """

    def __init__(self) -> None:
        self._slots: dict[SlotKey, int] = {}
        self._by_port: dict[ServicePortName, set[SlotKey]] = {}
        self._retired: dict[SlotKey, int] = {}
        self._free: list[int] = []
        self._next = 0

    def assign(self, name: ServicePortName, keys: Iterable[SlotKey]) -> dict[SlotKey, int]:
        """Make `keys` the endpoints of `name`; the slot of each."""
        wanted = set(keys)
        for key in self._by_port.pop(name, set()) - wanted:
            self._retired[key] = self._slots.pop(key)
        if wanted:
            self._by_port[name] = wanted
        for key in wanted:
            if key not in self._slots:
                retired = self._retired.pop(key, None)
                self._slots[key] = self._allocate() if retired is None else retired
        return {key: self._slots[key] for key in wanted}

    def _allocate(self) -> int:
        if self._free:
            return self._free.pop()
        if self._next >= MAX_SLOTS:
            raise RuntimeError(f"more than {MAX_SLOTS} endpoints in userspace mode")
        self._next += 1
        return self._next - 1

    def of(self, name: ServicePortName) -> dict[SlotKey, int]:
        """The slots of `name`'s endpoints."""
        return {key: self._slots[key] for key in self._by_port.get(name, ())}

    def release_idle(self, active: Callable[[int], int]) -> None:
        """Free the retired slots with no connection left."""
        for key, slot in list(self._retired.items()):
            if active(slot) == 0:
                del self._retired[key]
                self._free.append(slot)


@dataclass(frozen=True)
class _Listener:
    id: int
    port: int  # the proxy port on the node


class UserspaceDataplane:
    mode = "userspace"

    def __init__(self, node: NodeConfig, netns: str | None, *,
                 scheduler: str = DEFAULT_SCHEDULER,
                 weights: Callable[[str], int] = lambda ip: DEFAULT_WEIGHT,
                 workers: int | None = None) -> None:
        self.node = node
        self.netns = netns
        self.scheduler = scheduler
        self.weights = weights
        self.workers = workers or default_workers()
        self._pool: RelayPool | None = None
        self._listeners: dict[ServicePortName, _Listener] = {}
        self._served: dict[ServicePortName, int] = {}  # with endpoints: name -> proxy port
        self._elements: dict[Element, str] = {}
        self._slots = SlotTable()
        self._free_ids: list[int] = []
        self._next_id = 0

    def counts(self) -> dict[str, int]:
        return {"listeners": len(self._listeners), "elements": len(self._elements)}

    def connections(self, name: ServicePortName) -> dict[str, int]:
        """Open relayed connections (UDP sessions) of a Service port, per "ip:port" of its
        endpoints, summed over the workers."""
        if self._pool is None:
            return {}
        active = self._pool.counters.active
        return {f"{ip}:{port}": active(slot)
                for (_, ip, port), slot in self._slots.of(name).items()}

    def proxy_port(self, name: ServicePortName) -> int | None:
        """The node port a Service port is relayed from (None if it has none)."""
        listener = self._listeners.get(name)
        return None if listener is None else listener.port

    async def sync(self, update: SnapshotUpdate, full: bool) -> None:
        if self._pool is None:
            pool = RelayPool(self.netns, self.workers)
            await pool.start()
            self._pool = pool
        snapshot = update.current
        names = set(snapshot.services) | set(self._listeners) if full else set(update.changed)
        wanted = {name: svc for name in names
                  if (svc := snapshot.services.get(name)) is not None
                  and svc.protocol in PROTOCOLS}
        listen = await self._listen_all([svc for name, svc in wanted.items()
                                         if name not in self._listeners])
        configs: list[PortConfig] = []
        drop: list[int] = []
        for name in sorted(names):
            svc = wanted.get(name)
            if svc is None:
                listener = self._listeners.pop(name, None)
                if listener is not None:
                    drop.append(listener.id)
                self._served.pop(name, None)
                self._slots.assign(name, ())
                continue
            listener = self._listeners[name]
            config = self._config(listener.id, svc, snapshot.endpoints_of(name))
            configs.append(config)
            if config.backends:
                self._served[name] = listener.port
            else:
                self._served.pop(name, None)
        await self._pool.update(listen, configs, [])
        elements = portals.desired_elements(snapshot.services.values(), self._served)
        text = (portals.render_full(elements) if full
                else portals.render_changes(self._elements, elements))
        if text:
            await nft.apply(self.netns, text)
        self._elements = elements
        if drop:  # no rule leads to them any more
            await self._pool.update({}, [], drop)
            self._free_ids += drop
        self._slots.release_idle(self._pool.counters.active)

    async def _listen_all(self, services: list[ServicePort]) -> dict[int, socket.socket]:
        """A listening socket, on a random port of the node, for each of `services`; all of
        them or, if one fails, none."""
        opened: dict[int, socket.socket] = {}
        try:
            for svc in services:
                listener, sock = await self._listen(svc)
                opened[listener.id] = sock
                self._listeners[svc.name] = listener
        except BaseException:
            for svc in services:
                made = self._listeners.get(svc.name)
                if made is not None and made.id in opened:
                    del self._listeners[svc.name]
                    opened.pop(made.id).close()
                    self._free_ids.append(made.id)
            raise
        return opened

    async def _listen(self, svc: ServicePort) -> tuple[_Listener, socket.socket]:
        assert self._pool is not None
        kind = socket.SOCK_STREAM if svc.protocol == "TCP" else socket.SOCK_DGRAM
        sock = await open_socket(self.netns, socket.AF_INET, kind)
        try:
            sock.bind(("0.0.0.0", 0))
            if kind == socket.SOCK_STREAM:
                sock.listen(LISTEN_BACKLOG)
        except BaseException:
            sock.close()
            raise
        if self._free_ids:
            port_id = self._free_ids.pop()
        elif self._next_id < MAX_PORTS:
            port_id, self._next_id = self._next_id, self._next_id + 1
        else:
            sock.close()
            raise RuntimeError(f"more than {MAX_PORTS} service ports in userspace mode")
        counters = self._pool.counters
        counters.values[counters.cursor_index(port_id)] = 0  # a new port starts its cycle
        return _Listener(port_id, sock.getsockname()[1]), sock

    def _config(self, port_id: int, svc: ServicePort,
                endpoints: tuple[Endpoint, ...]) -> PortConfig:
        categorized = categorize_endpoints(svc, endpoints)
        # externalTrafficPolicy has nothing to keep here: a relay never preserves the client's
        # address. internalTrafficPolicy Local still means this node's endpoints only.
        chosen = categorized.local if svc.internal_policy_local else categorized.cluster
        slots = self._slots.assign(svc.name, [(svc.name, ep.ip, ep.port) for ep in chosen])
        backends = tuple(Target(ep.ip, ep.port, self.weights(ep.ip),
                                slots[(svc.name, ep.ip, ep.port)]) for ep in chosen)
        scheduler = choose_scheduler(svc.scheduler, self.scheduler, USERSPACE_SCHEDULERS)
        # Per-client state (affinity, UDP sessions) must see all of a client's traffic, so
        # such a port is served by one worker; the others by all.
        shared = svc.protocol == "TCP" and not svc.affinity_timeout
        owner = EVERY_WORKER if shared else port_id % self.workers
        return PortConfig(port_id, svc.protocol, scheduler, svc.affinity_timeout, owner, backends)

    async def close(self) -> None:
        """Stop the relay workers and close the proxy ports (the rules stay until cleanup)."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        self._listeners.clear()
        self._served.clear()
        self._free_ids.clear()
        self._next_id = 0


async def cleanup(netns: str | None) -> None:
    """Remove userspace mode's rules from `netns`; harmless if there are none."""
    await nft.delete_table(netns, portals.FAMILY, portals.TABLE)


async def programmed_rules(netns: str | None) -> str:
    return await nft.list_table(netns, portals.FAMILY, portals.TABLE) or ""
