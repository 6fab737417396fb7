"""The userspace proxy's relay workers on loopback (no root): two real worker processes fed by
a RelayPool, backends and clients in this process on 127.0.0.0/8."""

import asyncio
import contextlib
import hashlib
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from kubesvc.proxy.relay.pool import RelayPool
from kubesvc.proxy.relay.shared import EVERY_WORKER, PortConfig, Target

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def named(name: str) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(name.encode())
        await writer.drain()
        writer.close()
    return handle


class Backends:
    """TCP servers on 127.0.0.2, 127.0.0.3, ... answering with their name."""

    def __init__(self) -> None:
        self.servers: dict[str, asyncio.Server] = {}

    async def start(self, name: str, ip: str, handler: Handler | None = None) -> Target:
        server = await asyncio.start_server(handler or await named(name), ip, 0)
        self.servers[name] = server
        port = server.sockets[0].getsockname()[1]
        return Target(ip, port, 1, len(self.servers))

    async def close(self) -> None:
        for server in self.servers.values():
            server.close()
            await server.wait_closed()


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[RelayPool]:
    relay = RelayPool(None, 2)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


@pytest_asyncio.fixture
async def backends() -> AsyncIterator[Backends]:
    found = Backends()
    try:
        yield found
    finally:
        await found.close()


async def serve(pool: RelayPool, targets: tuple[Target, ...], *, scheduler: str = "rr",
                affinity: int = 0, protocol: str = "TCP", port_id: int = 0) -> int:
    """A proxy port on 127.0.0.1 for `targets`; its port number."""
    kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if protocol == "TCP":
        sock.listen(128)
    owner = EVERY_WORKER if protocol == "TCP" and not affinity else 0
    await pool.update({port_id: sock}, [PortConfig(port_id, protocol, scheduler, affinity,
                                                   owner, targets)], [])
    port: int = sock.getsockname()[1]
    return port


async def ask(port: int, message: bytes = b"hi") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(message)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


async def test_relays_and_passes_a_half_close_on(pool: RelayPool, backends: Backends) -> None:
    async def after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client's half-close arrives
        writer.write(b"got " + data)
        await writer.drain()
        writer.close()

    port = await serve(pool, (await backends.start("a", "127.0.0.2", after_eof),))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 10) == b"got hello"
    writer.close()


async def test_large_transfers_with_a_slow_reader_keep_every_byte(
        pool: RelayPool, backends: Backends) -> None:
    payload = os.urandom(8 << 20)

    async def digest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen = hashlib.sha256()
        while chunk := await reader.read(1 << 16):
            seen.update(chunk)
        writer.write(seen.hexdigest().encode() + payload)
        await writer.drain()
        writer.close()

    port = await serve(pool, (await backends.start("a", "127.0.0.2", digest),))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    received = hashlib.sha256()
    answer = await reader.readexactly(64)
    await asyncio.sleep(0.5)  # let both socket buffers fill: the relay must stop reading
    while chunk := await asyncio.wait_for(reader.read(1 << 14), 10):
        received.update(chunk)
    writer.close()
    assert answer.decode() == hashlib.sha256(payload).hexdigest()
    assert received.digest() == hashlib.sha256(payload).digest()


async def until(condition: Callable[[], bool]) -> None:
    async def check() -> bool:
        return condition()

    await until_async(check)


async def until_async(condition: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + 10
    while not await condition():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.01)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_a_stalled_connection_costs_no_cpu(pool: RelayPool, backends: Backends) -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(b"x" * (1 << 16))
                await writer.drain()

    port = await serve(pool, (await backends.start("a", "127.0.0.2", flood),))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readexactly(1 << 16)  # then stop reading: every buffer on the way fills
    await asyncio.sleep(0.5)
    pids = [w.process.pid for w in pool._workers.values()]
    before = sum(cpu_seconds(pid) for pid in pids)
    await asyncio.sleep(1.0)
    spent = sum(cpu_seconds(pid) for pid in pids) - before
    writer.close()
    assert spent < 0.2, f"the workers spent {spent:.2f}s of CPU on a stalled connection"


async def test_refusing_backends_are_retried(pool: RelayPool, backends: Backends) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.4", 0))  # bound, never listening: connections are refused
    gone = Target("127.0.0.4", dead.getsockname()[1], 1, 9)
    live = await backends.start("a", "127.0.0.2")
    port = await serve(pool, (gone, live))
    try:
        assert [await ask(port) for _ in range(6)] == [b"a"] * 6
    finally:
        dead.close()


async def test_a_backend_that_does_not_accept_is_given_up_after_its_dial_timeout(
        pool: RelayPool, backends: Backends) -> None:
    # A listener whose backlog is full drops new SYNs: connections to it hang.
    stuck = socket.socket()
    stuck.bind(("127.0.0.5", 0))
    stuck.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(stuck.getsockname())
        fillers.append(filler)
    await asyncio.sleep(0.2)
    hung = Target("127.0.0.5", stuck.getsockname()[1], 1, 9)
    port = await serve(pool, (hung, await backends.start("a", "127.0.0.2")))
    try:
        assert [await ask(port) for _ in range(2)] == [b"a", b"a"]
    finally:
        for sock in (stuck, *fillers):
            sock.close()


