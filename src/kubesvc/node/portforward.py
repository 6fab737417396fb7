"""`kubectl port-forward`: SPDY/3.1 streams relayed to ports inside the pod.

kubectl first asks for a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io` and
tunnels a SPDY byte stream through its binary messages; if that is refused it falls back to
`Upgrade: SPDY/3.1` with raw SPDY on the HTTP connection. Both are served here.

For each local connection kubectl opens two streams carrying the same `requestid` and
`port`: `streamtype: error`, which it half-closes at once and reads to the end (a message
there makes kubectl log it and drop the whole session), then `streamtype: data`, the bytes
of the connection. This side dials the port in the pod and relays both ways with
half-closes, as TCP does; the error stream is ended when the pod's side is done, which is
what lets kubectl close the local connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from kubesvc.api.errors import bad_request
from kubesvc.node.spdy import MAX_DATA_CHUNK, ByteConn, RstStatus, SpdySession, SpdyStream
from kubesvc.node.streaming import error_response

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"
WEBSOCKET_PROTOCOL = "SPDY/3.1+" + PROTOCOL
# How long the first stream of a pair waits for its partner, as the kubelet's default.
STREAM_CREATION_TIMEOUT = 30.0
# Bytes of a raw SPDY connection buffered before the socket stops being read.
UPGRADED_READ_LIMIT = 256 * 1024

Dialer = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def serve_portforward(request: web.Request, dial: Dialer) -> web.StreamResponse:
    """Upgrade the request (WebSocket tunnel or plain SPDY) and forward its streams via dial."""
    ws = web.WebSocketResponse(protocols=(WEBSOCKET_PROTOCOL,), compress=False)
    ready = ws.can_prepare(request)
    if ready.ok and ready.protocol == WEBSOCKET_PROTOCOL:
        await ws.prepare(request)
        await _serve(_WebSocketConn(ws), dial, _pod_name(request))
        await ws.close()
        return ws
    if _wants_spdy(request):
        response = web.StreamResponse(
            status=101,
            headers={
                "Connection": "Upgrade",
                "Upgrade": "SPDY/3.1",
                "X-Stream-Protocol-Version": PROTOCOL,
            },
        )
        response.force_close()
        conn = _UpgradedConn(request, response)  # takes the connection's bytes from now on
        await response.prepare(request)
        await _serve(conn, dial, _pod_name(request))
        return response
    return error_response(
        bad_request(
            f"unable to upgrade connection: port-forward needs a WebSocket with subprotocol "
            f"{WEBSOCKET_PROTOCOL} or Upgrade: SPDY/3.1 with X-Stream-Protocol-Version: {PROTOCOL}"
        )
    )


def _wants_spdy(request: web.Request) -> bool:
    connection = request.headers.get("Connection", "").lower()
    upgrade = request.headers.get("Upgrade", "").lower()
    versions = {
        v.strip()
        for line in request.headers.getall("X-Stream-Protocol-Version", [])
        for v in line.split(",")
    }
    return "upgrade" in connection and "spdy/3.1" in upgrade and PROTOCOL in versions


def _pod_name(request: web.Request) -> str:
    name = request.match_info.get("name", "")
    namespace = request.match_info.get("namespace", "")
    return f"{namespace}/{name}" if namespace else name


async def _serve(conn: ByteConn, dial: Dialer, pod: str) -> None:
    forwarder = _Forwarder(dial, pod)
    try:
        await SpdySession(conn, forwarder.on_stream).run()
    finally:
        await forwarder.stop()


class _WebSocketConn:
    """SPDY bytes in binary WebSocket messages; message boundaries mean nothing."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def read(self) -> bytes:
        async for message in self._ws:
            if message.type != WSMsgType.BINARY:
                log.warning("port-forward tunnel got a %s message, closing", message.type.name)
                return b""
            if message.data:
                return bytes(message.data)
        return b""

    async def write(self, data: bytes) -> None:
        await self._ws.send_bytes(data)


class _UpgradedConn:
    """Raw SPDY on an HTTP/1.1 connection after `101 Switching Protocols`.

    aiohttp only hands over the connection for WebSocket upgrades, so this installs itself
    as the connection's payload parser (the hook aiohttp's own WebSocket support uses) and
    is fed every later byte; it pauses the socket while too much is buffered.
    """

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("connection lost before the SPDY upgrade")
        self._transport = transport
        self._response = response
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._eof = False
        self._arrived = asyncio.Event()
        # The hook is typed for aiohttp's WebSocket reader; it only calls feed_data/feed_eof.
        request.protocol.set_parser(self)  # type: ignore[arg-type]

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= UPGRADED_READ_LIMIT:
            self._transport.pause_reading()
        self._arrived.set()
        return False, b""

    def feed_eof(self) -> None:
        self._eof = True
        self._arrived.set()

    async def read(self) -> bytes:
        while not self._chunks and not self._eof:
            self._arrived.clear()
            await self._arrived.wait()
        data = b"".join(self._chunks)
        self._chunks.clear()
        if self._buffered >= UPGRADED_READ_LIMIT and not self._transport.is_closing():
            self._transport.resume_reading()
        self._buffered = 0
        return data

    async def write(self, data: bytes) -> None:
        await self._response.write(data)


