"""Answering one query: the cluster zone and reverse names from the index, else the upstreams.

The chain, in order:
  1. a name in the index (cluster zone or a known reverse name) -> its reply, or NODATA;
     an ExternalName's CNAME is followed, in the index or upstream;
  2. any other name in the cluster zone -> NXDOMAIN (NODATA for an empty non-terminal);
  3. everything else, unknown reverse names included (CoreDNS's `fallthrough in-addr.arpa
     ip6.arpa`) -> forwarded, through the cache.
Steps 1 and 2 are synchronous and return the wire reply; step 3 returns a coroutine.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Coroutine, Iterable
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from kubesvc.dns.index import ZoneIndex
from kubesvc.dns.metrics import Metrics
from kubesvc.dns.render import Rec
from kubesvc.dns.upstream import Forwarder
from kubesvc.dns.wire import (
    AA,
    ANY,
    AXFR,
    CD,
    CNAME,
    IN,
    IXFR,
    MAX_TCP,
    MAX_UDP,
    MIN_UDP,
    NOERROR,
    NXDOMAIN,
    QR,
    RA,
    RD,
    REFUSED,
    SERVFAIL,
    TC,
    Query,
    Reply,
    encode,
    parse_query,
    wire_name,
)

log = logging.getLogger(__name__)

Answer = bytes | Coroutine[Any, Any, bytes] | None
MAX_CHAIN = 8  # CNAME hops followed for an ExternalName
REPLAYED_SIZE = 10_000
NDOTS = 5  # the kubelet's
_SERVFAIL = Reply(QR | RA | SERVFAIL, 0, 0, 0, b"")
_REFUSED = Reply(QR | RA | REFUSED, 0, 0, 0, b"")


class Resolver:
    def __init__(self, index: ZoneIndex, forwarder: Forwarder, metrics: Metrics) -> None:
        self.index = index
        self.forwarder = forwarder
        self.metrics = metrics
        # Whole UDP replies by query less its id: a stub resolver repeats its queries byte for
        # byte but for the id, so most are answered without parsing. Cleared on any change;
        # rotating answers and the odd oversized query are left out.
        self._replayed: dict[bytes, tuple[bytes, int, int]] = {}
        self._generation = index.generation
        self._search_suffixes = [wire_name(f"svc.{index.zone}"), index.zone_wire]

    def answer(self, data: bytes, proto: str, source: str = "") -> Answer:
        """The reply to the packet `data` from address `source` (None: send nothing), or a
        coroutine making it."""
        start = time.perf_counter()
        if self._generation != self.index.generation:
            self._replayed.clear()
            self._generation = self.index.generation
        if proto == "udp":
            hit = self._replayed.get(data[2:])
            if hit is not None:
                self.metrics.observe(proto, hit[1], hit[2], time.perf_counter() - start)
                return data[:2] + hit[0]
        query = parse_query(data)
        if not isinstance(query, Query):
            return query
        limit = MAX_TCP if proto == "tcp" else query.limit
        entry = self.index.entries.get(query.qlow)
        if entry is not None and query.qclass in (IN, ANY) and query.qtype not in (AXFR, IXFR):
            if entry.cname is not None:
                return self._alias(query, entry.cname, proto, limit, start)
            reply = entry.replies.get(query.qtype) or entry.reply(query.qtype)
        elif self.index.in_zone(query.qlow) or entry is not None:
            reply = self._local_miss(query)
        else:
            return self._forward(query, source, proto, limit, start)
        wire = self._finish(query, reply, proto, limit, start)
        if proto == "udp" and not reply.rotate and len(data) <= MIN_UDP:
            if len(self._replayed) >= REPLAYED_SIZE:
                self._replayed.clear()
            self._replayed[data[2:]] = (wire[2:], query.qtype, reply.flags & 0x0F)
        return wire

    def _local_miss(self, query: Query) -> Reply:
        if query.qclass not in (IN, ANY) or query.qtype in (AXFR, IXFR):
            return _REFUSED  # zone transfers are not served (nor are they by CoreDNS)
        if self.index.exists(query.qlow):
            return self.index.apex.negative(len(query.qlow), NOERROR)
        # Before the first list a missing name may merely be unseen: do not let it be cached.
        if not self.index.synced:
            return _SERVFAIL
        return self.index.apex.negative(len(query.qlow), NXDOMAIN)

    def _finish(self, query: Query, reply: Reply, proto: str, limit: int, start: float) -> bytes:
        wire = encode(query, reply, limit)
        self.metrics.observe(proto, query.qtype, reply.flags & 0x0F,
                             time.perf_counter() - start)
        return wire

    async def _forward(self, query: Query, source: str, proto: str, limit: int,
                       start: float) -> bytes:
        found = self._search(query, source)
        if found is not None:
            return await self._alias(query, found, proto, limit, start)
        reply = await self.forwarder.resolve(query.qlow, query.qtype, query.qclass, query.do,
                                             bool(query.flags & CD))
        return self._finish(query, reply or _SERVFAIL, proto, limit, start)

    def _search(self, query: Query, source: str) -> str | None:
        """A cluster name that a pod's search path makes of a short name the pod sent as is:
        busybox's nslookup (a pod's `nslookup`) never applies the search path, so
        `nslookup nginx.default` would otherwise leave the cluster. The path is the one the
        kubelet writes (`<ns>.svc.<zone> svc.<zone> <zone>`, ndots:5), tried in that order,
        so a pod gets the answer it would have got by searching itself."""
        labels, i = 0, 0
        while query.qlow[i]:
            labels, i = labels + 1, i + query.qlow[i] + 1
        if not 0 < labels <= NDOTS or query.qclass not in (IN, ANY):
            return None
        suffixes = self._search_suffixes
        namespace = self.index.namespace_of(source)
        if namespace:
            suffixes = [wire_name(f"{namespace}.svc.{self.index.zone}"), *suffixes]
        for suffix in suffixes:
            entry = self.index.entries.get(query.qlow[:-1] + suffix)
            if entry is not None and entry.records:
                return entry.name
        return None

    async def _alias(self, query: Query, target: str, proto: str, limit: int,
                     start: float) -> bytes:
        """A CNAME to `target` (an ExternalName's, or a searched name), followed by the
        target's records of the asked type: from the index for a target in the zone, else
        from upstream (through the cache). Without an upstream, the CNAME alone: the client
        may still resolve it."""
        answer = [self._rrset(query.qname, (Rec(CNAME, target),))]
        authority: list[dns.rrset.RRset] = []
        rcode = NOERROR
        seen = {query.qlow}
        for _ in range(MAX_CHAIN):
            target_wire = wire_name(target)
            if query.qtype == CNAME or target_wire in seen:  # asked for the CNAME, or a loop
                break
            seen.add(target_wire)
            hop = self.index.entries.get(target_wire)
            if hop is not None and hop.cname is not None:
                answer.append(self._rrset(dns.name.from_text(target), hop.records[CNAME]))
                target = hop.cname
                continue
            if hop is not None or self.index.in_zone(target_wire):
                found = hop.records.get(query.qtype) if hop is not None else None
                if found:
                    answer.append(self._rrset(dns.name.from_text(target), found))
                else:
                    rcode = NOERROR if self.index.exists(target_wire) else NXDOMAIN
                    apex = hop.apex if hop is not None else self.index.apex
                    authority.append(self._rrset(dns.name.from_text(apex.name), (apex.soa,)))
            else:
                rcode = await self._chase_upstream(query, target_wire, answer, authority)
            break
        wire = self._render(query, answer, authority, rcode, limit)
        self.metrics.observe(proto, query.qtype, rcode, time.perf_counter() - start)
        return wire

    def _rrset(self, owner: dns.name.Name, recs: Iterable[Rec]) -> dns.rrset.RRset:
        index = self.index
        return dns.rrset.from_rdata_list(owner, index.ttl, [
            dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RdataType.make(rec.rdtype),
                                rec.text(index.serial, index.ttl)) for rec in recs])

    async def _chase_upstream(self, query: Query, target_wire: bytes,
                              answer: list[dns.rrset.RRset],
                              authority: list[dns.rrset.RRset]) -> int:
        reply = await self.forwarder.resolve(target_wire, query.qtype, IN, query.do,
                                             bool(query.flags & CD))
        if reply is None or reply.flags & 0x0F not in (NOERROR, NXDOMAIN):
            return NOERROR
        header = struct.pack(">HHHHHH", 0, reply.flags, 1, reply.an, reply.ns, reply.ar)
        question = target_wire + struct.pack(">HH", query.qtype, IN)
        try:
            message = dns.message.from_wire(header + question + reply.body)
        except dns.exception.DNSException:
            return NOERROR
        answer.extend(message.answer)
        authority.extend(message.authority)
        return message.rcode()

    def _render(self, query: Query, answer: list[dns.rrset.RRset],
                authority: list[dns.rrset.RRset], rcode: int, limit: int) -> bytes:
        response = dns.message.Message(id=int.from_bytes(query.id, "big"))
        # Authoritative for an ExternalName, not for a name searched on a pod's behalf.
        response.flags = QR | RA | (query.flags & (RD | CD)) | \
            (AA if self.index.in_zone(query.qlow) else 0)
        response.set_rcode(dns.rcode.Rcode.make(rcode))
        response.question = [dns.rrset.RRset(query.qname, dns.rdataclass.RdataClass.make(
            query.qclass), dns.rdatatype.RdataType.make(query.qtype))]
        if query.edns:
            response.use_edns(0, 0x8000 if query.do else 0, MAX_UDP)
        # Too big: without the authority section; then empty with TC, to be asked over TCP.
        for sections in ((answer, authority), (answer, [])):
            response.answer, response.authority = sections
            try:
                return response.to_wire(max_size=limit)
            except dns.exception.TooBig:
                continue
        return encode(query, Reply(response.flags & ~(RD | CD) | TC, 0, 0, 0, b""), limit)
