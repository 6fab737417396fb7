"""`kubectl exec` served over WebSocket with the `v5.channel.k8s.io` subprotocol.

Every binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the final
Status, 4 terminal resize (`{"Width":..,"Height":..}`), 255 close (`[255, n]`: the client
finished sending on channel n). The exit code travels in the Status on channel 3, and the
connection is closed right after it because kubectl waits for the close before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import struct
import termios
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import WSMsgType, web
from multidict import MultiMapping

from kubesvc.api.errors import ApiError, bad_request

log = logging.getLogger(__name__)

PROTOCOL = "v5.channel.k8s.io"
STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255
READ_CHUNK = 32 * 1024
SETSID = "/usr/bin/setsid"


class ExecProcess(Protocol):
    """A command started for exec. With a tty, stdout is the terminal and stderr is None."""

    @property
    def stdout(self) -> asyncio.StreamReader: ...

    @property
    def stderr(self) -> asyncio.StreamReader | None: ...

    @property
    def stdin(self) -> asyncio.StreamWriter | None: ...

    def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int:
        """The exit code; 128+N when killed by signal N, as a shell reports it."""

    def kill(self) -> None:
        """Kill the command if it still runs, without waiting, and release its terminal."""


Spawner = Callable[[list[str], bool, bool], Awaitable[ExecProcess]]


def error_response(error: ApiError) -> web.Response:
    """Refuse a streaming request with a Kubernetes Status body, which kubectl prints."""
    return web.json_response(error.status(), status=error.code)


@dataclass(frozen=True)
class ExecOptions:
    command: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_query(cls, query: MultiMapping[str]) -> ExecOptions:
        command: list[str] = query.getall("command", [])
        if not command:
            raise bad_request("you must specify at least 1 command")
        flags = {
            name: query.get(name, "").lower() in ("true", "1")
            for name in ("stdin", "stdout", "stderr", "tty")
        }
        if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
        # A terminal has one output; Kubernetes drops stderr rather than failing.
        return cls(
            command,
            flags["stdin"],
            flags["stdout"],
            flags["stderr"] and not flags["tty"],
            flags["tty"],
        )


async def serve_exec(request: web.Request, spawn: Spawner) -> web.StreamResponse:
    """Run the request's command through spawn and stream it to the client."""
    try:
        options = ExecOptions.from_query(request.query)
    except ApiError as exc:
        return error_response(exc)
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), compress=False)
    ready = ws.can_prepare(request)
    if not ready.ok or ready.protocol != PROTOCOL:
        offered = request.headers.get("Sec-WebSocket-Protocol", "none")
        return error_response(
            bad_request(
                f"unable to upgrade connection: exec needs a WebSocket upgrade with subprotocol "
                f"{PROTOCOL} (offered: {offered})"
            )
        )
    await ws.prepare(request)
    try:
        process = await spawn(options.command, options.tty, options.stdin)
    except OSError as exc:
        await _finish(
            ws,
            ApiError(
                500,
                "InternalError",
                f"Internal error occurred: error executing command in container: {exc}",
            ).status(),
        )
        return ws
    await _ExecSession(ws, process, options).run()
    return ws


