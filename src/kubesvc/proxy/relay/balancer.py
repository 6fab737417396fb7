"""A Service port's backend choice in a relay worker: ClientIP affinity, then the scheduler.

Affinity follows kube-proxy's userspace load balancer: a client keeps its backend while it
connects again within `timeoutSeconds` of its last connection and the backend is still there;
a retry after a failed backend drops it and records the new choice.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from kubesvc.proxy.relay.shared import Counters, PortConfig
from kubesvc.proxy.schedulers import new_scheduler


class SharedCursor:
    """A port's rr/wrr position in the shared counters, so every worker walks one cycle."""

    __slots__ = ("_index", "_values")

    def __init__(self, counters: Counters, port_id: int) -> None:
        self._values = counters.values
        self._index = counters.cursor_index(port_id)

    @property
    def value(self) -> int:
        return self._values[self._index]

    @value.setter
    def value(self, value: int) -> None:
        self._values[self._index] = value


class Balancer:
    def __init__(self, config: PortConfig, counters: Counters, worker: int,
                 previous: Balancer | None = None) -> None:
        self.targets = config.backends
        self.affinity = config.affinity
        self.uses_dest = config.scheduler == "dh"
        self._positions = {(t.ip, t.port): i for i, t in enumerate(self.targets)}
        slots = [t.slot for t in self.targets]
        self.scheduler = new_scheduler(
            config.scheduler, [t.weight for t in self.targets],
            cursor=SharedCursor(counters, config.id),
            loads=lambda i: counters.active(slots[i]))
        self._values = counters.values
        self._row = counters.active_index(worker, 0)
        # client IP -> (backend ip, backend port, expiry); kept across endpoint updates.
        self.clients: dict[str, tuple[str, int, float]] = (
            previous.clients if previous is not None and self.affinity else {})

    def choose(self, client: str, dest: str, skip: Collection[int] = ()) -> int | None:
        """The index of the backend for a new connection, or None when there is no backend
        outside `skip`."""
        if not self.affinity:
            return self.scheduler.pick(client, dest, skip)
        now = time.monotonic()
        if not skip:
            entry = self.clients.get(client)
            if entry is not None and entry[2] > now:
                index = self._positions.get((entry[0], entry[1]))
                if index is not None and self.targets[index].weight > 0:
                    self.clients[client] = (entry[0], entry[1], now + self.affinity)
                    return index
        index = self.scheduler.pick(client, dest, skip)
        if index is not None:
            target = self.targets[index]
            self.clients[client] = (target.ip, target.port, now + self.affinity)
        return index

    def expire(self) -> None:
        """Forget clients whose affinity has run out."""
        now = time.monotonic()
        for client in [c for c, entry in self.clients.items() if entry[2] <= now]:
            del self.clients[client]

    def opened(self, slot: int) -> None:
        self._values[self._row + slot] += 1

    def closed(self, slot: int) -> None:
        self._values[self._row + slot] -= 1
