"""SPDY/3.1 framing and the server side of a SPDY session, as Kubernetes clients speak it.

kubectl tunnels `port-forward` (and the legacy exec fallback) through SPDY/3.1 using
moby/spdystream. What that peer does, and what this module therefore assumes:

- Header blocks of SYN_STREAM, SYN_REPLY and HEADERS are zlib-compressed with the SPDY/3
  dictionary, one compression context per direction for the whole connection, each block
  ending on a sync flush.
- It never sends SETTINGS or WINDOW_UPDATE and ignores ours: it has no flow control and
  relies on TCP back-pressure. So this side always grants credit back as data is consumed
  (a conforming peer never stalls), honours the peer's windows only once the peer has shown
  it does flow control (a WINDOW_UPDATE or SETTINGS_INITIAL_WINDOW_SIZE), and answers a peer
  that overruns our window by not reading the connection until the stream drains, which
  is what spdystream does itself, instead of resetting the stream.
- It pings with odd ids (client side) and expects them echoed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
INITIAL_WINDOW = 64 * 1024
SETTINGS_INITIAL_WINDOW_SIZE = 7
MAX_FRAME_LENGTH = 0xFFFFFF
# Largest DATA payload this side sends; kubectl writes 32 KiB frames too (io.Copy's buffer).
MAX_DATA_CHUNK = 32 * 1024
# Cap on a decompressed header block, so a tiny frame cannot inflate into gigabytes.
MAX_HEADER_BLOCK = 256 * 1024
# Encoded frames waiting for the connection before senders are made to wait.
WRITE_HIGH_WATER = 256 * 1024
_ID_MASK = 0x7FFFFFFF


class ControlType(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9


class GoAwayStatus(enum.IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


def _length_prefixed(words: Iterable[str]) -> bytes:
    return b"".join(len(w).to_bytes(4, "big") + w.encode() for w in words)


# The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00, section 2.6.10.1):
# length-prefixed common header words followed by a run of common values.
DICTIONARY = _length_prefixed(
    (
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    )
) + (
    b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    b"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    b"401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    b"503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    b"Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    b"application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    b"gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


class SpdyProtocolError(Exception):
    """The byte stream is not valid SPDY/3; the connection cannot continue."""


class StreamClosedError(ConnectionError):
    """Writing to a stream that was reset, half-closed by us, or whose session ended."""


# Header names are lowercase on the wire; a name with several values carries them
# NUL-separated in one string, exactly as encoded.
Headers = Mapping[str, str]


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    flags: int = 0


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    associated_id: int = 0
    priority: int = 0
    slot: int = 0
    flags: int = 0


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Setting:
    id: int
    value: int
    flags: int = 0


@dataclass(frozen=True)
class Settings:
    entries: tuple[Setting, ...]
    flags: int = 0


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GoAwayStatus.OK


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = (
    DataFrame
    | SynStream
    | SynReply
    | HeadersFrame
    | RstStream
    | Settings
    | Ping
    | GoAway
    | WindowUpdate
)


def encode_header_block(headers: Headers) -> bytes:
    parts = [len(headers).to_bytes(4, "big")]
    for name, value in headers.items():
        parts.append(_length_prefixed((name.lower(), value)))
    return b"".join(parts)


def decode_header_block(block: bytes) -> dict[str, str]:
    try:
        (count,) = struct.unpack_from(">I", block)
        offset = 4
        headers: dict[str, str] = {}
        for _ in range(count):
            name, offset = _read_string(block, offset)
            value, offset = _read_string(block, offset)
            key = name.lower()
            headers[key] = f"{headers[key]}\0{value}" if key in headers else value
    except (struct.error, UnicodeDecodeError) as exc:
        raise SpdyProtocolError(f"malformed header block: {exc}") from exc
    if offset != len(block):
        raise SpdyProtocolError("trailing bytes after header block")
    return headers


def _read_string(block: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">I", block, offset)
    end = offset + 4 + length
    if end > len(block):
        raise SpdyProtocolError("header block truncated")
    return block[offset + 4 : end].decode(), end


class HeaderCompressor:
    """The sending direction's zlib context, shared by every header block on a connection."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zdict=DICTIONARY)

    def compress(self, headers: Headers) -> bytes:
        return self._zlib.compress(encode_header_block(headers)) + self._zlib.flush(
            zlib.Z_SYNC_FLUSH
        )