def exit_status(code: int) -> dict[str, Any]:
    """The channel-3 Status for an exit code, worded as the kubelet words it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


async def _finish(ws: web.WebSocketResponse, status: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionError):
        await ws.send_bytes(bytes([STATUS]) + json.dumps(status).encode())
    await ws.close()


class _ExecSession:
    def __init__(
        self, ws: web.WebSocketResponse, process: ExecProcess, options: ExecOptions
    ) -> None:
        self._ws = ws
        self._process = process
        self._options = options
        self._stdin = process.stdin if options.stdin else None

    async def run(self) -> None:
        process, options = self._process, self._options
        outputs = [
            asyncio.create_task(self._pump(process.stdout, STDOUT if options.stdout else None))
        ]
        if process.stderr is not None:
            outputs.append(
                asyncio.create_task(self._pump(process.stderr, STDERR if options.stderr else None))
            )
        client = asyncio.create_task(self._read_client())
        exited = asyncio.create_task(process.wait())
        # Done when the process has exited and its output has reached EOF. Like the kubelet,
        # this waits for a background child that still holds the output open.
        finished = asyncio.gather(exited, *outputs, return_exceptions=True)
        try:
            await asyncio.wait((finished, client), return_when=asyncio.FIRST_COMPLETED)
            if finished.done():
                await _finish(self._ws, exit_status(exited.result()))
            else:
                log.info("exec client went away, killing %s", options.command[0])
        finally:
            if not finished.done():
                process.kill()
            for task in (exited, *outputs, client):
                task.cancel()
            await asyncio.gather(finished, client, return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, channel: int | None) -> None:
        """Copy one output to its channel; output nobody asked for is read and dropped."""
        prefix = bytes([channel]) if channel is not None else None
        while chunk := await reader.read(READ_CHUNK):
            if prefix is not None:
                try:
                    await self._ws.send_bytes(prefix + chunk)
                except ConnectionError:
                    prefix = None  # the client is gone; keep draining so the process can exit

    async def _read_client(self) -> None:
        async for message in self._ws:
            if message.type != WSMsgType.BINARY or not message.data:
                continue
            channel, payload = message.data[0], message.data[1:]
            if channel == STDIN:
                await self._write_stdin(payload)
            elif channel == RESIZE:
                self._resize(payload)
            elif channel == CLOSE and payload[:1] == bytes([STDIN]):
                self._close_stdin()

    async def _write_stdin(self, data: bytes) -> None:
        if self._stdin is None:
            return
        try:
            self._stdin.write(data)
            await self._stdin.drain()  # back-pressure: stop reading the client meanwhile
        except ConnectionError:
            self._stdin = None  # the process closed its input; later input is discarded

    def _close_stdin(self) -> None:
        # A terminal has no end-of-file of its own (a user types ^D, which arrives as data).
        if self._stdin is not None and not self._options.tty:
            self._stdin.close()
            self._stdin = None

    def _resize(self, payload: bytes) -> None:
        if not self._options.tty:
            return
        try:
            size = json.loads(payload)
            width, height = int(size["Width"]), int(size["Height"])
        except (ValueError, KeyError, TypeError):
            log.debug("ignoring malformed resize message %r", payload)
            return
        self._process.resize(width, height)


class _PtyReaderProtocol(asyncio.StreamReaderProtocol):
    """Reads a pty master, for which the child's exit shows up as EIO instead of EOF."""

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            exc = None
        super().connection_lost(exc)


class LocalProcess:
    """An ExecProcess backed by an asyncio subprocess, on pipes or on a pty."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader | None,
        stdin: asyncio.StreamWriter | None,
        terminal: asyncio.StreamWriter | None = None,
    ) -> None:
        self._process = process
        self._stdout = stdout
        self._stderr = stderr
        self._stdin = stdin
        self._terminal = terminal  # the pty master's writer, also the handle for resizes

    @property
    def stdout(self) -> asyncio.StreamReader:
        return self._stdout

    @property
    def stderr(self) -> asyncio.StreamReader | None:
        return self._stderr

    @property
    def stdin(self) -> asyncio.StreamWriter | None:
        return self._stdin

    def resize(self, width: int, height: int) -> None:
        if self._terminal is None or self._terminal.transport.is_closing():
            return
        master = self._terminal.transport.get_extra_info("pipe")
        fcntl.ioctl(master.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        code = await self._process.wait()
        if self._terminal is not None:
            self._terminal.close()  # nothing can read the terminal's input any more
        return 128 - code if code < 0 else code

    def kill(self) -> None:
        if self._process.returncode is None:
            # The whole session: nsenter forks the command and would leave it running.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
        if self._terminal is not None:
            self._terminal.close()


async def spawn_process(
    argv: list[str],
    tty: bool,
    stdin: bool,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> LocalProcess:
    """Start argv in its own session, on a new pty (its controlling terminal) when tty."""
    if not tty:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        assert process.stdout is not None and process.stderr is not None
        return LocalProcess(process, process.stdout, process.stderr, process.stdin)
    master, slave = os.openpty()
    try:
        # setsid --ctty starts a session whose controlling terminal is the pty on fd 0, so ^C
        # raises SIGINT and a resize delivers SIGWINCH to the foreground job. (A preexec_fn
        # would do the same but is not supported by every event loop, uvloop among them.)
        process = await asyncio.create_subprocess_exec(
            SETSID, "--ctty", *argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_CHUNK, loop=loop)
    await loop.connect_read_pipe(
        lambda: _PtyReaderProtocol(reader, loop=loop), os.fdopen(master, "rb", buffering=0)
    )
    write_transport, write_protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop), loop=loop),
        os.fdopen(os.dup(master), "wb", buffering=0),
    )
    terminal = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
    return LocalProcess(process, reader, None, terminal, terminal)

