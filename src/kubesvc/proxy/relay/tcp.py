"""Relaying TCP: accept on a Service port's listening socket, connect to a backend, copy bytes.

- A backend that refuses, or does not accept within a dial timeout (kube-proxy userspace's
  250 ms, 500 ms, 1 s, 2 s), is replaced by the next one the scheduler gives; the client fails
  (with a reset) only once every backend has failed.
- Each direction stops at its end of stream and passes it on with a half-close (shutdown), so
  a client may finish sending and still read the answer; the connection closes when both
  directions have ended and nothing is left to write.
- Back-pressure: when a socket cannot take all the bytes read for it, the rest waits and the
  other socket is not read until they are written. Nothing is read that cannot be sent, and
  no socket is polled for an event it cannot use, so nothing spins.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import socket
import struct
from typing import TYPE_CHECKING

from kubesvc.proxy.relay.balancer import Balancer
from kubesvc.proxy.relay.loop import IN, OUT, EventLoop, Timer

if TYPE_CHECKING:
    from kubesvc.proxy.relay.worker import Worker

log = logging.getLogger(__name__)

DIAL_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)  # per attempt; attempts past the fourth use the last
ACCEPT_BATCH = 64  # connections accepted per wake-up before other sockets get a turn
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h: the address a redirected connection was sent to
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends a reset
_FAILED = select.EPOLLHUP | select.EPOLLERR


def original_destination(sock: socket.socket) -> str:
    """The address the client connected to before the proxy's redirect rule rewrote it."""
    try:
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    except OSError:  # not redirected (no conntrack entry): the address it reached is it
        return str(sock.getsockname()[0])
    return socket.inet_ntoa(raw[4:8])


class TcpPort:
    """A Service port's listening socket as one worker serves it."""

    def __init__(self, worker: Worker, sock: socket.socket) -> None:
        self.worker = worker
        self.sock = sock
        self.fd = sock.fileno()
        self.balancer: Balancer | None = None
        self.serving = False

    def configure(self, balancer: Balancer, serve: bool) -> None:
        self.balancer = balancer
        if serve and not self.serving:
            # EPOLLEXCLUSIVE: a connection wakes one of the workers sharing the socket.
            self.worker.loop.add(self.fd, IN | select.EPOLLEXCLUSIVE, self.on_accept)
        elif not serve and self.serving:
            self.worker.loop.remove(self.fd)
        self.serving = serve

    def close(self) -> None:
        """Stop accepting; connections already relayed go on until they end."""
        if self.serving:
            self.worker.loop.remove(self.fd)
            self.serving = False
        self.worker.loop.close_later(self.sock)

    def on_accept(self, events: int) -> None:
        balancer = self.balancer
        assert balancer is not None
        for _ in range(ACCEPT_BATCH):
            try:
                client, address = self.sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of descriptors or memory: leave it in the backlog
                log.warning("accept on port %d failed: %s", self.sock.getsockname()[1], exc)
                return
            client.setblocking(False)
            dest = original_destination(client) if balancer.uses_dest else ""
            Relay(self.worker, balancer, client, address[0], dest).connect()


