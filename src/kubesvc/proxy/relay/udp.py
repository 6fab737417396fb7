"""Relaying UDP: a session per client address, each with its own socket to one backend.

A client's datagrams go to its session's backend and the backend's answers go back to the
client from the Service port's socket, so the client sees them come from the address it sent
to (conntrack undoes the redirect). A session ends after `idle_timeout` without traffic in
either direction (kube-proxy's --udp-timeout, 250 ms by default), or when its backend, having
answered before, turns out unreachable (an ICMP error); the client's next datagram opens a new
one. A UDP port is served by one worker, so a client's datagrams always meet its session.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from typing import TYPE_CHECKING

from kubesvc.proxy.relay.balancer import Balancer
from kubesvc.proxy.relay.loop import IN, Timer

if TYPE_CHECKING:
    from kubesvc.proxy.relay.worker import Worker

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 0.25
DATAGRAM_BATCH = 64  # datagrams handled per wake-up before other sockets get a turn
IP_RECVORIGDSTADDR = 20  # linux/in.h; IP_ORIGDSTADDR is the same number
_ANCILLARY = socket.CMSG_SPACE(16)


class UdpPort:
    def __init__(self, worker: Worker, sock: socket.socket,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.worker = worker
        self.sock = sock
        self.fd = sock.fileno()
        self.idle_timeout = idle_timeout
        self.balancer: Balancer | None = None
        self.serving = False
        self.sessions: dict[tuple[str, int], Session] = {}

    def configure(self, balancer: Balancer, serve: bool) -> None:
        # A session whose backend left ends, as the kernel modes delete its conntrack
        # entries: UDP "connections" never finish by themselves.
        backends = {(t.ip, t.port) for t in balancer.targets}
        for session in list(self.sessions.values()):
            if session.backend() not in backends:
                session.close()
        self.balancer = balancer
        if balancer.uses_dest:  # dh needs each datagram's original destination
            self.sock.setsockopt(socket.SOL_IP, IP_RECVORIGDSTADDR, 1)
        if serve and not self.serving:
            self.worker.loop.add(self.fd, IN, self.on_readable)
        elif not serve and self.serving:
            self.worker.loop.remove(self.fd)
        self.serving = serve

    def close(self) -> None:
        if self.serving:
            self.worker.loop.remove(self.fd)
            self.serving = False
        for session in list(self.sessions.values()):
            session.close()
        self.worker.loop.close_later(self.sock)

    def _receive(self) -> tuple[int, tuple[str, int], str]:
        """One datagram into the worker's buffer: its size, sender and original destination
        (only looked up for dh)."""
        assert self.balancer is not None
        if not self.balancer.uses_dest:
            n, sender = self.sock.recvfrom_into(self.worker.buffer)
            return n, sender, ""
        n, ancillary, _, sender = self.sock.recvmsg_into([self.worker.buffer], _ANCILLARY)
        dest = ""
        for level, kind, data in ancillary:
            if level == socket.SOL_IP and kind == IP_RECVORIGDSTADDR:
                dest = socket.inet_ntoa(data[4:8])
        return n, sender, dest

    def on_readable(self, events: int) -> None:
        balancer = self.balancer
        assert balancer is not None
        for _ in range(DATAGRAM_BATCH):
            try:
                n, sender, dest = self._receive()
            except BlockingIOError:
                return
            except OSError as exc:
                log.debug("receiving on a UDP port failed: %s", exc)
                return
            session = self.sessions.get(sender)
            if session is None:
                session = Session(self, balancer, sender, dest)
            session.forward(bytes(self.worker.view[:n]))


class Session:
    """A client address and its socket to a backend.

    Until the backend first answers, the session keeps what the client sent: when an ICMP
    error shows the backend unreachable, it dials the next one and sends it all again, the
    datagram counterpart of retrying a refused connection.
    """

    __slots__ = ("answered", "balancer", "client", "dest", "fd", "index", "last", "port",
                 "sent", "sock", "timer", "tried")

    MAX_UNANSWERED = 16  # datagrams kept for a retry; past that the backend clearly works

    def __init__(self, port: UdpPort, balancer: Balancer, client: tuple[str, int],
                 dest: str) -> None:
        self.port = port
        self.balancer = balancer
        self.client = client
        self.dest = dest
        self.tried: set[int] = set()
        self.sent: list[bytes] = []
        self.answered = False
        self.sock: socket.socket | None = None
        self.fd = -1
        self.index = -1
        self.last = time.monotonic()
        port.sessions[client] = self
        self.timer: Timer = port.worker.loop.call_later(port.idle_timeout, self._check_idle)
        self._dial()

    def _dial(self) -> None:
        """Connect to the next backend the scheduler gives; end the session if none is left."""
        balancer = self.balancer
        loop = self.port.worker.loop
        while (index := balancer.choose(self.client[0], self.dest, self.tried)) is not None:
            target = balancer.targets[index]
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
            try:
                sock.connect((target.ip, target.port))
            except OSError:
                sock.close()
                self.tried.add(index)
                continue
            self.sock, self.fd, self.index = sock, sock.fileno(), index
            balancer.opened(target.slot)
            loop.add(self.fd, IN, self.on_readable)
            for data in self.sent:
                self._send(data)
                if self.sock is not sock:
                    return  # that backend failed at once too, and _send moved on
            return
        self.close()

    def backend(self) -> tuple[str, int] | None:
        if self.sock is None:
            return None
        target = self.balancer.targets[self.index]
        return (target.ip, target.port)

    def _send(self, data: bytes) -> None:
        if self.sock is None:
            return
        try:
            self.sock.send(data)
        except BlockingIOError:
            pass  # a full socket buffer drops the datagram, as a congested network would
        except OSError:
            self._unreachable()

    def forward(self, data: bytes) -> None:
        self.last = time.monotonic()
        if not self.answered and len(self.sent) < self.MAX_UNANSWERED:
            self.sent.append(data)
        self._send(data)

    def on_readable(self, events: int) -> None:
        assert self.sock is not None
        port = self.port
        for _ in range(DATAGRAM_BATCH):
            try:
                n = self.sock.recv_into(port.worker.buffer)
            except BlockingIOError:
                return
            except OSError:
                self._unreachable()
                return
            self.last = time.monotonic()
            if not self.answered:
                self.answered = True
                self.sent.clear()
            with contextlib.suppress(OSError):  # as above: UDP may drop
                port.sock.sendto(port.worker.view[:n], self.client)

    def _unreachable(self) -> None:
        self._release()
        if self.answered:
            self.close()
        else:
            self.tried.add(self.index)
            self._dial()

    def _release(self) -> None:
        """Let go of the current backend socket."""
        if self.sock is None:
            return
        loop = self.port.worker.loop
        loop.remove(self.fd)
        loop.close_later(self.sock)
        self.balancer.closed(self.balancer.targets[self.index].slot)
        self.sock = None

    def _check_idle(self) -> None:
        idle_until = self.last + self.port.idle_timeout
        if time.monotonic() >= idle_until:
            self.close()
        else:
            self.timer = self.port.worker.loop.call_later(
                idle_until - time.monotonic(), self._check_idle)

    def close(self) -> None:
        if self.port.sessions.get(self.client) is self:
            del self.port.sessions[self.client]
        self.timer.cancel()
        self._release()
