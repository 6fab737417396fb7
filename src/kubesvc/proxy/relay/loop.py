"""The relay worker's event loop: level-triggered epoll, a timer heap, nothing else.

A relay does a handful of non-blocking socket calls per event; asyncio's transports, futures
and tasks would cost more than the work itself, so the worker drives epoll directly. Sockets
closed while a batch of events is being handled are closed after the batch: their descriptor
numbers cannot be reused by a new socket that a later, stale event in the batch would then
reach.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import select
import socket
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Handler = Callable[[int], None]  # called with the epoll event mask

IN = select.EPOLLIN
OUT = select.EPOLLOUT
MAX_EVENTS = 256


class Timer:
    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class EventLoop:
    def __init__(self) -> None:
        self._epoll = select.epoll()
        self.handlers: dict[int, Handler] = {}
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._closing: list[socket.socket] = []
        self.running = True

    def add(self, fd: int, events: int, handler: Handler) -> None:
        self._epoll.register(fd, events)
        self.handlers[fd] = handler

    def modify(self, fd: int, events: int) -> None:
        self._epoll.modify(fd, events)

    def remove(self, fd: int) -> None:
        del self.handlers[fd]
        self._epoll.unregister(fd)

    def close_later(self, sock: socket.socket) -> None:
        """Close `sock` (no longer registered) once the current batch of events is handled."""
        self._closing.append(sock)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, callback)
        heapq.heappush(self._timers, (timer.deadline, next(self._sequence), timer))
        return timer

    def _timeout(self) -> float:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if not self._timers:
            return -1.0
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if not timer.cancelled:
                try:
                    timer.callback()
                except Exception:
                    log.exception("relay timer failed")

    def _close_pending(self) -> None:
        for sock in self._closing:
            sock.close()
        self._closing.clear()

    def run(self) -> None:
        handlers = self.handlers
        poll = self._epoll.poll
        while self.running:
            for fd, events in poll(self._timeout(), MAX_EVENTS):
                handler = handlers.get(fd)
                if handler is not None:
                    try:
                        handler(events)
                    except Exception:  # one connection's bug must not end all the others
                        log.exception("relay handler for descriptor %d failed", fd)
            self._close_pending()
            self._run_due_timers()
            self._close_pending()