class Side:
    """One socket of a relayed connection, and the bytes waiting to be written to it."""

    __slots__ = ("eof", "fd", "loop", "mask", "peer", "pending", "reading", "relay", "sock")

    def __init__(self, relay: Relay, sock: socket.socket, mask: int) -> None:
        self.relay = relay
        self.loop = relay.loop
        self.sock = sock
        self.fd = sock.fileno()
        self.mask = mask  # the events it is registered for; 0: not registered
        self.reading = True
        self.eof = False  # its peer has sent everything (read side ended)
        self.pending = b""  # read from the peer, not yet written here
        self.peer: Side = self

    def on_event(self, events: int) -> None:
        if events & OUT and self.pending:
            self._flush()
        elif self.reading:
            self._read()
        elif events & _FAILED:
            self.relay.close()

    def _read(self) -> None:
        relay = self.relay
        try:
            n = self.sock.recv_into(relay.worker.buffer)
        except BlockingIOError:
            return
        except OSError:
            relay.close()
            return
        if n == 0:
            self._end()
            return
        data = relay.worker.view[:n]
        peer = self.peer
        try:
            sent = peer.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            relay.close()
            return
        if sent < n:
            peer.pending = bytes(data[sent:])
            self.reading = False
            self.update()
            peer.update()

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.pending)
        except BlockingIOError:
            return
        except OSError:
            self.relay.close()
            return
        self.pending = self.pending[sent:]
        if self.pending:
            return
        source = self.peer
        if source.eof:
            self._shutdown()
            if self.eof:
                self.relay.close()
                return
        else:
            source.reading = True
            source.update()
        self.update()

    def _end(self) -> None:
        self.reading = False
        self.eof = True
        peer = self.peer
        if not peer.pending:
            peer._shutdown()
            if peer.eof and not self.pending:
                self.relay.close()
                return
        self.update()

    def _shutdown(self) -> None:
        # If the peer is gone, its end of the connection shows up as an event.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def update(self) -> None:
        mask = (IN if self.reading else 0) | (OUT if self.pending else 0)
        if mask == self.mask:
            return
        if not mask:
            self.loop.remove(self.fd)
        elif not self.mask:
            self.loop.add(self.fd, mask, self.on_event)
        else:
            self.loop.modify(self.fd, mask)
        self.mask = mask


class Relay:
    """A client connection and the backend it is relayed to."""

    __slots__ = ("attempt", "backend", "balancer", "client", "client_ip", "closed", "dest",
                 "index", "loop", "timer", "tried", "worker")

    def __init__(self, worker: Worker, balancer: Balancer, client: socket.socket,
                 client_ip: str, dest: str) -> None:
        self.worker = worker
        self.loop: EventLoop = worker.loop
        self.balancer = balancer
        self.client = Side(self, client, 0)
        self.backend: Side | None = None
        self.client_ip = client_ip
        self.dest = dest
        self.tried: set[int] = set()
        self.attempt = 0
        self.index = -1
        self.timer: Timer | None = None
        self.closed = False

    def connect(self) -> None:
        """Dial the next backend the scheduler gives; fail the client when there is none."""
        balancer = self.balancer
        while True:
            index = balancer.choose(self.client_ip, self.dest, self.tried)
            if index is None:
                self._fail()
                return
            target = balancer.targets[index]
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex((target.ip, target.port))
            if err in (0, errno.EINPROGRESS):
                break
            sock.close()
            self.tried.add(index)
        self.index = index
        balancer.opened(target.slot)
        self.backend = Side(self, sock, OUT)
        self.loop.add(self.backend.fd, OUT, self._on_connect)
        timeout = DIAL_TIMEOUTS[min(self.attempt, len(DIAL_TIMEOUTS) - 1)]
        self.timer = self.loop.call_later(timeout, self._retry)

    def _on_connect(self, events: int) -> None:
        backend = self.backend
        assert backend is not None and self.timer is not None
        if backend.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._retry()
            return
        self.timer.cancel()
        client = self.client
        client.peer, backend.peer = backend, client
        self.loop.handlers[backend.fd] = backend.on_event
        backend.update()
        client.update()
        # The request is usually there already: relay it now rather than after a poll.
        client._read()

    def _retry(self) -> None:
        """The backend refused, failed or timed out: forget it and dial another."""
        backend = self.backend
        assert backend is not None and self.timer is not None
        self.timer.cancel()
        self.loop.remove(backend.fd)
        self.loop.close_later(backend.sock)
        self.balancer.closed(self.balancer.targets[self.index].slot)
        self.backend = None
        self.tried.add(self.index)
        self.attempt += 1
        self.connect()

    def _fail(self) -> None:
        self.closed = True
        sock = self.client.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        self.loop.close_later(sock)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        loop = self.loop
        for side in (self.client, self.backend):
            assert side is not None
            if side.mask:
                loop.remove(side.fd)
                side.mask = 0
            loop.close_later(side.sock)
        self.balancer.closed(self.balancer.targets[self.index].slot)
