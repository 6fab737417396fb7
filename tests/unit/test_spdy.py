"""SPDY/3.1 framing, header compression and the server session's stream and flow handling."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator

import pytest

from kubesvc.node.spdy import (
    DICTIONARY,
    FLAG_FIN,
    INITIAL_WINDOW,
    MAX_DATA_CHUNK,
    SETTINGS_INITIAL_WINDOW_SIZE,
    DataFrame,
    Frame,
    FrameDecoder,
    FrameEncoder,
    GoAway,
    GoAwayStatus,
    HeaderCompressor,
    HeaderDecompressor,
    HeadersFrame,
    Ping,
    RstStatus,
    RstStream,
    Setting,
    Settings,
    SpdyProtocolError,
    SpdySession,
    SpdyStream,
    StreamClosedError,
    SynReply,
    SynStream,
    WindowUpdate,
)

# The first frame kubectl 1.37.1 sent on its first forwarded connection (captured through
# the WebSocket tunnel): SYN_STREAM 1 with streamtype=error, port=80, requestid=0.
KUBECTL_SYN_STREAM = bytes.fromhex(
    "800300010000003d0000000100000000000078f9e3c6a7c202253a48f95b044aab4c16060c0c0c9c4590"
    "d8ca04a5624603703a2c294a4dcc851635aca9a08800000000ffff"
)

ALL_FRAMES: list[Frame] = [
    DataFrame(1, b"payload"),
    DataFrame(3, b"", FLAG_FIN),
    SynStream(5, {"streamtype": "data", "port": "80", "requestid": "2"}, priority=3, slot=1),
    SynStream(7, {"multi": "a\0b"}, associated_id=5, flags=FLAG_FIN),
    SynReply(1, {}),
    SynReply(3, {"status": "200 OK"}, FLAG_FIN),
    HeadersFrame(5, {"x-extra": "1"}, FLAG_FIN),
    RstStream(9, RstStatus.CANCEL),
    Settings((Setting(SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20, 1), Setting(4, 100))),
    Ping(7),
    GoAway(11, GoAwayStatus.PROTOCOL_ERROR),
    WindowUpdate(0, 12345),
    WindowUpdate(3, 0x7FFFFFFF),
]


def test_dictionary_is_the_spdy3_one() -> None:
    assert len(DICTIONARY) == 1423
    assert zlib.adler32(DICTIONARY) == 0xE3C6A7C2


def test_frames_round_trip_fed_one_byte_at_a_time() -> None:
    encoder, decoder = FrameEncoder(), FrameDecoder()
    wire = b"".join(encoder.encode(frame) for frame in ALL_FRAMES)
    decoded: list[Frame] = []
    for i in range(len(wire)):
        decoded += decoder.feed(wire[i : i + 1])
    assert decoded == ALL_FRAMES


def test_frames_round_trip_in_one_chunk() -> None:
    encoder, decoder = FrameEncoder(), FrameDecoder()
    assert decoder.feed(b"".join(encoder.encode(f) for f in ALL_FRAMES)) == ALL_FRAMES


def test_decodes_kubectl_syn_stream() -> None:
    (frame,) = FrameDecoder().feed(KUBECTL_SYN_STREAM)
    assert frame == SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"})


def test_header_blocks_name_the_dictionary_and_share_one_context() -> None:
    compressor = HeaderCompressor()
    headers = {"streamtype": "data", "port": "8080", "requestid": "17"}
    first, second = compressor.compress(headers), compressor.compress(headers)
    # zlib header with FDICT set, then the dictionary's Adler-32, as kubectl's frame shows.
    assert first[0] == 0x78 and first[1] & 0x20
    assert first[2:6] == KUBECTL_SYN_STREAM[20:24] == (0xE3C6A7C2).to_bytes(4, "big")
    assert len(second) < len(first)  # the repeat is a back-reference into the shared window
    decompressor = HeaderDecompressor()
    assert decompressor.decompress(first) == headers
    assert decompressor.decompress(second) == headers
    with pytest.raises(SpdyProtocolError):
        HeaderDecompressor().decompress(second)  # meaningless without the first block


def test_header_block_size_is_capped() -> None:
    huge = {"x": "a" * (300 * 1024)}
    with pytest.raises(SpdyProtocolError, match="too large"):
        HeaderDecompressor().decompress(HeaderCompressor().compress(huge))


@pytest.mark.parametrize(
    "wire",
    [
        bytes.fromhex("8002000100000000"),  # SPDY/2
        bytes.fromhex("0000000000000001") + b"x",  # DATA on stream 0
        bytes.fromhex("8003000300000004") + b"\0\0\0\1",  # RST_STREAM too short
        bytes.fromhex("800300040000000c") + (2).to_bytes(4, "big") + bytes(8),  # SETTINGS count
    ],
)
def test_malformed_frames_are_protocol_errors(wire: bytes) -> None:
    with pytest.raises(SpdyProtocolError):
        FrameDecoder().feed(wire)


def test_unknown_control_frames_are_ignored() -> None:
    unknown = bytes.fromhex("8003000a00000002") + b"zz"  # CREDENTIAL, never used
    assert FrameDecoder().feed(unknown + FrameEncoder().encode(Ping(1))) == [Ping(1)]


# -- session --------------------------------------------------------------------------------


class Peer:
    """The client end of an in-memory connection to a SpdySession."""

    def __init__(self) -> None:
        self.to_server: asyncio.Queue[bytes] = asyncio.Queue()
        self.to_client: asyncio.Queue[bytes] = asyncio.Queue()
        self._encoder = FrameEncoder()
        self._decoder = FrameDecoder()
        self._pending: list[Frame] = []

    # The ByteConn the session uses.
    async def read(self) -> bytes:
        return await self.to_server.get()

    async def write(self, data: bytes) -> None:
        await self.to_client.put(data)

    def send(self, *frames: Frame) -> None:
        for frame in frames:
            self.to_server.put_nowait(self._encoder.encode(frame))

    def hang_up(self) -> None:
        self.to_server.put_nowait(b"")

    async def receive(self) -> Frame:
        while not self._pending:
            self._pending += self._decoder.feed(await self.to_client.get())
        return self._pending.pop(0)

    async def receive_data(self, stream_id: int, size: int) -> bytes:
        """Collect DATA for stream_id, skipping WINDOW_UPDATEs, until size bytes arrived."""
        got = b""
        while len(got) < size:
            frame = await self.receive()
            if isinstance(frame, WindowUpdate):
                continue
            assert isinstance(frame, DataFrame) and frame.stream_id == stream_id, frame
            got += frame.data
        return got


class Server:
    def __init__(self, accept: bool = True) -> None:
        self.peer = Peer()
        self.streams: asyncio.Queue[SpdyStream] = asyncio.Queue()
        self._accept = accept
        self.session = SpdySession(self.peer, self._on_stream)
        self.task = asyncio.create_task(self.session.run())

    def _on_stream(self, stream: SpdyStream) -> bool:
        self.streams.put_nowait(stream)
        return self._accept

    async def open(self, stream_id: int, **headers: str) -> SpdyStream:
        self.peer.send(SynStream(stream_id, headers))
        assert await self.peer.receive() == SynReply(stream_id, {})
        return await self.streams.get()

    async def stop(self) -> None:
        self.peer.hang_up()
        await self.task


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    started = Server()
    yield started
    started.task.cancel()
    await asyncio.gather(started.task, return_exceptions=True)


async def test_stream_accept_data_and_half_closes(server: Server) -> None:
    stream = await server.open(1, streamtype="data", port="80")
    assert stream.headers == {"streamtype": "data", "port": "80"}
    server.peer.send(DataFrame(1, b"hello "), DataFrame(1, b"world", FLAG_FIN))
    assert await stream.read() == b"hello "
    assert await stream.read() == b"world"
    assert await stream.read() == b""
    await stream.write(b"reply")  # the peer half-closed; this direction is still open
    stream.close()
    assert await server.peer.receive() == DataFrame(1, b"reply")
    assert await server.peer.receive() == DataFrame(1, b"", FLAG_FIN)
    with pytest.raises(StreamClosedError):
        await stream.write(b"after FIN")
    await server.stop()


async def test_refused_and_invalid_streams_are_reset() -> None:
    server = Server(accept=False)
    server.peer.send(SynStream(1, {"streamtype": "bogus"}))
    assert await server.peer.receive() == RstStream(1, RstStatus.REFUSED_STREAM)
    server.peer.send(SynStream(2, {}))  # even ids belong to the server
    assert await server.peer.receive() == RstStream(2, RstStatus.PROTOCOL_ERROR)
    server.peer.send(DataFrame(9, b"x"))  # never opened
    assert await server.peer.receive() == RstStream(9, RstStatus.INVALID_STREAM)
    await server.stop()


async def test_pings_from_the_client_are_echoed(server: Server) -> None:
    server.peer.send(Ping(2), Ping(3))  # even: an answer to a ping we never sent
    assert await server.peer.receive() == Ping(3)
    await server.stop()


async def test_peer_reset_and_hang_up_end_streams(server: Server) -> None:
    first = await server.open(1)
    second = await server.open(3)
    server.peer.send(DataFrame(3, b"unread"), RstStream(1, RstStatus.CANCEL))
    assert await first.read() == b""
    assert first.was_reset
    with pytest.raises(StreamClosedError):
        await first.write(b"x")
    await server.stop()
    assert await second.read() == b"unread"  # what arrived before the end is still there
    assert await second.read() == b""
    with pytest.raises(StreamClosedError):
        await second.write(b"x")


async def test_protocol_error_sends_goaway() -> None:
    server = Server()
    await server.open(1)
    server.peer.to_server.put_nowait(bytes.fromhex("8002000100000000"))
    assert await server.peer.receive() == GoAway(1, GoAwayStatus.PROTOCOL_ERROR)
    await server.task


async def test_without_peer_flow_control_windows_are_not_enforced(server: Server) -> None:
    """spdystream (kubectl) never sends WINDOW_UPDATE; enforcing 64 KiB would stall it."""
    stream = await server.open(1)
    payload = bytes(range(256)) * 1024  # 256 KiB, four initial windows
    await stream.write(payload)
    assert await server.peer.receive_data(1, len(payload)) == payload
    await server.stop()


async def test_windows_are_enforced_once_the_peer_announces_them(server: Server) -> None:
    server.peer.send(Settings((Setting(SETTINGS_INITIAL_WINDOW_SIZE, 1000),)))
    stream = await server.open(1)
    writer = asyncio.create_task(stream.write(b"x" * 5000))
    assert await server.peer.receive() == DataFrame(1, b"x" * 1000)
    assert not writer.done()  # the rest waits for credit
    server.peer.send(WindowUpdate(1, 2500))
    assert await server.peer.receive() == DataFrame(1, b"x" * 2500)
    server.peer.send(WindowUpdate(1, 10_000))
    assert await server.peer.receive() == DataFrame(1, b"x" * 1500)
    await writer
    await server.stop()


async def test_connection_window_limits_all_streams(server: Server) -> None:
    server.peer.send(Settings((Setting(SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20),)))
    stream = await server.open(1)
    writer = asyncio.create_task(stream.write(b"y" * (INITIAL_WINDOW + 10)))
    assert await server.peer.receive_data(1, INITIAL_WINDOW) == b"y" * INITIAL_WINDOW
    assert not writer.done()
    server.peer.send(WindowUpdate(0, 10))
    assert await server.peer.receive() == DataFrame(1, b"y" * 10)
    await writer
    await server.stop()


async def test_credit_is_granted_back_as_data_is_consumed(server: Server) -> None:
    stream = await server.open(1)
    chunk = b"z" * MAX_DATA_CHUNK
    server.peer.send(DataFrame(1, chunk), DataFrame(1, chunk))
    assert await stream.read() == chunk
    assert await stream.read() == chunk
    granted = {await server.peer.receive(), await server.peer.receive()}
    assert granted == {WindowUpdate(1, INITIAL_WINDOW // 2), WindowUpdate(0, INITIAL_WINDOW // 2)}
    await server.stop()


async def test_overrunning_peer_is_back_pressured(server: Server) -> None:
    """A peer that ignores our window is not read further until the stream drains."""
    stream = await server.open(1)
    chunk = b"w" * MAX_DATA_CHUNK
    server.peer.send(*[DataFrame(1, chunk)] * 3, Ping(5))
    for _ in range(20):
        await asyncio.sleep(0)  # let the session read all it is willing to
    assert server.peer.to_server.qsize() == 1  # the PING is still unread
    assert server.peer.to_client.empty()
    assert await stream.read() == chunk
    frames = [await server.peer.receive() for _ in range(3)]
    assert Ping(5) in frames  # reading resumed once the buffer fell back under the window
    await server.stop()
