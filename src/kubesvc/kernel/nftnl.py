"""nf_tables over netlink, for updates too small to pay for the `nft` CLI.

Before any command, nft 1.0.6 reads every table's chains and sets from the kernel (its cache),
which at 10,000 services costs 40-60 ms: more than the change itself when all that changes is
a few map elements or a chain's rules. Those need none of that state, only names and bytes,
so they are sent here as one nfnetlink batch: applied atomically, all or nothing, as `nft -f`
would.

Only a small part of nft's language is understood (`compile_rule`): the statements the
service proxy rewrites when endpoints change. Each compiles to the expressions nft itself
generates (as `nft --debug=netlink` shows them), so `nft list` prints the rule as written;
anything else is left to the CLI. Values are written as nft writes them: each part of a
concatenation padded to 4 bytes, addresses and ports in network order, integers made by an
expression (numgen) in host order.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from kubesvc.kernel.netns import open_socket

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # errors without a copy of the request
NETLINK_EXT_ACK = 11  # errors with the kernel's message
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE = 0x1, 0x4, 0x400
NLMSG_ERROR = 2
NLMSGERR_ATTR_MSG = 1
NLM_F_ACK_TLVS = 0x200
NLA_F_NESTED = 0x8000
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 0x10, 0x11
NFNL_SUBSYS_NFTABLES = 10
NLM_F_APPEND = 0x800
NFT_MSG_NEWRULE, NFT_MSG_DELRULE = 6, 8
NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM = 12, 14
NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_EXPRESSIONS = 1, 2, 4
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFT_REG_VERDICT, NFT_REG_1, NFT_REG32_01 = 0, 1, 9
NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER = 1, 2
NFT_CMP_EQ, NFT_CMP_NEQ = 0, 1
NFT_META_L4PROTO = 16
NFT_NG_RANDOM = 1
NFT_NAT_DNAT = 1
NFPROTO_IPV4 = 2
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_DATA = 1, 2
NFTA_DATA_VALUE, NFTA_DATA_VERDICT = 1, 2
NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN = 1, 2
VERDICTS = {"drop": 0, "accept": 1, "jump": -3, "goto": -4}
FAMILIES = {"ip": socket.AF_INET}
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": socket.IPPROTO_SCTP}
ACK_TIMEOUT = 10.0


class NetlinkError(OSError):
    """The kernel refused the batch; nothing of it was applied."""


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("!I", value))


def _expr(name: str, *attrs: bytes) -> bytes:
    return _nest(NFTA_LIST_ELEM, _string(NFTA_EXPR_NAME, name), _nest(NFTA_EXPR_DATA, *attrs))


def _payload(base: int, offset: int, length: int) -> bytes:
    # NFTA_PAYLOAD_DREG, _BASE, _OFFSET, _LEN
    return _expr("payload", _u32(1, NFT_REG_1), _u32(2, base), _u32(3, offset),
                 _u32(4, length))


def _cmp(op: int, value: bytes) -> bytes:
    # NFTA_CMP_SREG, _OP, _DATA
    return _expr("cmp", _u32(1, NFT_REG_1), _u32(2, op),
                 _nest(3, _attr(NFTA_DATA_VALUE, value)))


def _l4proto(name: str) -> list[bytes]:
    # NFTA_META_DREG, _KEY
    return [_expr("meta", _u32(1, NFT_REG_1), _u32(2, NFT_META_L4PROTO)),
            _cmp(NFT_CMP_EQ, bytes([PROTOCOLS[name]]))]


def _address(field: str, op: str, text: str) -> list[bytes] | None:
    """`ip saddr|daddr [!=] address[/prefix]`: whole bytes only, as nft loads a prefix of
    them (a prefix in the middle of a byte needs a bitwise mask, left to the CLI)."""
    net = ipaddress.IPv4Network(text)
    if net.prefixlen % 8:
        return None
    size = net.prefixlen // 8
    offset = 12 if field == "saddr" else 16
    return [_payload(NFT_PAYLOAD_NETWORK_HEADER, offset, size),
            _cmp(NFT_CMP_NEQ if op else NFT_CMP_EQ, net.network_address.packed[:size])]


def _verdict_expr(word: str, chain: str) -> bytes:
    # NFTA_IMMEDIATE_DREG, _DATA
    return _expr("immediate", _u32(1, NFT_REG_VERDICT), _nest(2, _verdict(f"{word} {chain}")))


def _dnat_map(proto: str, modulus: int, offset: int, set_name: str) -> list[bytes]:
    """`meta l4proto P dnat ip to numgen random mod N offset B map @S` (S: a map from the
    number to `ip daddr . th dport`)."""
    numgen = [_u32(1, NFT_REG_1), _u32(2, modulus), _u32(3, NFT_NG_RANDOM)]
    if offset:
        numgen.append(_u32(4, offset))
    return [*_l4proto(proto),
            _expr("numgen", *numgen),
            # NFTA_LOOKUP_SET, _SREG, _DREG
            _expr("lookup", _string(1, set_name), _u32(2, NFT_REG_1), _u32(3, NFT_REG_1)),
            # NFTA_NAT_TYPE, _FAMILY, _REG_ADDR_MIN, _REG_PROTO_MIN: the address in the first
            # 32-bit register of the value, the port in the next
            _expr("nat", _u32(1, NFT_NAT_DNAT), _u32(2, NFPROTO_IPV4), _u32(3, NFT_REG_1),
                  _u32(5, NFT_REG32_01))]


_ADDRESS = re.compile(r"ip (saddr|daddr) (!= )?([\d.]+(?:/\d+)?) ?")
_PORT = re.compile(r"(tcp|udp|sctp) dport (\d+) ?")
_VERDICT = re.compile(r"(jump|goto) (\S+)$")
_DNAT_MAP = re.compile(r"meta l4proto (tcp|udp|sctp) dnat ip to numgen random mod (\d+)"
                       r"(?: offset (\d+))? map @(\S+)$")


def compile_rule(text: str) -> list[bytes] | None:
    """The expressions of `text`, or None if it uses more of nft's language than this knows:
    matches on `ip saddr|daddr`, `tcp|udp|sctp dport`, then `jump|goto <chain>`, or the
    endpoint pick `meta l4proto P dnat ip to numgen random mod N offset B map @S`."""
    if m := _DNAT_MAP.fullmatch(text):
        return _dnat_map(m[1], int(m[2]), int(m[3] or 0), m[4])
    exprs: list[bytes] = []
    rest = text
    while rest:
        if m := _ADDRESS.match(rest):
            matched = _address(m[1], m[2] or "", m[3])
            if matched is None:
                return None
            exprs += matched
        elif m := _PORT.match(rest):
            # nft's implicit dependency: the protocol before its header
            exprs += [*_l4proto(m[1]), _payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
                      _cmp(NFT_CMP_EQ, struct.pack("!H", int(m[2])))]
        elif m := _VERDICT.match(rest):
            exprs.append(_verdict_expr(m[1], m[2]))
        else:
            return None
        rest = rest[m.end():]
    return exprs


def _attr(kind: int, payload: bytes) -> bytes:
    header = struct.pack("=HH", 4 + len(payload), kind)
    return header + payload + b"\0" * (-len(payload) % 4)


def _nest(kind: int, *attrs: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(attrs))


def _string(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _part(kind: str, text: str) -> bytes:
    """One part of a key or value as its register holds it (nft's types)."""
    if kind == "ipv4_addr":
        return socket.inet_aton(text)
    if kind == "inet_proto":
        return bytes([PROTOCOLS[text]]) + b"\0" * 3
    if kind == "inet_service":
        return struct.pack("!H", int(text)) + b"\0" * 2
    if kind == "integer":  # made by an expression such as numgen: host order
        return struct.pack("=I", int(text))
    raise ValueError(f"no encoding for {kind!r}")


def encode(kinds: Sequence[str], text: str) -> bytes:
    """The bytes of `text` (`a . b . c`, as nft prints it) for a set typed `kinds`."""
    parts = text.split(" . ")
    if len(parts) != len(kinds):
        raise ValueError(f"{text!r} does not have the {len(kinds)} parts of {' . '.join(kinds)}")
    return b"".join(_part(kind, part) for kind, part in zip(kinds, parts, strict=True))


def _verdict(text: str) -> bytes:
    word, _, chain = text.partition(" ")
    if word not in VERDICTS or bool(chain) != (word in ("jump", "goto")):
        raise ValueError(f"not a verdict: {text!r}")
    attrs = [_attr(NFTA_VERDICT_CODE, struct.pack("!i", VERDICTS[word]))]
    if chain:
        attrs.append(_string(NFTA_VERDICT_CHAIN, chain))
    return _nest(NFTA_DATA_VERDICT, *attrs)


@dataclass(frozen=True)
class SetType:
    """How a set's keys, and a map's values, are written: nft type names of their parts;
    `("verdict",)` for a verdict map's values."""

    key: tuple[str, ...]
    data: tuple[str, ...] = ()

    def element(self, key: str, value: str | None) -> bytes:
        attrs = [_nest(NFTA_SET_ELEM_KEY, _attr(NFTA_DATA_VALUE, encode(self.key, key)))]
        if value is not None and self.data:
            data = (_verdict(value) if self.data == ("verdict",)
                    else _attr(NFTA_DATA_VALUE, encode(self.data, value)))
            attrs.append(_nest(NFTA_SET_ELEM_DATA, data))
        return _nest(NFTA_LIST_ELEM, *attrs)


@dataclass
class Batch:
    """Rule and element changes, applied in the order given, in one transaction."""

    family: str
    # (message type, flags, what it is about (for errors), attributes)
    messages: list[tuple[int, int, str, bytes]] = field(default_factory=list)

    def flush_chain(self, table: str, chain: str) -> None:
        self.messages.append((NFT_MSG_DELRULE, 0, f"chain {table} {chain}",
                              _string(NFTA_RULE_TABLE, table) + _string(NFTA_RULE_CHAIN, chain)))

    def add_rule(self, table: str, chain: str, exprs: Sequence[bytes]) -> None:
        self.messages.append((NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
                              f"chain {table} {chain}",
                              _string(NFTA_RULE_TABLE, table) + _string(NFTA_RULE_CHAIN, chain)
                              + _nest(NFTA_RULE_EXPRESSIONS, *exprs)))

    def delete(self, table: str, set_name: str, kind: SetType, keys: Sequence[str]) -> None:
        elements = b"".join(kind.element(key, None) for key in keys)
        self.messages.append((NFT_MSG_DELSETELEM, 0, f"set {table} {set_name}",
                              _elements(table, set_name, elements)))

    def add(self, table: str, set_name: str, kind: SetType,
            items: Sequence[tuple[str, str | None]]) -> None:
        elements = b"".join(kind.element(key, value) for key, value in items)
        self.messages.append((NFT_MSG_NEWSETELEM, NLM_F_CREATE, f"set {table} {set_name}",
                              _elements(table, set_name, elements)))

    def encode(self) -> bytes:
        family = FAMILIES[self.family]
        out = [_message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, socket.AF_UNSPEC,
                        NFNL_SUBSYS_NFTABLES, b"")]
        for seq, (msg, flags, _, payload) in enumerate(self.messages, 1):
            out.append(_message((NFNL_SUBSYS_NFTABLES << 8) | msg,
                                NLM_F_REQUEST | NLM_F_ACK | flags, seq, family, 0, payload))
        out.append(_message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, len(self.messages) + 1,
                            socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES, b""))
        return b"".join(out)


