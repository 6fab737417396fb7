"""The relay workers of a node, as the control process sees them.

The pool keeps the desired state (every port's listening socket and configuration), hands it to
each worker over its control socket, waits for the acknowledgements, and restarts a worker
that dies, giving the new one everything again: a worker's death only drops the connections
it was relaying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from kubesvc.proxy.relay.shared import Counters, PortConfig

log = logging.getLogger(__name__)

ACK_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
MAX_PAYLOAD = 64 * 1024  # per message, well under a SEQPACKET socket's buffer
MAX_FDS = 250


@dataclass
class _Worker:
    index: int
    sock: socket.socket
    process: asyncio.subprocess.Process
    acks: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None


def _messages(listen: dict[int, socket.socket], configs: Iterable[PortConfig],
              drop: Iterable[int]) -> Iterator[tuple[dict[str, list[object]], list[int]]]:
    """The update split into messages that fit: (payload without seq, attached fds)."""
    message: dict[str, list[object]] = {"listen": [], "set": [], "drop": []}
    fds: list[int] = []
    size = 0

    def full(extra: int) -> bool:
        return size + extra > MAX_PAYLOAD or len(fds) >= MAX_FDS

    for port_id, sock in listen.items():
        if full(16):
            yield message, fds
            message, fds, size = {"listen": [], "set": [], "drop": []}, [], 0
        message["listen"].append(port_id)
        fds.append(sock.fileno())
        size += 16
    for config in configs:
        data = config.to_json()
        extra = len(json.dumps(data))
        if size and full(extra):
            yield message, fds
            message, fds, size = {"listen": [], "set": [], "drop": []}, [], 0
        message["set"].append(data)
        size += extra
    message["drop"].extend(drop)
    yield message, fds


class RelayPool:
    def __init__(self, netns: str | None, workers: int) -> None:
        self.netns = netns
        self.size = workers
        self.counters = Counters.create(workers)
        self.listeners: dict[int, socket.socket] = {}
        self.configs: dict[int, PortConfig] = {}
        self._workers: dict[int, _Worker] = {}
        self._seq = 0
        self._closing = False

    async def start(self) -> None:
        for index in range(self.size):
            await self._spawn(index)

    async def _spawn(self, index: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [sys.executable, "-m", "kubesvc.proxy.relay", "--index", str(index),
                "--workers", str(self.size), "--control-fd", str(theirs.fileno()),
                "--counters-fd", str(self.counters.fd)]
        if self.netns is not None:
            argv += ["--netns", self.netns]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(), self.counters.fd))
        finally:
            theirs.close()
        ours.setblocking(False)
        worker = _Worker(index, ours, process)
        self._workers[index] = worker
        worker.reader = asyncio.create_task(self._read(worker), name=f"relay-{index}")
        if self.listeners or self.configs:
            await self._send(worker, self.listeners, self.configs.values(), ())

    async def _read(self, worker: _Worker) -> None:
        """Acknowledgements from a worker until it goes away; then a replacement."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.sock_recv(worker.sock, 4096)
            except OSError:
                data = b""
            if not data:
                break
            ack = worker.acks.pop(json.loads(data)["ack"], None)
            if ack is not None and not ack.done():
                ack.set_result(None)
        code = await worker.process.wait()
        worker.sock.close()
        for ack in worker.acks.values():
            if not ack.done():
                ack.set_exception(ConnectionError(f"relay worker {worker.index} exited"))
        if self._closing:
            return
        log.error("relay worker %d exited with %s; starting another", worker.index, code)
        self.counters.reset_worker(worker.index)
        await self._spawn(worker.index)

    async def _send(self, worker: _Worker, listen: dict[int, socket.socket],
                    configs: Iterable[PortConfig], drop: Iterable[int]) -> None:
        loop = asyncio.get_running_loop()
        waits = []
        for message, fds in _messages(listen, configs, drop):
            self._seq += 1
            payload = json.dumps({"seq": self._seq, **message}).encode()
            ack: asyncio.Future[None] = loop.create_future()
            worker.acks[self._seq] = ack
            waits.append(ack)
            while True:
                try:
                    socket.send_fds(worker.sock, [payload], fds)
                    break
                except BlockingIOError:
                    await self._writable(worker.sock)
        async with asyncio.timeout(ACK_TIMEOUT):
            for ack in waits:
                await ack

    @staticmethod
    async def _writable(sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_writer(sock.fileno(), ready.set_result, None)
        try:
            await ready
        finally:
            loop.remove_writer(sock.fileno())

    async def update(self, listen: dict[int, socket.socket], configs: list[PortConfig],
                     drop: list[int]) -> None:
        """Add listening sockets, (re)configure ports and drop ports, in every worker; return
        once all of them have applied it. The pool owns the listening sockets from here on."""
        self.listeners.update(listen)
        self.configs.update((c.id, c) for c in configs)
        for port_id in drop:
            self.configs.pop(port_id, None)
        await asyncio.gather(*(self._send(w, listen, configs, drop)
                               for w in list(self._workers.values())))
        for port_id in drop:
            sock = self.listeners.pop(port_id, None)
            if sock is not None:
                sock.close()

    async def close(self) -> None:
        """Stop the workers (closing their control sockets tells them to) and let go of
        every listening socket."""
        self._closing = True
        workers = list(self._workers.values())
        self._workers.clear()
        for worker in workers:
            if worker.reader is not None:
                worker.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader
            worker.sock.close()
        for worker in workers:
            try:
                await asyncio.wait_for(worker.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()
        self.counters.close()


def default_workers() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0)) or 1
