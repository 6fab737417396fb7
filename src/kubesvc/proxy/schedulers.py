"""Schedulers: which backend a new connection goes to, with Linux IPVS's semantics.

IPVS mode hands the scheduler's name to the kernel; the userspace proxy runs the pickers below,
each a transcription of the kernel's net/netfilter/ipvs/ip_vs_<name>.c (Linux 6.1), so a
Service behaves the same in both modes:

- rr: the next backend after the last one chosen, skipping weight 0.
- wrr: interleaved weighted round-robin: passes over the backends at falling weight levels
  (the maximum, then down by the weights' gcd), each pass taking those weighing at least it.
- lc: the fewest connections (IPVS's overhead, active * 256 + inactive); ties to the first.
- wlc: the lowest overhead / weight.
- sed: the lowest (active + 1) / weight, the shortest expected delay.
- nq: the first idle backend (no active connection) if any ("never queue"), else sed.
- dh, sh: a 256-bucket table filled with the backends in turn (sh repeats each `weight`
  times), indexed by a hash of the connection's destination (dh) or source (sh) address.
- random: kubesvc's own: a random backend in proportion to weights (equal weights make it
  iptables mode's choice).

Weight 0 means "quiesced": never chosen for a new connection. A userspace proxy also retries a
connection whose backend failed: the picker is asked again with the failed backends in `skip`.
dh and sh probe the table past a quiesced or failed backend as IPVS's sh-fallback flag does
(which IPVS mode sets, so a draining pod does not black-hole the clients hashed to it).
"""

from __future__ import annotations

import logging
import math
import random
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

SCHEDULER_ANNOTATION = "kubesvc.io/scheduler"  # on a Service: its scheduler
WEIGHT_ANNOTATION = "kubesvc.io/weight"  # on a pod: its weight for weighted schedulers
DEFAULT_SCHEDULER = "rr"  # kube-proxy's --ipvs-scheduler default
DEFAULT_WEIGHT = 1
MAX_WEIGHT = 65535  # ipvsadm's limit

USERSPACE_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "dh", "sh", "sed", "nq", "random")
# Every scheduler Linux ships (6.1; twos since 5.9); the kernel loads ip_vs_<name> on use.
IPVS_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo",
                   "ovf", "mh", "twos")

TABLE_BITS = 8  # IP_VS_SH_TAB_BITS and IP_VS_DH_TAB_BITS
TABLE_SIZE = 1 << TABLE_BITS
GOLDEN_RATIO_32 = 0x61C88647  # include/linux/hash.h


def pod_weight(annotations: Mapping[str, str] | None) -> int:
    """A pod's weight from its annotation; 1 when absent or not a number in 0..65535."""
    value = (annotations or {}).get(WEIGHT_ANNOTATION)
    if value is None:
        return DEFAULT_WEIGHT
    try:
        weight = int(value)
    except ValueError:
        weight = -1
    if not 0 <= weight <= MAX_WEIGHT:
        log.warning("ignoring %s=%r: not a number in 0..%d", WEIGHT_ANNOTATION, value,
                    MAX_WEIGHT)
        return DEFAULT_WEIGHT
    return weight


def choose_scheduler(requested: str, default: str, supported: Collection[str]) -> str:
    """`requested` (a Service's annotation, "" if none) if this mode has it, else `default`."""
    if not requested:
        return default
    if requested in supported:
        return requested
    log.warning("unknown scheduler %r (this mode has %s); using %s", requested,
                ", ".join(supported), default)
    return default


def hash_32(value: int, bits: int = TABLE_BITS) -> int:
    """The kernel's hash_32: the top `bits` of value * GOLDEN_RATIO_32, in 32 bits."""
    return ((value * GOLDEN_RATIO_32) & 0xFFFFFFFF) >> (32 - bits)


def ip_int(ip: str) -> int:
    return int.from_bytes(socket.inet_aton(ip), "big")


class Cursor(Protocol):
    """Where a cyclic scheduler keeps its position (the relay shares it between processes)."""

    value: int


class LocalCursor:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


Loads = Callable[[int], int]  # active connections of the backend at an index


class Scheduler(ABC):
    """A picker over a fixed list of backend weights; `pick` returns an index or None."""

    name: str

    def __init__(self, weights: Sequence[int]) -> None:
        self.weights = tuple(weights)

    @abstractmethod
    def pick(self, client: str, dest: str, skip: Collection[int] = ()) -> int | None:
        """A backend for a connection from `client` to `dest`, none of those in `skip`."""


class _Cyclic(Scheduler):
    """rr and wrr: a precomputed cycle of backend indexes, walked by a cursor."""

    def __init__(self, weights: Sequence[int], cursor: Cursor) -> None:
        super().__init__(weights)
        self.cursor = cursor
        self.cycle = self._cycle()

    @abstractmethod
    def _cycle(self) -> tuple[int, ...]: ...

    def pick(self, client: str, dest: str, skip: Collection[int] = ()) -> int | None:
        cycle = self.cycle
        n = len(cycle)
        start = self.cursor.value
        for step in range(n):
            index = cycle[(start + step) % n]
            if index not in skip:
                self.cursor.value = (start + step + 1) % n
                return index
        return None


class RoundRobin(_Cyclic):
    name = "rr"

    def _cycle(self) -> tuple[int, ...]:
        return tuple(i for i, w in enumerate(self.weights) if w > 0)


