"""DNS wire format on the hot path: parse a query's question and EDNS0, splice prebuilt replies.

A reply is kept as everything after its question (`Reply.body`). The question is always at
offset 12 and a name differs between queries only in letter case, so compression pointers in a
body stay valid for any query for the same name: answering is the query's id and question
around a cached body, with no parsing or rendering per query.
"""

from __future__ import annotations

import itertools
import struct
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

import dns.name

QR, AA, TC, RD, RA, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0010
OPCODE = 0x7800
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, AXFR, IXFR, ANY = (
    1, 2, 5, 6, 12, 16, 28, 33, 41, 252, 251, 255)
IN = 1

MIN_UDP = 512
# The largest UDP reply sent and the size advertised: the DNS flag day 2020 value, which
# avoids IP fragmentation on any path.
MAX_UDP = 1232
MAX_TCP = 65535

_H5 = struct.Struct(">HHHHH")
_COUNTS = struct.Struct(">HHHH")
_RR = struct.Struct(">HHIH")
# OPT pseudo-records we send: root owner, our payload size, version 0, with or without DO
# (RFC 3225: the DO bit is copied from the query).
OPT_PLAIN = b"\x00\x00\x29" + MAX_UDP.to_bytes(2, "big") + b"\x00\x00\x00\x00\x00\x00"
OPT_DO = b"\x00\x00\x29" + MAX_UDP.to_bytes(2, "big") + b"\x00\x00\x80\x00\x00\x00"
_OPT_BADVERS = b"\x00\x00\x29" + MAX_UDP.to_bytes(2, "big") + b"\x01\x00\x00\x00\x00\x00"
_turns = itertools.count()


class Malformed(ValueError):
    pass


class Query:
    """What answering needs from a query; `qlow` is the lower-cased wire name, the index key."""

    __slots__ = ("do", "edns", "flags", "id", "limit", "opt", "qclass", "qlow", "qtype",
                 "question")

    def __init__(self, data: bytes, flags: int, name_end: int) -> None:
        self.id = data[:2]
        self.flags = flags
        self.qlow = data[12:name_end].lower()  # only A-Z change: label lengths are below 64
        self.qtype = data[name_end] << 8 | data[name_end + 1]
        self.qclass = data[name_end + 2] << 8 | data[name_end + 3]
        self.question = data[12:name_end + 4]
        self.edns = 0
        self.do = False
        self.opt = b""
        self.limit = MIN_UDP

    @property
    def qname(self) -> dns.name.Name:
        """The name as asked (case kept), for the rare replies that are rendered per query."""
        return dns.name.from_wire(self.question, 0)[0]


@dataclass(frozen=True, slots=True)
class Reply:
    """A response less its id and question. RD and CD are copied from each query."""

    flags: int
    an: int
    ns: int
    ar: int
    body: bytes
    # len(body) after each answer record: truncation keeps the whole records that fit.
    cuts: tuple[int, ...] = ()
    # The length of each answer record when the body is nothing but A or AAAA records of the
    # question's name: such a body is rotated per query, round-robin like CoreDNS's
    # loadbalance plugin.
    rotate: int = 0


def parse_query(data: bytes) -> Query | bytes | None:
    """The query, or the error reply to send, or None to drop the packet (too short to answer,
    or itself a response: answering those could start a loop between two servers)."""
    n = len(data)
    if n < 12:
        return None
    flags = data[2] << 8 | data[3]
    if flags & QR:
        return None
    if flags & OPCODE:
        return error_reply(data, NOTIMP)
    qd, an, ns, ar = _COUNTS.unpack_from(data, 4)
    if qd != 1:
        return error_reply(data, FORMERR)
    i = 12
    while True:
        if i >= n:
            return error_reply(data, FORMERR)
        length = data[i]
        if length == 0:
            break
        if length > 63:  # a pointer (or reserved bits): a question's name is never compressed
            return error_reply(data, FORMERR)
        i += length + 1
    i += 1
    if i - 12 > 255 or i + 4 > n:
        return error_reply(data, FORMERR)
    query = Query(data, flags, i)
    if ar:
        try:
            opt = _find_opt(data, i + 4, an, ns, ar)
        except Malformed:
            return error_reply(data, FORMERR)
        if opt is not None:
            if data[opt + 5] != 0:  # EDNS version: only 0 exists
                return (query.id + _H5.pack(QR | (flags & (RD | CD)), 1, 0, 0, 1)
                        + query.question + _OPT_BADVERS)
            query.edns = 1
            query.do = bool(data[opt + 6] & 0x80)
            query.opt = OPT_DO if query.do else OPT_PLAIN
            payload = data[opt + 2] << 8 | data[opt + 3]
            query.limit = max(MIN_UDP, min(payload, MAX_UDP))
    return query


