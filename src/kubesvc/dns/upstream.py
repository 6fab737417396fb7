"""Forwarding names outside the cluster's zones to the node's resolvers, with a cache.

Each upstream has one connected UDP socket (replies matched by random id, as CoreDNS's forward
plugin reuses its connections); a truncated reply is fetched again over TCP so the cache holds
whole answers. An upstream that refuses or keeps timing out is skipped for a while, and with
none left the answer is an immediate SERVFAIL: a client is never left waiting on a dead
resolver for longer than one attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import secrets
import socket
import struct
import time
from pathlib import Path

from kubesvc.dns.metrics import Metrics
from kubesvc.dns.wire import CD, OPT, OPT_DO, OPT_PLAIN, RD, SOA, TC, Malformed, Reply, split, walk
from kubesvc.kernel.netns import open_socket

log = logging.getLogger(__name__)

RESOLV_CONF = Path("/etc/resolv.conf")
ATTEMPT_TIMEOUT = 1.0  # per upstream: well inside the 5 s a glibc client waits per try
TCP_TIMEOUT = 2.0
FAILS_BEFORE_DOWN = 2  # timeouts in a row; a refusal (ICMP unreachable) counts at once
RETRY_AFTER = 2.0  # a down upstream gets one probing query per this many seconds
MAX_TTL, MAX_NEGATIVE_TTL = 3600, 1800  # CoreDNS cache's caps
CACHE_SIZE = 10_000
MAX_INFLIGHT = 1000  # distinct questions waiting on upstreams; beyond, SERVFAIL at once

Key = tuple[bytes, int, int, bool, bool]
_H = struct.Struct(">H")
_TTL = struct.Struct(">I")


def nameservers(path: Path | None = None) -> list[str]:
    """The `nameserver` entries of a resolv.conf, the node's by default (none if unreadable)."""
    try:
        text = (path or RESOLV_CONF).read_text()
    except OSError:
        return []
    return [fields[1] for line in text.splitlines()
            if len(fields := line.split()) >= 2 and fields[0] == "nameserver"]


def parse_address(spec: str) -> tuple[int, tuple[str, int] | tuple[str, int, int, int]]:
    """`1.2.3.4`, `1.2.3.4:5353`, `fd00::1`, `[fd00::1]:5353` or `fe80::1%eth0`."""
    host, port = spec, 53
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif spec.count(":") == 1:
        host, _, raw_port = spec.partition(":")
        port = int(raw_port)
    address, _, scope = host.partition("%")
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return socket.AF_INET, (str(ip), port)
    return socket.AF_INET6, (str(ip), port, 0, socket.if_nametoindex(scope) if scope else 0)


@dataclasses.dataclass(slots=True)
class Cached:
    reply: Reply
    ttls: tuple[tuple[int, int], ...]  # (offset in the body, TTL as received)
    stored: float
    expires: float
    _age: int = 0
    _aged: Reply | None = None

    def aged(self, now: float) -> Reply:
        """The reply with each TTL lowered by the whole seconds it has been cached."""
        age = int(now - self.stored)
        if age == 0:
            return self.reply
        if age != self._age or self._aged is None:
            body = bytearray(self.reply.body)
            for offset, ttl in self.ttls:
                _TTL.pack_into(body, offset, max(0, ttl - age))
            self._age, self._aged = age, dataclasses.replace(self.reply, body=bytes(body))
        return self._aged