async def test_the_client_is_reset_when_every_backend_failed(pool: RelayPool) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.4", 0))
    port = await serve(pool, (Target("127.0.0.4", dead.getsockname()[1], 1, 9),))
    try:
        # The reset may come before asyncio has even finished setting the connection up.
        with pytest.raises(ConnectionResetError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                await asyncio.wait_for(reader.read(), 10)
            finally:
                writer.close()
    finally:
        dead.close()


async def test_rr_alternates_across_workers(pool: RelayPool, backends: Backends) -> None:
    targets = (await backends.start("a", "127.0.0.2"), await backends.start("b", "127.0.0.3"))
    port = await serve(pool, targets)
    answers = [await ask(port) for _ in range(8)]
    assert answers == [b"a", b"b"] * 4 or answers == [b"b", b"a"] * 4, answers


async def test_lc_counts_connections_of_every_worker(pool: RelayPool,
                                                     backends: Backends) -> None:
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        writer.write(b"held")
        await writer.drain()
        await reader.read()

    targets = (await backends.start("a", "127.0.0.2", hold),
               await backends.start("b", "127.0.0.3"))
    port = await serve(pool, targets, scheduler="lc")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await reader.readexactly(4) == b"held"  # lc's first choice: a, held open
    assert pool.counters.active(targets[0].slot) == 1
    answers: Counter[bytes] = Counter()
    for _ in range(6):
        answers[await ask(port)] += 1
        # A relay ends once both sides have closed; until then it still counts for b.
        await until(lambda: pool.counters.active(targets[1].slot) == 0)
    assert answers == {b"b": 6}
    writer.close()


async def test_client_ip_affinity_holds_for_its_timeout(pool: RelayPool,
                                                        backends: Backends) -> None:
    targets = (await backends.start("a", "127.0.0.2"), await backends.start("b", "127.0.0.3"))
    port = await serve(pool, targets, affinity=1)
    first = await ask(port)
    assert [await ask(port) for _ in range(4)] == [first] * 4
    await asyncio.sleep(1.5)
    assert await ask(port) != first


async def test_new_configuration_spares_established_connections(
        pool: RelayPool, backends: Backends) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(100):
            writer.write(b"a:" + data)
            await writer.drain()
        writer.close()

    a = await backends.start("a", "127.0.0.2", echo)
    b = await backends.start("b", "127.0.0.3")
    port = await serve(pool, (a,))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"1")
    assert await reader.readexactly(3) == b"a:1"
    await pool.update({}, [PortConfig(0, "TCP", "rr", 0, EVERY_WORKER, (b,))], [])
    assert await ask(port) == b"b"
    writer.write(b"2")  # a left the endpoints; its connection goes on
    assert await reader.readexactly(3) == b"a:2"
    await pool.update({}, [], [0])

    async def refused() -> bool:  # workers close a dropped port right after acknowledging
        try:
            _, probe = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return True
        probe.close()
        return False

    await until_async(refused)
    writer.write(b"3")  # and on, after the Service port itself is gone
    assert await reader.readexactly(3) == b"a:3"
    writer.close()


async def test_a_dead_worker_is_replaced(pool: RelayPool, backends: Backends) -> None:
    port = await serve(pool, (await backends.start("a", "127.0.0.2"),))
    victim = pool._workers[0].process.pid
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pool._workers[0].process.pid == victim and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert pool._workers[0].process.pid != victim
    assert [await ask(port) for _ in range(4)] == [b"a"] * 4


def udp_echo(ip: str, name: bytes) -> socket.socket:
    """A UDP socket that answers each datagram with `name:datagram`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    sock.setblocking(False)

    def answer() -> None:
        data, sender = sock.recvfrom(100)
        sock.sendto(name + b":" + data, sender)

    asyncio.get_running_loop().add_reader(sock.fileno(), answer)
    return sock


async def test_udp_sessions_retry_and_expire(pool: RelayPool) -> None:
    loop = asyncio.get_running_loop()
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.4", 0))
    dead = Target("127.0.0.4", closed.getsockname()[1], 1, 1)
    closed.close()  # nothing listens: datagrams to it bring back port unreachable
    echo = udp_echo("127.0.0.2", b"a")
    live = Target("127.0.0.2", echo.getsockname()[1], 1, 2)
    port = await serve(pool, (dead, live), protocol="UDP")
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    try:
        for message in (b"1", b"2"):
            await loop.sock_sendto(client, message, ("127.0.0.1", port))
            data, sender = await asyncio.wait_for(loop.sock_recvfrom(client, 100), 5)
            assert data == b"a:" + message and sender == ("127.0.0.1", port)
        assert pool.counters.active(live.slot) == 1
        await asyncio.sleep(0.6)  # past the 250 ms idle timeout
        assert pool.counters.active(live.slot) == 0
    finally:
        client.close()
        loop.remove_reader(echo.fileno())
        echo.close()