class HeaderDecompressor:
    """The receiving direction's zlib context; blocks must be fed in arrival order."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, data: bytes) -> dict[str, str]:
        try:
            block = self._zlib.decompress(data, MAX_HEADER_BLOCK)
        except zlib.error as exc:
            raise SpdyProtocolError(f"bad header compression: {exc}") from exc
        if self._zlib.unconsumed_tail:
            raise SpdyProtocolError("header block too large")
        return decode_header_block(block)


def _control(kind: ControlType, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_LENGTH:
        raise ValueError("frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(payload)) + payload


class FrameEncoder:
    """Serialises frames for one direction of a connection (it owns that direction's zlib)."""

    def __init__(self) -> None:
        self._headers = HeaderCompressor()

    def encode(self, frame: Frame) -> bytes:
        match frame:
            case DataFrame(stream_id, data, flags):
                if len(data) > MAX_FRAME_LENGTH:
                    raise ValueError("frame too large")
                return struct.pack(">II", stream_id & _ID_MASK, flags << 24 | len(data)) + data
            case SynStream(stream_id, headers, associated_id, priority, slot, flags):
                fixed = struct.pack(
                    ">IIBB",
                    stream_id & _ID_MASK,
                    associated_id & _ID_MASK,
                    (priority & 0x7) << 5,
                    slot,
                )
                return _control(
                    ControlType.SYN_STREAM, flags, fixed + self._headers.compress(headers)
                )
            case SynReply(stream_id, headers, flags):
                return _control(
                    ControlType.SYN_REPLY,
                    flags,
                    struct.pack(">I", stream_id) + self._headers.compress(headers),
                )
            case HeadersFrame(stream_id, headers, flags):
                return _control(
                    ControlType.HEADERS,
                    flags,
                    struct.pack(">I", stream_id) + self._headers.compress(headers),
                )
            case RstStream(stream_id, status):
                return _control(ControlType.RST_STREAM, 0, struct.pack(">II", stream_id, status))
            case Settings(entries, flags):
                body = [struct.pack(">I", len(entries))]
                body += [struct.pack(">II", s.flags << 24 | s.id, s.value) for s in entries]
                return _control(ControlType.SETTINGS, flags, b"".join(body))
            case Ping(ping_id):
                return _control(ControlType.PING, 0, struct.pack(">I", ping_id))
            case GoAway(last_good, status):
                return _control(ControlType.GOAWAY, 0, struct.pack(">II", last_good, status))
            case WindowUpdate(stream_id, delta):
                return _control(ControlType.WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")


class FrameDecoder:
    """Incremental parser: feed it bytes as they arrive, with no regard to frame boundaries."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._headers = HeaderDecompressor()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        offset = 0
        while len(self._buffer) - offset >= 8:
            length = int.from_bytes(self._buffer[offset + 5 : offset + 8], "big")
            end = offset + 8 + length
            if len(self._buffer) < end:
                break
            frame = self._decode(
                bytes(self._buffer[offset : offset + 8]), bytes(self._buffer[offset + 8 : end])
            )
            if frame is not None:
                frames.append(frame)
            offset = end
        del self._buffer[:offset]
        return frames

    def _decode(self, head: bytes, payload: bytes) -> Frame | None:
        first, flags = struct.unpack_from(">IB", head)
        if not first & 0x80000000:
            if not first:
                raise SpdyProtocolError("DATA frame for stream 0")
            return DataFrame(first, payload, flags)
        version = first >> 16 & 0x7FFF
        if version != VERSION:
            raise SpdyProtocolError(f"unsupported SPDY version {version}")
        try:
            return self._decode_control(first & 0xFFFF, flags, payload)
        except struct.error as exc:
            raise SpdyProtocolError(f"short control frame: {exc}") from exc

    def _decode_control(self, kind: int, flags: int, payload: bytes) -> Frame | None:
        match kind:
            case ControlType.SYN_STREAM:
                stream_id, assoc, priority, slot = struct.unpack_from(">IIBB", payload)
                return SynStream(
                    stream_id & _ID_MASK,
                    self._headers.decompress(payload[10:]),
                    assoc & _ID_MASK,
                    priority >> 5,
                    slot,
                    flags,
                )
            case ControlType.SYN_REPLY:
                (stream_id,) = struct.unpack_from(">I", payload)
                return SynReply(stream_id & _ID_MASK, self._headers.decompress(payload[4:]), flags)
            case ControlType.HEADERS:
                (stream_id,) = struct.unpack_from(">I", payload)
                return HeadersFrame(
                    stream_id & _ID_MASK, self._headers.decompress(payload[4:]), flags
                )
            case ControlType.RST_STREAM:
                stream_id, status = _fixed(">II", payload)
                return RstStream(stream_id & _ID_MASK, status)
            case ControlType.SETTINGS:
                (count,) = struct.unpack_from(">I", payload)
                if len(payload) != 4 + 8 * count:
                    raise SpdyProtocolError("SETTINGS length does not match its entry count")
                entries = tuple(
                    Setting(flag_id & 0xFFFFFF, value, flag_id >> 24)
                    for flag_id, value in struct.iter_unpack(">II", payload[4:])
                )
                return Settings(entries, flags)
            case ControlType.PING:
                (ping_id,) = _fixed(">I", payload)
                return Ping(ping_id)
            case ControlType.GOAWAY:
                last_good, status = _fixed(">II", payload)
                return GoAway(last_good & _ID_MASK, status)
            case ControlType.WINDOW_UPDATE:
                stream_id, delta = _fixed(">II", payload)
                return WindowUpdate(stream_id & _ID_MASK, delta & _ID_MASK)
        return None  # SPDY/3 says to ignore control frames of unknown type


def _fixed(fmt: str, payload: bytes) -> tuple[int, ...]:
    if len(payload) != struct.calcsize(fmt):
        raise SpdyProtocolError("control frame has the wrong length")
    return struct.unpack(fmt, payload)


class ByteConn(Protocol):
    """The transport under a session: a WebSocket tunnel or an upgraded HTTP connection."""

    async def read(self) -> bytes:
        """The next bytes received, or b"" once the peer has finished."""

    async def write(self, data: bytes) -> None:
        """Send bytes, waiting while the transport's buffer is full."""


class _Signal:
    """Wakes every waiter when state changes; waiters re-check their condition in a loop."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    async def wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def fire(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class SpdyStream:
    """One peer-initiated stream: read() what the peer sends, write() and close() towards it."""

    def __init__(
        self,
        session: SpdySession,
        stream_id: int,
        headers: dict[str, str],
        *,
        remote_closed: bool,
        local_closed: bool,
    ) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.remote_closed = remote_closed  # the peer sent FIN (or the stream/session ended)
        self.local_closed = local_closed  # we sent FIN (or the stream/session ended)
        self.was_reset = False
        self.send_window = session._initial_send_window
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._unacked = 0  # bytes consumed but not yet granted back with WINDOW_UPDATE
        self._changed = _Signal()

    async def read(self) -> bytes:
        """The next chunk from the peer; b"" after its FIN, a reset, or the end of the session."""
        while not self._chunks and not self.remote_closed:
            await self._changed.wait()
        if not self._chunks:
            return b""
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        self._changed.fire()  # the session's reader may be waiting for this buffer to drain
        self.session._consumed(self, len(chunk))
        return chunk

    async def write(self, data: bytes) -> None:
        """Send data in DATA frames, within the peer's windows when it enforces them."""
        view = memoryview(data)
        while view:
            size = await self.session._reserve(self, len(view))
            self.session._enqueue(DataFrame(self.id, bytes(view[:size])))
            view = view[size:]
            await self.session._drain()

    def close(self) -> None:
        """Half-close: send FIN; the peer may go on sending."""
        if self.local_closed or self.was_reset:
            return
        self.local_closed = True
        self.session._enqueue(DataFrame(self.id, b"", FLAG_FIN))
        self.session._forget_if_done(self)

    def reset(self, status: RstStatus = RstStatus.CANCEL) -> None:
        """Abort the stream in both directions."""
        if self.was_reset:
            return
        self.session._enqueue(RstStream(self.id, status))
        self._terminate(reset=True)

    def _receive(self, data: bytes, fin: bool) -> None:
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
        if fin:
            self.remote_closed = True
            self.session._forget_if_done(self)
        self._changed.fire()

    def _terminate(self, reset: bool) -> None:
        self.was_reset = self.was_reset or reset
        self.remote_closed = True
        self.local_closed = True
        if reset:
            self._chunks.clear()
            self._buffered = 0
        self.session._streams.pop(self.id, None)
        self._changed.fire()
        self.session._window_opened.fire()


# Called for each new peer stream before it is answered: True accepts it (SYN_REPLY), False
# refuses it (RST_STREAM REFUSED_STREAM). It must not block; work belongs in tasks it starts.
StreamAcceptor = Callable[[SpdyStream], bool]


class SpdySession:
    """The server side of one SPDY/3.1 connection: run() it, streams arrive via on_stream."""

    def __init__(self, conn: ByteConn, on_stream: StreamAcceptor) -> None:
        self._conn = conn
        self._on_stream = on_stream
        self._encoder = FrameEncoder()
        self._decoder = FrameDecoder()
        self._streams: dict[int, SpdyStream] = {}
        self._last_peer_stream = 0
        self._goaway_received = False
        self._closed = False
        # Flow control, see the module docstring for when the send windows are enforced.
        self._enforce_send_windows = False
        self._initial_send_window = INITIAL_WINDOW
        self._send_window = INITIAL_WINDOW
        self._unacked = 0
        self._window_opened = _Signal()
        # Outgoing frames, encoded in the order they were queued (the header compression
        # context depends on that order) and written by a single task.
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._out_changed = _Signal()

    async def run(self) -> None:
        """Serve until the peer disconnects or breaks the protocol; then end every stream."""
        writer = asyncio.create_task(self._write_loop())
        try:
            await self._read_loop()
        except SpdyProtocolError as exc:
            log.warning("SPDY protocol error, closing the connection: %s", exc)
            goaway = GoAway(self._last_peer_stream, GoAwayStatus.PROTOCOL_ERROR)
            self._enqueue(goaway)
            self._closed = True
            self._out_changed.fire()
            await writer  # flushes what is queued, the GOAWAY last
        finally:
            self._shutdown()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _read_loop(self) -> None:
        while not self._closed:
            data = await self._conn.read()
            if not data:
                return
            for frame in self._decoder.feed(data):
                await self._handle(frame)

    async def _handle(self, frame: Frame) -> None:
        match frame:
            case DataFrame(stream_id, data, flags):
                await self._on_data(stream_id, data, bool(flags & FLAG_FIN))
            case SynStream():
                self._on_syn_stream(frame)
            case HeadersFrame(stream_id, headers, flags):
                if (stream := self._streams.get(stream_id)) is not None:
                    stream.headers.update(headers)
                    stream._receive(b"", bool(flags & FLAG_FIN))
            case RstStream(stream_id):
                if (stream := self._streams.get(stream_id)) is not None:
                    stream._terminate(reset=True)
            case Settings(entries):
                for setting in entries:
                    if setting.id == SETTINGS_INITIAL_WINDOW_SIZE:
                        self._set_initial_send_window(setting.value)
            case WindowUpdate(stream_id, delta):
                self._on_window_update(stream_id, delta)
            case Ping(ping_id):
                if ping_id % 2 == 1:  # the peer's ping (clients use odd ids): echo it
                    self._enqueue(frame)
            case GoAway():
                self._goaway_received = True  # refuse new streams; existing ones finish
            case SynReply():
                pass  # this side opens no streams, so there is nothing to answer

    def _on_syn_stream(self, frame: SynStream) -> None:
        stream_id = frame.stream_id
        if stream_id == 0:
            raise SpdyProtocolError("SYN_STREAM for stream 0")
        if stream_id % 2 == 0 or stream_id <= self._last_peer_stream:
            self._enqueue(RstStream(stream_id, RstStatus.PROTOCOL_ERROR))
            return
        self._last_peer_stream = stream_id
        if self._goaway_received:
            self._enqueue(RstStream(stream_id, RstStatus.REFUSED_STREAM))
            return
        stream = SpdyStream(
            self,
            stream_id,
            dict(frame.headers),
            remote_closed=bool(frame.flags & FLAG_FIN),
            local_closed=bool(frame.flags & FLAG_UNIDIRECTIONAL),
        )
        self._streams[stream_id] = stream
        if not self._on_stream(stream):
            stream.reset(RstStatus.REFUSED_STREAM)
            return
        # Queued before the acceptor's tasks can run, so the reply precedes any DATA.
        self._enqueue(SynReply(stream_id, {}))
        self._forget_if_done(stream)

    async def _on_data(self, stream_id: int, data: bytes, fin: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id > self._last_peer_stream:
                self._enqueue(RstStream(stream_id, RstStatus.INVALID_STREAM))
            return  # late frames for a stream we already ended are dropped
        if stream.remote_closed:
            self._enqueue(RstStream(stream_id, RstStatus.STREAM_ALREADY_CLOSED))
            return
        stream._receive(data, fin)
        # A peer without flow control (spdystream) can overrun the window: stop reading the
        # connection until the consumer catches up, the back-pressure that peer relies on.
        while stream._buffered > INITIAL_WINDOW and not stream.was_reset and not self._closed:
            await stream._changed.wait()

    def _set_initial_send_window(self, value: int) -> None:
        delta = value - self._initial_send_window
        self._initial_send_window = value
        for stream in self._streams.values():
            stream.send_window += delta
        self._enforce_send_windows = True
        self._window_opened.fire()

    def _on_window_update(self, stream_id: int, delta: int) -> None:
        if stream_id == 0:
            self._send_window += delta
        elif (stream := self._streams.get(stream_id)) is not None:
            stream.send_window += delta
        self._enforce_send_windows = True
        self._window_opened.fire()

    def _consumed(self, stream: SpdyStream, size: int) -> None:
        """Give credit back once half a window has been consumed, per stream and overall."""
        stream._unacked += size
        self._unacked += size
        if stream._unacked >= INITIAL_WINDOW // 2 and not stream.remote_closed:
            self._enqueue(WindowUpdate(stream.id, stream._unacked))
            stream._unacked = 0
        if self._unacked >= INITIAL_WINDOW // 2:
            self._enqueue(WindowUpdate(0, self._unacked))
            self._unacked = 0

    async def _reserve(self, stream: SpdyStream, wanted: int) -> int:
        """How many bytes stream may send now, waiting for window if the peer enforces it."""
        while True:
            if stream.local_closed or self._closed:
                raise StreamClosedError(f"SPDY stream {stream.id} is closed")
            size = min(wanted, MAX_DATA_CHUNK)
            if not self._enforce_send_windows:
                return size
            size = min(size, stream.send_window, self._send_window)
            if size > 0:
                stream.send_window -= size
                self._send_window -= size
                return size
            await self._window_opened.wait()

    def _enqueue(self, frame: Frame) -> None:
        if self._closed:
            return
        data = self._encoder.encode(frame)
        self._out.append(data)
        self._out_bytes += len(data)
        self._out_changed.fire()

    async def _drain(self) -> None:
        while self._out_bytes > WRITE_HIGH_WATER and not self._closed:
            await self._out_changed.wait()
        if self._closed:
            raise StreamClosedError("SPDY session is closed")

    async def _write_loop(self) -> None:
        try:
            while self._out or not self._closed:
                if not self._out:
                    await self._out_changed.wait()
                    continue
                batch = b"".join(self._out)
                self._out.clear()
                self._out_bytes = 0
                self._out_changed.fire()
                await self._conn.write(batch)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("SPDY connection write failed: %s", exc)
            self._shutdown()

    def _forget_if_done(self, stream: SpdyStream) -> None:
        if stream.remote_closed and stream.local_closed:
            self._streams.pop(stream.id, None)

    def _shutdown(self) -> None:
        self._closed = True
        for stream in list(self._streams.values()):
            stream._terminate(reset=False)
        self._out_changed.fire()
        self._window_opened.fire()