class WeightedRoundRobin(_Cyclic):
    name = "wrr"

    def _cycle(self) -> tuple[int, ...]:
        live = [w for w in self.weights if w > 0]
        if not live:
            return ()
        gcd = math.gcd(*live)
        # ip_vs_wrr: cw starts at max - (gcd - 1) and drops by gcd after each pass.
        levels = range(max(live) - (gcd - 1), 0, -gcd)
        return tuple(i for cw in levels for i, w in enumerate(self.weights) if w >= cw)


class _Loaded(Scheduler):
    """Schedulers that compare backends' active connections."""

    def __init__(self, weights: Sequence[int], loads: Loads) -> None:
        super().__init__(weights)
        self.loads = loads

    def _candidates(self, skip: Collection[int]) -> list[int]:
        return [i for i, w in enumerate(self.weights) if w > 0 and i not in skip]


class LeastConnection(_Loaded):
    name = "lc"

    def pick(self, client: str, dest: str, skip: Collection[int] = ()) -> int | None:
        # Without inactive connections, IPVS's overhead is just the active ones, scaled.
        return min(self._candidates(skip), key=self.loads, default=None)


class _WeightedLeast(_Loaded):
    """wlc and sed: the lowest overhead / weight, compared by cross-multiplying as the
    kernel does; the first backend wins a tie."""

    def overhead(self, active: int) -> int:
        return active * 256  # ip_vs_dest_conn_overhead without inactive connections

    def _least(self, candidates: list[int]) -> int | None:
        least: int | None = None
        least_overhead = 0
        for i in candidates:
            overhead = self.overhead(self.loads(i))
            if least is None or least_overhead * self.weights[i] > overhead * self.weights[least]:
                least, least_overhead = i, overhead
        return least

    def pick(self, client: str, dest: str, skip: Collection[int] = ()) -> int | None:
        return self._least(self._candidates(skip))


class WeightedLeastConnection(_WeightedLeast):
    name = "wlc"


class ShortestExpectedDelay(_WeightedLeast):
    name = "sed"

    def overhead(self, active: int) -> int:
        return active + 1


class NeverQueue(ShortestExpectedDelay):
    name = "nq"

    def pick(self, client: str, dest: str, skip: Collection[int] = ()) -> int | None:
        candidates = self._candidates(skip)
        for i in candidates:
            if self.loads(i) == 0:
                return i
        return self._least(candidates)


class _Hashing(Scheduler):
    """dh and sh: a 256-bucket table of backend indexes, indexed by an address hash."""

    def __init__(self, weights: Sequence[int]) -> None:
        super().__init__(weights)
        self.table = self._table()

    @abstractmethod
    def _table(self) -> tuple[int, ...]: ...

    @abstractmethod
    def _key(self, client: str, dest: str) -> int: ...

    def pick(self, client: str, dest: str, skip: Collection[int] = ()) -> int | None:
        if not self.table:
            return None
        first = hash_32(self._key(client, dest))
        index = self.table[first]
        if self.weights[index] > 0 and index not in skip:
            return index
        # ip_vs_sh_get_fallback: then bucket (offset + first) % 256 + first, for each offset.
        for offset in range(TABLE_SIZE):
            index = self.table[(first + (offset + first) % TABLE_SIZE) % TABLE_SIZE]
            if self.weights[index] > 0 and index not in skip:
                return index
        return None


class DestinationHashing(_Hashing):
    name = "dh"

    def _table(self) -> tuple[int, ...]:
        n = len(self.weights)
        return tuple(i % n for i in range(TABLE_SIZE)) if n else ()

    def _key(self, client: str, dest: str) -> int:
        return ip_int(dest)


class SourceHashing(_Hashing):
    name = "sh"

    def _table(self) -> tuple[int, ...]:
        if not self.weights:
            return ()
        table: list[int] = []
        index = count = 0
        while len(table) < TABLE_SIZE:
            table.append(index)
            # ip_vs_sh_reassign: stay on a backend for `weight` buckets (one if weight 0).
            count += 1
            if count >= self.weights[index]:
                index, count = (index + 1) % len(self.weights), 0
        return tuple(table)

    def _key(self, client: str, dest: str) -> int:
        return ip_int(client)  # port 0: kubesvc never sets the sh-port flag


class Random(Scheduler):
    name = "random"

    def pick(self, client: str, dest: str, skip: Collection[int] = ()) -> int | None:
        candidates = [i for i, w in enumerate(self.weights) if w > 0 and i not in skip]
        if not candidates:
            return None
        return random.choices(candidates, [self.weights[i] for i in candidates])[0]


def new_scheduler(name: str, weights: Sequence[int], *, cursor: Cursor | None = None,
                  loads: Loads | None = None) -> Scheduler:
    """The picker for `name` (one of USERSPACE_SCHEDULERS) over backends of these weights.

    rr and wrr keep their place in `cursor`; lc, wlc, sed and nq read `loads`.
    """
    cursor = cursor if cursor is not None else LocalCursor()
    loads = loads if loads is not None else (lambda _: 0)
    match name:
        case "rr":
            return RoundRobin(weights, cursor)
        case "wrr":
            return WeightedRoundRobin(weights, cursor)
        case "lc":
            return LeastConnection(weights, loads)
        case "wlc":
            return WeightedLeastConnection(weights, loads)
        case "sed":
            return ShortestExpectedDelay(weights, loads)
        case "nq":
            return NeverQueue(weights, loads)
        case "dh":
            return DestinationHashing(weights)
        case "sh":
            return SourceHashing(weights)
        case "random":
            return Random(weights)
    raise ValueError(f"unknown scheduler {name!r} (known: {', '.join(USERSPACE_SCHEDULERS)})")