class Upstream:
    """One resolver: a connected UDP socket with replies matched to waiters by id."""

    def __init__(self, spec: str, netns: str | None) -> None:
        self.spec = spec
        self.family, self.address = parse_address(spec)
        self.netns = netns
        self.fails = 0
        self.down_until = 0.0
        self._sock: socket.socket | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}

    async def exchange(self, query: bytes) -> bytes:
        """Send `query` (no id: one is chosen here) over UDP; its reply, over TCP if truncated."""
        sock = await self._socket()
        loop = asyncio.get_running_loop()
        qid = secrets.randbits(16)
        while qid in self._pending:
            qid = secrets.randbits(16)
        waiter: asyncio.Future[bytes] = loop.create_future()
        self._pending[qid] = waiter
        try:
            sock.send(_H.pack(qid) + query)
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                wire = await waiter
        finally:
            self._pending.pop(qid, None)
        if wire[2] & (TC >> 8):
            wire = await self._exchange_tcp(_H.pack(qid) + query)
        return wire

    async def _exchange_tcp(self, message: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        sock = await open_socket(self.netns, self.family, socket.SOCK_STREAM)
        try:
            async with asyncio.timeout(TCP_TIMEOUT):
                await loop.sock_connect(sock, self.address)
                await loop.sock_sendall(sock, _H.pack(len(message)) + message)
                size = _H.unpack(await _recv_exactly(loop, sock, 2))[0]
                return await _recv_exactly(loop, sock, size)
        finally:
            sock.close()

    async def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = await open_socket(self.netns, self.family, socket.SOCK_DGRAM)
            if self._sock is not None:  # another query made one meanwhile
                sock.close()
                return self._sock
            sock.connect(self.address)  # connected: only this address's replies, and ICMP errors
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
            self._sock = sock
        return self._sock

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # e.g. port unreachable: nobody is listening there
                for waiter in self._pending.values():
                    if not waiter.done():
                        waiter.set_exception(err)
                return
            match = self._pending.get(_H.unpack_from(data)[0]) if len(data) >= 12 else None
            if match is not None and not match.done():
                match.set_result(data)

    def failed(self, err: BaseException) -> None:
        self.fails += 1
        if isinstance(err, ConnectionRefusedError) or self.fails >= FAILS_BEFORE_DOWN:
            self.down_until = time.monotonic() + RETRY_AFTER

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise ConnectionResetError("upstream closed the connection")
        data += chunk
    return data


class Forwarder:
    def __init__(self, upstreams: list[str], netns: str | None, metrics: Metrics) -> None:
        self.upstreams = []
        for spec in upstreams:
            try:
                self.upstreams.append(Upstream(spec, netns))
            except (ValueError, OSError):
                log.warning("dns: ignoring upstream %r: not an address", spec)
        self.metrics = metrics
        self.cache: dict[Key, Cached] = {}
        self._inflight: dict[Key, asyncio.Future[Reply | None]] = {}

    async def resolve(self, qlow: bytes, qtype: int, qclass: int, do: bool,
                      cd: bool) -> Reply | None:
        """The upstreams' reply to the question, or None if none of them gave one."""
        key = (qlow, qtype, qclass, do, cd)
        now = time.monotonic()
        hit = self.cache.get(key)
        if hit is not None:
            if hit.expires > now:
                self.metrics.cache_hits += 1
                return hit.aged(now)
            del self.cache[key]
        self.metrics.cache_misses += 1
        shared = self._inflight.get(key)
        if shared is not None:  # the same question is already on its way: share its answer
            return await asyncio.shield(shared)
        if len(self._inflight) >= MAX_INFLIGHT:
            return None
        shared = asyncio.get_running_loop().create_future()
        self._inflight[key] = shared
        result: Reply | None = None
        try:
            result = await self._ask(key)
        finally:
            del self._inflight[key]
            shared.set_result(result)
        return result

    async def _ask(self, key: Key) -> Reply | None:
        qlow, qtype, qclass, do, cd = key
        question = qlow + struct.pack(">HH", qtype, qclass)
        # RD, our EDNS0 payload (DO as the client asked): the upstream recurses for us.
        query = (struct.pack(">HHHHH", RD | (CD if cd else 0), 1, 0, 0, 1) + question
                 + (OPT_DO if do else OPT_PLAIN))
        now = time.monotonic()
        for upstream in [u for u in self.upstreams if u.down_until <= now]:
            if upstream.fails >= FAILS_BEFORE_DOWN:  # a probe: others skip it meanwhile
                upstream.down_until = now + RETRY_AFTER
            try:
                wire = await upstream.exchange(query)
                cached = digest(wire, question, time.monotonic())
            except (OSError, TimeoutError, Malformed, struct.error) as err:
                log.debug("dns: upstream %s: %r", upstream.spec, err)
                self.metrics.upstream_failures += 1
                upstream.failed(err)
                continue
            upstream.fails, upstream.down_until = 0, 0.0
            if cached.expires > cached.stored:
                if len(self.cache) >= CACHE_SIZE:
                    del self.cache[next(iter(self.cache))]  # the oldest insertion
                self.cache[key] = cached
            return cached.reply
        return None

    def close(self) -> None:
        for upstream in self.upstreams:
            upstream.close()


def digest(wire: bytes, question: bytes, now: float) -> Cached:
    """An upstream's response, checked against our question, without its OPT record, with its
    TTLs located for aging and its cache lifetime (RFC 2308 for negative answers)."""
    qend = 12 + len(question)
    if (len(wire) < qend or not wire[2] & 0x80 or wire[4:6] != b"\x00\x01"
            or wire[12:qend].lower() != question):
        raise Malformed("not a reply to our question")
    an, ns, ar = struct.unpack_from(">HHH", wire, 6)
    rrs = list(walk(wire, qend, an + ns + ar))
    for index, (start, rtype, _, ttl, end) in enumerate(rrs):
        if rtype == OPT and index >= an + ns:
            if ttl >> 24:  # an extended rcode (BADCOOKIE...): not an answer to cache or relay
                raise Malformed("extended rcode from upstream")
            wire = wire[:start] + wire[end:]
            wire = wire[:10] + _H.pack(ar - 1) + wire[12:]
            return digest(wire, question, now)
    reply = split(wire, qend)
    ttls = tuple((ttl_at - qend, ttl) for _, _, ttl_at, ttl, _ in rrs)
    rcode = wire[3] & 0x0F
    lifetime = 0
    if rcode == 0 and an:
        lifetime = min(MAX_TTL, *(ttl for _, _, _, ttl, _ in rrs[:an]))
    elif rcode in (0, 3):  # NODATA, NXDOMAIN: the SOA's TTL capped by its minimum
        for _, rtype, _, ttl, end in rrs[an:an + ns]:
            if rtype == SOA:
                minimum = _TTL.unpack_from(wire, end - 4)[0]
                lifetime = min(MAX_NEGATIVE_TTL, ttl, minimum)
    return Cached(reply, ttls, now, now + lifetime)