@dataclass(eq=False)
class _Pair:
    request_id: str
    data: SpdyStream | None = None
    error: SpdyStream | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, kind: str, stream: SpdyStream) -> bool:
        """Place stream by its type; False if that place is taken."""
        if kind == "data" and self.data is None:
            self.data = stream
        elif kind == "error" and self.error is None:
            self.error = stream
        else:
            return False
        if self.data is not None and self.error is not None:
            self.complete.set()
        return True


class _Forwarder:
    """Pairs the streams of each forwarded connection and relays them to the pod."""

    def __init__(self, dial: Dialer, pod: str) -> None:
        self._dial = dial
        self._pod = pod
        self._pairs: dict[str, _Pair] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on_stream(self, stream: SpdyStream) -> bool:
        kind = stream.headers.get("streamtype", "")
        if kind not in ("error", "data") or not _valid_port(stream.headers.get("port", "")):
            log.warning("refusing port-forward stream with headers %s", stream.headers)
            return False
        request_id = stream.headers.get("requestid") or _legacy_request_id(stream, kind)
        pair = self._pairs.get(request_id)
        if pair is None:
            pair = self._pairs[request_id] = _Pair(request_id)
            task = asyncio.create_task(self._run(pair))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not pair.add(kind, stream):
            log.warning("duplicate %s stream for port-forward request %s", kind, request_id)
            return False
        return True

    async def stop(self) -> None:
        """The session is over: stop relays still waiting on a dial or on the pod."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, pair: _Pair) -> None:
        try:
            await asyncio.wait_for(pair.complete.wait(), STREAM_CREATION_TIMEOUT)
        except TimeoutError:
            message = f"request {pair.request_id}: timed out waiting for streams"
            log.warning("port-forward %s", message)
            if pair.data is not None:
                pair.data.reset(RstStatus.CANCEL)
            if pair.error is not None:
                await _report(pair.error, message)
            return
        finally:
            del self._pairs[pair.request_id]
        assert pair.data is not None and pair.error is not None
        await self._forward(pair.data, pair.error)

    async def _forward(self, data: SpdyStream, error: SpdyStream) -> None:
        port = int(data.headers["port"])
        try:
            reader, writer = await self._dial(port)
        except OSError as exc:
            message = f"error forwarding port {port} to pod {self._pod}: {exc}"
            log.info("%s", message)
            await _report(error, message)
            data.close()
            await _discard(data)
            return
        upstream = asyncio.create_task(_client_to_pod(data, writer))
        try:
            await _pod_to_client(reader, data)
            error.close()  # no error; its end lets kubectl close the local connection
            await upstream
        finally:
            upstream.cancel()
            writer.close()


def _valid_port(value: str) -> bool:
    return value.isdigit() and 0 < int(value) < 65536


def _legacy_request_id(stream: SpdyStream, kind: str) -> str:
    # Clients older than the requestid header open error then data on consecutive ids.
    return str(stream.id if kind == "error" else stream.id - 2)


async def _client_to_pod(data: SpdyStream, writer: asyncio.StreamWriter) -> None:
    broken = False
    while chunk := await data.read():
        if broken:
            continue  # keep consuming: an unread stream would stall the whole session
        writer.write(chunk)
        try:
            await writer.drain()
        except ConnectionError:
            broken = True
    if data.was_reset:
        writer.close()  # the client aborted: so does the connection to the pod
    elif not broken and writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()  # the client half-closed; so does the connection to the pod


async def _pod_to_client(reader: asyncio.StreamReader, data: SpdyStream) -> None:
    try:
        while chunk := await reader.read(MAX_DATA_CHUNK):
            await data.write(chunk)
    except ConnectionError:
        pass  # a reset from the pod ends this direction like an EOF; a closed stream ends it
    data.close()


async def _report(error: SpdyStream, message: str) -> None:
    try:
        await error.write(message.encode())
    except ConnectionError:
        return
    error.close()


async def _discard(stream: SpdyStream) -> None:
    while await stream.read():
        pass
