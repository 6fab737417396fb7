"""Writing records: a name's prebuilt reply, names compressed against its question.

Replies are rendered once per name and type when first asked for (see index.Entry), so this is
plain code rather than dnspython: it needs only the few types the cluster zone holds.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from typing import NamedTuple

from kubesvc.dns.wire import AA, AAAA, IN, QR, RA, SOA, SRV, TXT, A, Reply, wire_name

_RR = struct.Struct(">HHIH")


class Rec(NamedTuple):
    """One record's data: `value` is an address, a target name or (TXT) a string; an SOA's
    value is its zone. SRV adds port and weight (priority is always 0, as in CoreDNS)."""

    rdtype: int
    value: str
    port: int = 0
    weight: int = 0
    tier: int = 0  # PTR only: which source of reverse names (lower wins, see records.py)

    def text(self, serial: int, minimum: int) -> str:
        """The presentation form of the record's data, as dnspython reads it."""
        if self.rdtype == SRV:
            return f"0 {self.weight} {self.port} {self.value}."
        if self.rdtype == TXT:
            return f'"{self.value}"'
        if self.rdtype == SOA:
            return (f"ns.dns.{self.value}. hostmaster.{self.value}. {serial} "
                    + " ".join(map(str, (*SOA_TIMERS, minimum))))
        return self.value if self.rdtype in (A, AAAA) else self.value + "."


SOA_TIMERS = (7200, 1800, 86400)  # refresh, retry, expire: CoreDNS's


def soa_rdata(zone: str, serial: int, minimum: int) -> bytes:
    """An SOA's data as CoreDNS writes it; its minimum (negative-caching TTL) is our TTL."""
    return (wire_name(f"ns.dns.{zone}") + wire_name(f"hostmaster.{zone}")
            + struct.pack(">5I", serial, *SOA_TIMERS, minimum))


class _Writer:
    """Records written after a question, names compressed against it and each other."""

    def __init__(self, qname: bytes, ttl: int, serial: int) -> None:
        self.base = 12 + len(qname) + 4
        self.out = bytearray()
        self.ttl = ttl
        self.serial = serial
        self.offsets: dict[bytes, int] = {}
        self._remember(qname, 12, len(qname))

    def _remember(self, name: bytes, at: int, upto: int) -> None:
        i = 0
        while i < upto and name[i] and at + i < 0x4000:
            self.offsets.setdefault(name[i:], at + i)
            i += name[i] + 1

    def name(self, name: bytes, compress: bool = True) -> None:
        at, i = self.base + len(self.out), 0
        while name[i]:
            pointer = self.offsets.get(name[i:]) if compress else None
            if pointer is not None:
                self.out += name[:i] + (0xC000 | pointer).to_bytes(2, "big")
                self._remember(name, at, i)
                return
            i += name[i] + 1
        self.out += name
        if compress:  # names inside SRV data are not pointed into either
            self._remember(name, at, len(name))

    def record(self, owner: bytes, rec: Rec) -> None:
        self.name(owner)
        self.out += _RR.pack(rec.rdtype, IN, self.ttl, 0)
        start = len(self.out)
        if rec.rdtype in (A, AAAA):
            self.out += ipaddress.ip_address(rec.value).packed
        elif rec.rdtype == SRV:  # RFC 2782: the target is never compressed
            self.out += struct.pack(">HHH", 0, rec.weight, rec.port)
            self.name(wire_name(rec.value), compress=False)
        elif rec.rdtype == TXT:
            raw = rec.value.encode()
            self.out += bytes([len(raw)]) + raw
        elif rec.rdtype == SOA:
            self.out += soa_rdata(rec.value, self.serial, self.ttl)
        else:  # CNAME, PTR, NS
            self.name(wire_name(rec.value))
        self.out[start - 2:start] = (len(self.out) - start).to_bytes(2, "big")


def render(qname: bytes, answer: Sequence[Rec], additional: Sequence[tuple[bytes, Rec]] = (),
           *, ttl: int, serial: int = 0) -> Reply:
    """An authoritative reply with `answer` owned by the question's name (lower-case wire)."""
    writer = _Writer(qname, ttl, serial)
    cuts = []
    for rec in answer:
        writer.record(qname, rec)
        cuts.append(len(writer.out))
    for owner, rec in additional:
        writer.record(owner, rec)
    rotate = 0
    sizes = {b - a for a, b in zip([0, *cuts], cuts, strict=False)}
    if len(cuts) > 1 and not additional and len(sizes) == 1 and \
            {rec.rdtype for rec in answer} <= {A, AAAA}:
        rotate = sizes.pop()
    return Reply(QR | AA | RA, len(answer), 0, len(additional), bytes(writer.out), tuple(cuts),
                 rotate)