def _elements(table: str, set_name: str, elements: bytes) -> bytes:
    return (_string(NFTA_SET_ELEM_LIST_TABLE, table) + _string(NFTA_SET_ELEM_LIST_SET, set_name)
            + _nest(NFTA_SET_ELEM_LIST_ELEMENTS, elements))


def _message(kind: int, flags: int, seq: int, family: int, res_id: int,
             payload: bytes) -> bytes:
    body = struct.pack("=BBH", family, 0, socket.htons(res_id)) + payload
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def _errors(data: bytes) -> list[tuple[int, int, str]]:
    """(sequence number, errno, kernel message) of each answer in `data`; errno 0 is an ack."""
    answers = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind, flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, offset + 16)
            _, _, _, request_seq, _ = struct.unpack_from("=IHHII", data, offset + 20)
            message = ""
            if flags & NLM_F_ACK_TLVS:  # after the request's header (NETLINK_CAP_ACK)
                tlv = offset + 36
                while tlv + 4 <= offset + length:
                    size, attr = struct.unpack_from("=HH", data, tlv)
                    if attr == NLMSGERR_ATTR_MSG:
                        message = data[tlv + 4:tlv + size].rstrip(b"\0").decode()
                    tlv += (size + 3) & ~3
            answers.append((request_seq, -error, message))
        offset += (length + 3) & ~3
    return answers


async def apply(netns: str | None, batch: Batch) -> None:
    """Send `batch` to nf_tables in `netns` and wait for the kernel's verdict on it."""
    if not batch.messages:
        return
    data = batch.encode()
    sock = await open_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    with sock:
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        # The whole batch is one datagram: the send buffer must hold it.
        sock.setsockopt(socket.SOL_SOCKET, 32, 2 * len(data))  # SO_SNDBUFFORCE
        sock.bind((0, 0))
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, data)
        pending = set(range(1, len(batch.messages) + 1))
        failures = []
        async with asyncio.timeout(ACK_TIMEOUT):
            while pending:
                for seq, error, message in _errors(await loop.sock_recv(sock, 65536)):
                    pending.discard(seq)
                    if error:
                        failures.append((seq, error, message))
        if failures:
            seq, error, message = failures[0]
            _, _, subject, _ = batch.messages[seq - 1]
            detail = f": {message}" if message else ""
            raise NetlinkError(error, f"updating {subject} ({batch.family}): "
                                      f"{os.strerror(error)}{detail}")