def _find_opt(data: bytes, i: int, an: int, ns: int, ar: int) -> int | None:
    """Offset of the OPT record's fixed part (type onwards) in the additional section."""
    if an == 0 and ns == 0 and ar == 1 and data[i:i + 3] == b"\x00\x00\x29":
        if i + 11 > len(data):
            raise Malformed("short OPT record")
        return i + 1  # the usual query: one OPT right after the question
    found = None
    for index, (start, rtype, _, _, _) in enumerate(walk(data, i, an + ns + ar)):
        if rtype == OPT and index >= an + ns:
            if found is not None or data[start] != 0:
                raise Malformed("second OPT record, or one not owned by the root")
            found = start + 1
    return found


def skip_name(data: bytes, i: int) -> int:
    """The offset just past the (possibly compressed) name at `i`."""
    n = len(data)
    while i < n:
        length = data[i]
        if length == 0:
            return i + 1
        if length >= 0xC0:
            if i + 2 > n:
                break
            return i + 2
        if length > 63:
            raise Malformed("reserved label type")
        i += length + 1
    raise Malformed("name runs past the message")


def walk(data: bytes, i: int, count: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(start, type, TTL offset, TTL, end) of `count` resource records starting at `i`."""
    n = len(data)
    for _ in range(count):
        start = i
        i = skip_name(data, i)
        if i + 10 > n:
            raise Malformed("record header runs past the message")
        rtype, _, ttl, rdlen = _RR.unpack_from(data, i)
        end = i + 10 + rdlen
        if end > n:
            raise Malformed("record data runs past the message")
        yield start, rtype, i + 4, ttl, end
        i = end


def encode(query: Query, reply: Reply, limit: int) -> bytes:
    """The wire response to `query`; past `limit` bytes the answer records that fit are kept,
    authority and additional dropped, and TC set so the client retries over TCP."""
    flags = reply.flags | (query.flags & (RD | CD))
    fixed = 12 + len(query.question) + len(query.opt)
    body = reply.body
    if reply.rotate:
        turn = next(_turns) % reply.an * reply.rotate
        body = body[turn:] + body[:turn]
    if fixed + len(body) <= limit:
        return b"".join((query.id, _H5.pack(flags, 1, reply.an, reply.ns, reply.ar + query.edns),
                         query.question, body, query.opt))
    kept = bisect_right(reply.cuts, limit - fixed)
    body = body[:reply.cuts[kept - 1]] if kept else b""
    return b"".join((query.id, _H5.pack(flags | TC, 1, kept, 0, query.edns), query.question,
                     body, query.opt))


def error_reply(data: bytes, rcode: int) -> bytes:
    """A bare header with `rcode`, for queries too broken or too odd to answer."""
    flags = data[2] << 8 | data[3]
    return data[:2] + _H5.pack(QR | (flags & (OPCODE | RD)) | RA | rcode, 0, 0, 0, 0)


def negative(name_len: int, apex_len: int, soa_tail: bytes, rcode: int) -> Reply:
    """NXDOMAIN or NODATA for a name of `name_len` wire bytes under an apex of `apex_len`:
    the apex's SOA in the authority section, its owner pointing into the question."""
    pointer = 0xC000 | (12 + name_len - apex_len)
    return Reply(QR | AA | RA | rcode, 0, 1, 0, pointer.to_bytes(2, "big") + soa_tail)


def split(wire: bytes, qend: int) -> Reply:
    """A full response as a Reply: its body after the question ends at `qend`."""
    flags = (wire[2] << 8 | wire[3]) & ~(RD | CD | TC)
    _, an, ns, ar = _COUNTS.unpack_from(wire, 4)
    cuts = tuple(end - qend for _, _, _, _, end in walk(wire, qend, an))
    return Reply(flags, an, ns, ar, wire[qend:], cuts)


def wire_name(name: str) -> bytes:
    """`a.b.c` as lower-case wire labels (ValueError if it cannot be a DNS name)."""
    out = bytearray()
    for label in name.lower().split("."):
        if label:
            raw = label.encode("ascii")
            if len(raw) > 63:
                raise ValueError(f"label too long in {name!r}")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"name too long: {name!r}")
    return bytes(out)


def is_under(qlow: bytes, apex: bytes) -> bool:
    """Whether wire name `qlow` is `apex` or below it (on a label boundary)."""
    if not qlow.endswith(apex):
        return False
    target, i = len(qlow) - len(apex), 0
    while i < target:
        i += qlow[i] + 1
    return i == target
