"""What the userspace proxy's control process and its relay workers share.

- `PortConfig`: a Service port as a worker serves it (its listening socket travels alongside,
  as a file descriptor); sent as JSON over the control socket.
- `Counters`: a memory segment every worker maps. Scheduling state that must be the same in
  every worker lives there: the rr/wrr cursor of each port (read and advanced without a lock:
  two workers picking at the same instant may land on the same backend, sequential picks
  alternate exactly) and each backend's active connections, one row per worker, so each
  counter has a single writer and a reader sums the rows.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from typing import Any

MAX_PORTS = 1 << 16  # port ids, which are also cursor indexes
MAX_SLOTS = 1 << 20  # backend slots: one per (service port, endpoint) in use
EVERY_WORKER = -1


@dataclass(frozen=True, slots=True)
class Target:
    """A backend of a port: where to connect, its weight, its connection-counter slot."""

    ip: str
    port: int
    weight: int
    slot: int


@dataclass(frozen=True, slots=True)
class PortConfig:
    id: int
    protocol: str  # TCP or UDP
    scheduler: str
    affinity: int  # seconds of ClientIP affinity, 0 for none
    owner: int  # the worker that serves the port, or EVERY_WORKER
    backends: tuple[Target, ...]

    def to_json(self) -> list[Any]:
        return [self.id, self.protocol, self.scheduler, self.affinity, self.owner,
                [[t.ip, t.port, t.weight, t.slot] for t in self.backends]]

    @classmethod
    def from_json(cls, data: list[Any]) -> PortConfig:
        id_, protocol, scheduler, affinity, owner, backends = data
        return cls(int(id_), str(protocol), str(scheduler), int(affinity), int(owner),
                   tuple(Target(str(ip), int(port), int(weight), int(slot))
                         for ip, port, weight, slot in backends))


class Counters:
    """The shared segment: MAX_PORTS cursors, then `workers` rows of MAX_SLOTS counters.

    Backed by a memfd, so it is sparse (untouched pages cost nothing) and can be handed to a
    worker as a file descriptor.
    """

    def __init__(self, fd: int, workers: int) -> None:
        self.fd = fd
        self.workers = workers
        self._map = mmap.mmap(fd, self.size(workers))
        self.values = memoryview(self._map).cast("q")

    @staticmethod
    def size(workers: int) -> int:
        return 8 * (MAX_PORTS + workers * MAX_SLOTS)

    @classmethod
    def create(cls, workers: int) -> Counters:
        fd = os.memfd_create("kubesvc-relay-counters")
        os.ftruncate(fd, cls.size(workers))
        return cls(fd, workers)

    @staticmethod
    def cursor_index(port_id: int) -> int:
        return port_id

    @staticmethod
    def active_index(worker: int, slot: int) -> int:
        return MAX_PORTS + worker * MAX_SLOTS + slot

    def active(self, slot: int) -> int:
        """Connections to the backend in `slot`, summed over every worker."""
        values = self.values
        return sum(values[MAX_PORTS + w * MAX_SLOTS + slot] for w in range(self.workers))

    def reset_worker(self, worker: int) -> None:
        """Forget a dead worker's connections (its replacement starts from zero)."""
        # Punching the pages out zeroes them without touching (and so allocating) them.
        self._map.madvise(mmap.MADV_REMOVE, 8 * self.active_index(worker, 0), 8 * MAX_SLOTS)

    def close(self) -> None:
        self.values.release()
        self._map.close()
        os.close(self.fd)
