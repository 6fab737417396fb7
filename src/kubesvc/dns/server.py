"""The cluster DNS server: UDP and TCP listeners over the resolver, plus metrics.

UDP is read straight off the socket by a reader callback, a batch of datagrams per wake-up,
each answered and sent back in place: no transport or protocol objects on the hot path.
TCP follows RFC 7766: several queries per connection, replies possibly out of order, idle
connections closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Coroutine
from typing import Any

from kubesvc.client.informer import InformerFactory
from kubesvc.dns.handler import Resolver
from kubesvc.dns.index import ZoneIndex
from kubesvc.dns.metrics import Metrics, serve_http
from kubesvc.dns.upstream import Forwarder, nameservers

log = logging.getLogger(__name__)

UDP_BATCH = 64  # datagrams per wake-up, so TCP and the informers get their turn
TCP_IDLE = 10.0  # seconds a connection may sit without a complete query
MAX_TCP_CONNECTIONS = 256


class ClusterDNS:
    def __init__(self, informers: InformerFactory, *, zone: str = "cluster.local", ttl: int = 30,
                 upstreams: list[str] | None = None, upstream_netns: str | None = None) -> None:
        """`upstreams` default to the node's /etc/resolv.conf nameservers; upstream sockets
        are made in `upstream_netns` (None: this process's namespace, where those are)."""
        self.index = ZoneIndex(zone, ttl)
        self.informers = self.index.watch(informers)
        self.metrics = Metrics()
        self.forwarder = Forwarder(nameservers() if upstreams is None else upstreams,
                                   upstream_netns, self.metrics)
        self.resolver = Resolver(self.index, self.forwarder, self.metrics)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def ready(self) -> bool:
        return self.index.synced

    async def serve(self, udp_sock: socket.socket, tcp_sock: socket.socket,
                    metrics_sock: socket.socket | None) -> None:
        """Answer on the bound sockets until cancelled; closes them when done."""
        loop = asyncio.get_running_loop()
        udp_sock.setblocking(False)
        tcp_sock.setblocking(False)
        loop.add_reader(udp_sock.fileno(), self._udp_readable, udp_sock)
        tcp = await asyncio.start_server(self._tcp_client, sock=tcp_sock)
        runner = None
        try:
            if metrics_sock is not None:
                runner = await serve_http(
                    metrics_sock, lambda: self.metrics.render(len(self.forwarder.cache)),
                    lambda: self.ready)
            await asyncio.gather(*(informer.synced.wait() for informer in self.informers))
            self.index.synced = True
            log.info("cluster DNS ready for %s", self.index.zone)
            await asyncio.Event().wait()
        finally:
            loop.remove_reader(udp_sock.fileno())
            udp_sock.close()
            tcp.close()
            waiting = [*self._tasks, *self._connections]
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            self.forwarder.close()

    def _answer(self, data: bytes, proto: str,
                source: str) -> bytes | Coroutine[Any, Any, bytes] | None:
        try:
            return self.resolver.answer(data, proto, source)
        except Exception:  # a bug must cost one query, never the server
            self.metrics.panics += 1
            log.debug("dns: failed to answer %r", data, exc_info=True)
            return None

    def _spawn(self, coro: Coroutine[Any, Any, bytes]) -> asyncio.Task[bytes]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _udp_readable(self, sock: socket.socket) -> None:
        for _ in range(UDP_BATCH):
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error queued on the socket: nothing to read now
                return
            reply = self._answer(data, "udp", addr[0])
            if reply is None:
                continue
            if isinstance(reply, bytes):
                _sendto(sock, reply, addr)
            else:
                self._spawn(reply).add_done_callback(functools.partial(self._udp_done, sock, addr))

    def _udp_done(self, sock: socket.socket, addr: Any, task: asyncio.Task[bytes]) -> None:
        if not task.cancelled():
            if task.exception() is None:
                _sendto(sock, task.result(), addr)
            else:
                self.metrics.panics += 1
                log.debug("dns: failed to answer", exc_info=task.exception())

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        current = asyncio.current_task()
        if current is None or len(self._connections) >= MAX_TCP_CONNECTIONS:
            writer.close()
            return
        self._connections.add(current)
        source = str((writer.get_extra_info("peername") or ("",))[0])
        pending: set[asyncio.Task[bytes]] = set()
        try:
            while True:
                # Also bounds a client that stops reading its replies.
                async with asyncio.timeout(TCP_IDLE):
                    await writer.drain()
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                reply = self._answer(data, "tcp", source)
                if isinstance(reply, bytes):
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                elif reply is not None:
                    task = self._spawn(reply)
                    pending.add(task)
                    task.add_done_callback(functools.partial(_tcp_done, writer, pending))
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            pass  # closed, idle or reset: the connection is over
        finally:
            for task in pending:
                task.cancel()
            writer.close()
            self._connections.discard(current)


def _tcp_done(writer: asyncio.StreamWriter, pending: set[asyncio.Task[bytes]],
              task: asyncio.Task[bytes]) -> None:
    pending.discard(task)
    if not task.cancelled() and task.exception() is None and not writer.is_closing():
        reply = task.result()
        writer.write(len(reply).to_bytes(2, "big") + reply)


def _sendto(sock: socket.socket, reply: bytes, addr: Any) -> None:
    with contextlib.suppress(OSError):  # a full send buffer or a vanished client: UDP drops
        sock.sendto(reply, addr)
