"""Stand-ins for the DNS server's tests and benchmark: an API that informers can list and watch
from memory, and a small upstream resolver to forward to.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from kubesvc.api.resources import Resource
from kubesvc.client.informer import InformerFactory
from kubesvc.client.rest import Client

Obj = dict[str, Any]


class FakeApi:
    """Just enough of `Client` for informers: list and watch over objects held in memory.
    Objects carry their apiVersion and kind, which say where they belong."""

    def __init__(self) -> None:
        self._objects: defaultdict[tuple[str, str], dict[str, Obj]] = defaultdict(dict)
        self._watchers: defaultdict[tuple[str, str], list[asyncio.Queue[tuple[str, Obj]]]] = \
            defaultdict(list)
        self._revision = 0

    def informers(self) -> InformerFactory:
        return InformerFactory(cast(Client, self))

    def put(self, obj: Obj) -> None:
        """Create or replace `obj`; running informers see ADDED or MODIFIED."""
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        objects = self._objects[(obj["apiVersion"], obj["kind"])]
        event = "MODIFIED" if _key(obj) in objects else "ADDED"
        objects[_key(obj)] = obj
        self._send(event, obj)

    def delete(self, obj: Obj) -> None:
        self._revision += 1
        gone = self._objects[(obj["apiVersion"], obj["kind"])].pop(_key(obj))
        self._send("DELETED", gone)

    def _send(self, event: str, obj: Obj) -> None:
        for queue in self._watchers[(obj["apiVersion"], obj["kind"])]:
            queue.put_nowait((event, obj))

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str = "", field_selector: str = "") -> tuple[list[Obj], str]:
        return list(self._objects[(res.api_version, res.kind)].values()), str(self._revision)

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str = "", label_selector: str = "",
                    field_selector: str = "", timeout: int = 300
                    ) -> AsyncIterator[tuple[str, Obj]]:
        queue: asyncio.Queue[tuple[str, Obj]] = asyncio.Queue()
        watchers = self._watchers[(res.api_version, res.kind)]
        watchers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            watchers.remove(queue)


def _key(obj: Obj) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


class StubResolver:
    """An upstream resolver over UDP and TCP, answering from `records`
    ({(name, type): [rdata text]}) and NXDOMAIN with an SOA for anything else. It counts the
    questions it is asked, and truncates UDP answers beyond 512 bytes as real servers do."""

    def __init__(self, records: dict[tuple[str, str], list[str]], ttl: int = 60) -> None:
        self.records = {(dns.name.from_text(name), rdtype): rdatas
                        for (name, rdtype), rdatas in records.items()}
        self.ttl = ttl
        self.asked: list[tuple[str, str, str]] = []  # (protocol, name, type)

    def respond(self, wire: bytes, proto: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        question = query.question[0]
        self.asked.append((proto, question.name.to_text().lower(),
                           dns.rdatatype.to_text(question.rdtype)))
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        name = question.name.canonicalize()
        rdatas = self.records.get((name, dns.rdatatype.to_text(question.rdtype)))
        if rdatas:
            response.answer.append(dns.rrset.from_text_list(
                question.name, self.ttl, "IN", question.rdtype, rdatas))
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(dns.rrset.from_text(
                "test.", self.ttl, "IN", "SOA", "ns.test. admin.test. 1 60 60 60 5"))
        if proto == "tcp":
            return response.to_wire()
        try:
            return response.to_wire(max_size=512)
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC
            return response.to_wire()

    async def serve(self, udp: socket.socket, tcp: socket.socket) -> None:
        """Answer on bound sockets until cancelled (and then close them)."""
        loop = asyncio.get_running_loop()
        udp.setblocking(False)
        tcp.setblocking(False)

        def readable() -> None:
            with contextlib.suppress(BlockingIOError):
                while True:
                    data, addr = udp.recvfrom(65535)
                    reply = self.respond(data, "udp")
                    if reply is not None:
                        udp.sendto(reply, addr)

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, OSError):
                size = int.from_bytes(await reader.readexactly(2), "big")
                reply = self.respond(await reader.readexactly(size), "tcp")
                if reply is not None:
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    await writer.drain()
            writer.close()

        loop.add_reader(udp.fileno(), readable)
        server = await asyncio.start_server(connection, sock=tcp)
        try:
            await asyncio.Event().wait()
        finally:
            loop.remove_reader(udp.fileno())
            udp.close()
            server.close()
