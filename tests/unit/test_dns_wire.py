"""The DNS wire helpers and the record writer: parsing questions and EDNS0, rendering,
splicing, truncation."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

from kubesvc.dns.render import Rec, render
from kubesvc.dns.wire import (
    AAAA,
    CNAME,
    MAX_UDP,
    MIN_UDP,
    PTR,
    SOA,
    SRV,
    TC,
    TXT,
    A,
    Query,
    encode,
    is_under,
    parse_query,
    wire_name,
)

NAME = "web.default.svc.cluster.local"


def query(name: str = NAME, rdtype: str = "A", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kw).to_wire()  # type: ignore[arg-type]


def parsed(wire: bytes) -> Query:
    q = parse_query(wire)
    assert isinstance(q, Query)
    return q


def test_question_and_case() -> None:
    q = parsed(query("WeB.Default.svc.cluster.local", "SRV"))
    assert q.qlow == wire_name(NAME)
    assert q.qtype == SRV and q.qclass == 1
    assert q.question[:-4] == b"\x03WeB\x07Default\x03svc\x07cluster\x05local\x00"
    assert (q.edns, q.limit) == (0, MIN_UDP)


@pytest.mark.parametrize(("payload", "limit"), [(512, 512), (1232, 1232), (4096, MAX_UDP),
                                                (100, MIN_UDP)])
def test_edns_payload_sets_the_udp_limit(payload: int, limit: int) -> None:
    q = parsed(query(use_edns=0, payload=payload))
    assert (q.edns, q.limit, q.do) == (1, limit, False)
    assert parsed(query(use_edns=0, want_dnssec=True)).do


def test_edns_after_other_records_and_options() -> None:
    msg = dns.message.make_query(NAME, "A", use_edns=0, payload=1400,
                                 options=[dns.edns.GenericOption(10, b"12345678")])
    assert parsed(msg.to_wire()).limit == MAX_UDP
    msg.additional.append(dns.rrset.from_text("x.", 0, "IN", "A", "192.0.2.1"))
    assert parsed(msg.to_wire()).edns == 1


def test_unsupported_edns_version_is_badvers() -> None:
    reply = parse_query(query(use_edns=1))
    assert isinstance(reply, bytes)
    msg = dns.message.from_wire(reply)
    assert msg.rcode() == dns.rcode.BADVERS and msg.edns == 0


@pytest.mark.parametrize(("wire", "rcode"), [
    (b"\x12\x34\x00\x00\x00\x02" + b"\x00" * 6 + b"\x00\x00\x01\x00\x01" * 2, dns.rcode.FORMERR),
    (b"\x12\x34\x28\x00\x00\x01" + b"\x00" * 6 + b"\x00\x00\x01\x00\x01", dns.rcode.NOTIMP),
    (b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6 + b"\x03abc", dns.rcode.FORMERR),
    (b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6 + b"\xc0\x0c\x00\x01\x00\x01", dns.rcode.FORMERR),
    (b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 6 + b"\x00\x00\x01", dns.rcode.FORMERR),
])
def test_broken_queries_get_an_error(wire: bytes, rcode: int) -> None:
    reply = parse_query(wire)
    assert isinstance(reply, bytes)
    assert reply[:2] == b"\x12\x34"
    assert reply[3] & 0x0F == rcode and reply[2] & 0x80


def test_responses_and_runts_are_dropped() -> None:
    response = bytearray(query())
    response[2] |= 0x80
    assert parse_query(bytes(response)) is None
    assert parse_query(b"\x00" * 11) is None


def test_rendered_reply_is_spliced_under_any_case_of_the_name() -> None:
    recs = [Rec(A, "10.0.0.1"), Rec(A, "10.0.0.2")]
    reply = render(wire_name(NAME), recs, ttl=30)
    asked = dns.message.make_query("WEB.default.SVC.cluster.local", "A")
    msg = dns.message.from_wire(encode(parsed(asked.to_wire()), reply, 512))
    assert msg.id == asked.id and msg.flags & dns.flags.AA and msg.flags & dns.flags.RD
    assert msg.question[0].name.to_text() == "WEB.default.SVC.cluster.local."
    (rrset,) = msg.answer
    assert rrset.name == msg.question[0].name and rrset.ttl == 30
    assert sorted(r.to_text() for r in rrset) == ["10.0.0.1", "10.0.0.2"]


def test_every_record_type_renders_as_dnspython_reads_it() -> None:
    owner = "x.cluster.local"
    answer = [Rec(SRV, "web-0.web.default.svc.cluster.local", 8080, 50),
              Rec(CNAME, "other.cluster.local"), Rec(PTR, "x.default.svc.cluster.local"),
              Rec(TXT, "1.1.0"), Rec(SOA, "cluster.local"), Rec(AAAA, "fd00::1")]
    additional = [(wire_name("web-0.web.default.svc.cluster.local"), Rec(A, "10.244.0.5"))]
    reply = render(wire_name(owner), answer, additional, ttl=7, serial=42)
    msg = dns.message.from_wire(encode(parsed(query(owner, "ANY")), reply, 65535))
    texts = sorted(rr.to_text() for rr in msg.answer)
    assert texts == sorted([
        f"{owner}. 7 IN SRV 0 50 8080 web-0.web.default.svc.cluster.local.",
        f"{owner}. 7 IN CNAME other.cluster.local.",
        f"{owner}. 7 IN PTR x.default.svc.cluster.local.",
        f'{owner}. 7 IN TXT "1.1.0"',
        f"{owner}. 7 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 7",
        f"{owner}. 7 IN AAAA fd00::1",
    ])
    assert [rr.to_text() for rr in msg.additional] == [
        "web-0.web.default.svc.cluster.local. 7 IN A 10.244.0.5"]


def test_truncation_keeps_whole_answer_records_and_sets_tc() -> None:
    recs = [Rec(A, f"10.0.{i // 250}.{i % 250}") for i in range(100)]
    reply = render(wire_name(NAME), recs, ttl=30)
    q = parsed(query())
    wire = encode(q, reply, q.limit)
    assert len(wire) <= MIN_UDP and wire[2] & (TC >> 8)
    msg = dns.message.from_wire(wire)
    kept = len(msg.answer[0])
    assert 0 < kept < 100 and struct.unpack_from(">H", wire, 6)[0] == kept
    big = parsed(query(use_edns=0, payload=4096))
    assert len(encode(big, reply, big.limit)) <= MAX_UDP
    full = dns.message.from_wire(encode(q, reply, 65535))
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == 100


def test_address_answers_rotate() -> None:
    reply = render(wire_name(NAME), [Rec(A, "10.0.0.1"), Rec(A, "10.0.0.2"), Rec(A, "10.0.0.3")],
                   ttl=30)
    q = parsed(query())
    firsts = {dns.message.from_wire(encode(q, reply, 512)).answer[0][0].to_text()
              for _ in range(3)}
    assert firsts == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    assert render(wire_name(NAME), [Rec(A, "10.0.0.1")], ttl=30).rotate == 0


def test_is_under_respects_label_boundaries() -> None:
    zone = wire_name("cluster.local")
    assert is_under(wire_name("a.cluster.local"), zone)
    assert is_under(zone, zone)
    assert not is_under(wire_name("acluster.local"), zone)
    assert not is_under(b"\x09x\x07cluster\x05local\x00", zone)


def test_wire_name_rejects_what_dns_cannot_carry() -> None:
    with pytest.raises(ValueError):
        wire_name("a" * 64 + ".local")
    with pytest.raises(ValueError):
        wire_name(".".join(["abcdefgh"] * 40))
