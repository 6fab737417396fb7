"""`kubectl exec` and `kubectl port-forward` (the real kubectl 1.37) against the node agent's
streaming handlers, mounted at the Kubernetes paths next to a fake API that answers only
what kubectl asks first: aggregated discovery and GET of the pod."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from kubesvc.node.portforward import serve_portforward
from kubesvc.node.streaming import ExecProcess, LocalProcess, serve_exec, spawn_process

KUBECTL = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kubectl"
if not KUBECTL.exists():
    pytest.fail(f"the real kubectl is needed at {KUBECTL}", pytrace=False)

DISCOVERY_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
POD_PATH = "/api/v1/namespaces/{namespace}/pods/{name}"
# Hang guards only; nothing here asserts how fast anything is.
GUARD = 120.0


@dataclass
class Cluster:
    """The test server's state, and the kubectl environment pointing at it."""

    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    refuse_websocket_portforward: bool = False
    resizes: asyncio.Queue[tuple[int, int]] = field(default_factory=asyncio.Queue)
    spawned: asyncio.Queue[LocalProcess] = field(default_factory=asyncio.Queue)
    portforward_sessions: int = 0
    sessions_done: asyncio.Event = field(default_factory=asyncio.Event)

    async def kubectl(self, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            str(KUBECTL),
            *args,
            env=self.env,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin), GUARD)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


class RecordingProcess:
    """Wraps the real process handle to let the test see the resizes the server applied."""

    def __init__(self, inner: LocalProcess, resizes: asyncio.Queue[tuple[int, int]]) -> None:
        self._inner = inner
        self._resizes = resizes
        self.stdout = inner.stdout
        self.stderr = inner.stderr
        self.stdin = inner.stdin

    def resize(self, width: int, height: int) -> None:
        self._inner.resize(width, height)
        self._resizes.put_nowait((width, height))

    async def wait(self) -> int:
        return await self._inner.wait()

    def kill(self) -> None:
        self._inner.kill()


def make_app(cluster: Cluster) -> web.Application:
    async def discovery_core(_: web.Request) -> web.Response:
        body = {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "items": [
                {
                    "versions": [
                        {
                            "version": "v1",
                            "resources": [
                                {
                                    "resource": "pods",
                                    "responseKind": {"kind": "Pod"},
                                    "scope": "Namespaced",
                                    "verbs": ["get", "list"],
                                }
                            ],
                        }
                    ]
                }
            ],
        }
        return web.Response(
            text=json.dumps(body), content_type=None, headers={"Content-Type": DISCOVERY_TYPE}
        )

    async def discovery_groups(_: web.Request) -> web.Response:
        body = {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "items": [],
        }
        return web.Response(
            text=json.dumps(body), content_type=None, headers={"Content-Type": DISCOVERY_TYPE}
        )

    async def get_pod(request: web.Request) -> web.Response:
        info = request.match_info
        return web.json_response(
            {
                "kind": "Pod",
                "apiVersion": "v1",
                "metadata": {"name": info["name"], "namespace": info["namespace"]},
                "spec": {"containers": [{"name": "c"}]},
                "status": {"phase": "Running"},
            }
        )

    async def spawn(argv: list[str], tty: bool, stdin: bool) -> ExecProcess:
        process = await spawn_process(argv, tty, stdin)
        cluster.spawned.put_nowait(process)
        return RecordingProcess(process, cluster.resizes)

    async def exec_handler(request: web.Request) -> web.StreamResponse:
        return await serve_exec(request, spawn)

    async def dial(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    async def portforward_handler(request: web.Request) -> web.StreamResponse:
        if cluster.refuse_websocket_portforward and request.headers.get("Upgrade") == "websocket":
            raise web.HTTPBadRequest(text="websocket refused by the test")
        cluster.portforward_sessions += 1
        cluster.sessions_done.clear()
        try:
            return await serve_portforward(request, dial)
        finally:
            cluster.portforward_sessions -= 1
            if not cluster.portforward_sessions:
                cluster.sessions_done.set()

    app = web.Application()
    app.router.add_get("/api", discovery_core)
    app.router.add_get("/apis", discovery_groups)
    app.router.add_get(POD_PATH, get_pod)
    app.router.add_get(POD_PATH + "/exec", exec_handler)
    app.router.add_route("*", POD_PATH + "/portforward", portforward_handler)
    return app


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    state = Cluster()
    runner = web.AppRunner(make_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "t",
                "clusters": [{"name": "t", "cluster": {"server": state.url}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [
                    {"name": "t", "context": {"cluster": "t", "user": "u", "namespace": "default"}}
                ],
            }
        )
    )
    state.env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig),
        "KUBECACHEDIR": str(tmp_path / "cache"),
    }
    try:
        yield state
    finally:
        await runner.cleanup()


# -- exec ---------------------------------------------------------------------------------


async def test_exec_splits_outputs_and_returns_exit_code(cluster: Cluster) -> None:
    rc, out, err = await cluster.kubectl(
        "exec", "p", "--", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert rc == 3
    assert out == "out\n"
    assert "err\n" in err
    assert "command terminated with exit code 3" in err


async def test_exec_success(cluster: Cluster) -> None:
    assert await cluster.kubectl("exec", "p", "--", "echo", "hi") == (0, "hi\n", "")


async def test_exec_stdin_until_eof(cluster: Cluster) -> None:
    rc, out, _ = await cluster.kubectl("exec", "-i", "p", "--", "cat", stdin=b"a\nb\n")
    assert (rc, out) == (0, "a\nb\n")


async def test_exec_large_stdin_and_stdout(cluster: Cluster) -> None:
    data = os.urandom(3 * 1024 * 1024).hex().encode()  # 6 MiB of text, both ways
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        "exec",
        "-i",
        "p",
        "--",
        "sha256sum",
        env=cluster.env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(data), GUARD)
    assert proc.returncode == 0
    assert out.split()[0].decode() == hashlib.sha256(data).hexdigest()
    rc, out_text, _ = await cluster.kubectl("exec", "-i", "p", "--", "cat", stdin=data)
    assert rc == 0 and out_text.encode() == data


async def test_exec_missing_command_executable(cluster: Cluster) -> None:
    rc, _, err = await cluster.kubectl("exec", "p", "--", "/nonexistent/binary")
    assert rc == 1
    assert "error executing command in container" in err


async def test_exec_tty_resize_and_exit_code(cluster: Cluster) -> None:
    # kubectl itself runs on a terminal here: spawn_process gives it a pty of its own.
    terminal = await spawn_process(
        [str(KUBECTL), "exec", "-it", "p", "--", "sh"], tty=True, stdin=True, env=cluster.env
    )
    assert terminal.stdin is not None
    seen = bytearray()

    async def expect(pattern: bytes) -> None:
        while not re.search(pattern, seen):
            chunk = await asyncio.wait_for(terminal.stdout.read(4096), GUARD)
            assert chunk, f"terminal closed before {pattern!r}; got {bytes(seen)!r}"
            seen.extend(chunk)

    terminal.stdin.write(b"echo READY-$((40+2))\r")
    await expect(rb"READY-42")
    terminal.resize(120, 40)  # SIGWINCH to kubectl, which sends a resize message
    while await asyncio.wait_for(cluster.resizes.get(), GUARD) != (120, 40):
        pass
    terminal.stdin.write(b"stty size; tty; exit 5\r")
    await expect(rb"40 120\r?\n")
    await expect(rb"/dev/pts/\d+")
    assert await asyncio.wait_for(terminal.wait(), GUARD) == 5


async def test_exec_client_going_away_kills_the_command(cluster: Cluster) -> None:
    kubectl = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        "exec",
        "p",
        "--",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
        env=cluster.env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert kubectl.stdout is not None
    assert await asyncio.wait_for(kubectl.stdout.readline(), GUARD) == b"started\n"
    command = await cluster.spawned.get()
    kubectl.kill()
    await kubectl.wait()
    assert await asyncio.wait_for(command.wait(), GUARD) == 128 + signal.SIGKILL


async def test_exec_rejects_bad_requests(cluster: Cluster) -> None:
    url = cluster.url + "/api/v1/namespaces/default/pods/p/exec"
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "?stdout=true") as resp:
            assert resp.status == 400
            body = await resp.json()
            assert body["kind"] == "Status" and body["reason"] == "BadRequest"
            assert "command" in body["message"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(
                url + "?command=true&stdout=true", protocols=("v4.channel.k8s.io",)
            )
        assert info.value.status == 400
        async with session.get(url + "?command=true&stdout=true") as resp:
            assert resp.status == 400
            assert "v5.channel.k8s.io" in (await resp.json())["message"]


# -- port-forward -------------------------------------------------------------------------


@dataclass
class EchoServer:
    """Echoes each connection until its EOF; counts the connections still open."""

    port: int = 0
    open_connections: int = 0
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.all_closed.clear()
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            await writer.drain()
        finally:
            writer.close()
            self.open_connections -= 1
            if not self.open_connections:
                self.all_closed.set()


async def http_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP/1.0 response, then close, without waiting for the client to half-close."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    await writer.drain()
    writer.close()


@dataclass
class PortForward:
    proc: asyncio.subprocess.Process
    local_port: int

    async def roundtrip(self, payload: bytes) -> bytes:
        """Send payload and half-close while reading the echo, so both directions overlap."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.local_port)

        async def send() -> None:
            view = memoryview(payload)
            for offset in range(0, len(view), 256 * 1024):
                writer.write(view[offset : offset + 256 * 1024])
                await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send())
        received = await asyncio.wait_for(reader.read(), GUARD)
        await sender
        writer.close()
        return received

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.proc.wait(), GUARD)


async def start_port_forward(cluster: Cluster, remote_port: int) -> PortForward:
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        "port-forward",
        "--address",
        "127.0.0.1",
        "pod/p",
        f"0:{remote_port}",
        env=cluster.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), GUARD)
    match = re.match(rb"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
    assert match, line
    assert int(match.group(2)) == remote_port
    return PortForward(proc, int(match.group(1)))


@pytest.fixture
async def echo_server() -> AsyncIterator[EchoServer]:
    state = EchoServer()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    async with server:
        state.port = server.sockets[0].getsockname()[1]
        yield state


async def run_forwarding_checks(cluster: Cluster, echo: EchoServer) -> None:
    forward = await start_port_forward(cluster, echo.port)
    try:
        for i in range(3):
            assert await forward.roundtrip(f"hello {i}\n".encode()) == f"hello {i}\n".encode()
        payloads = [os.urandom(10_000 * (i + 1)) for i in range(8)]
        results = await asyncio.gather(*(forward.roundtrip(p) for p in payloads))
        assert results == payloads
        big = os.urandom(8 * 1024 * 1024)
        echoed = await forward.roundtrip(big)
        assert len(echoed) == len(big)
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(big).digest()
        # Two large transfers at once share the session without starving each other.
        pair = [os.urandom(3 * 1024 * 1024), os.urandom(3 * 1024 * 1024)]
        assert await asyncio.gather(*(forward.roundtrip(p) for p in pair)) == pair
        # A connection still open when kubectl stops is torn down on both sides.
        reader, writer = await asyncio.open_connection("127.0.0.1", forward.local_port)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), GUARD) == b"ping"
    finally:
        rc = await forward.stop()
    assert rc == 0
    assert await asyncio.wait_for(reader.read(), GUARD) == b""
    writer.close()
    await asyncio.wait_for(cluster.sessions_done.wait(), GUARD)
    await asyncio.wait_for(echo.all_closed.wait(), GUARD)


async def test_port_forward_over_websocket(cluster: Cluster, echo_server: EchoServer) -> None:
    await run_forwarding_checks(cluster, echo_server)


async def test_port_forward_spdy_fallback(cluster: Cluster, echo_server: EchoServer) -> None:
    cluster.refuse_websocket_portforward = True
    await run_forwarding_checks(cluster, echo_server)


async def test_port_forward_server_closes_first(cluster: Cluster) -> None:
    server = await asyncio.start_server(http_server, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        forward = await start_port_forward(cluster, port)
        try:
            for _ in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", forward.local_port)
                writer.write(b"GET / HTTP/1.0\r\n\r\n")
                response = await asyncio.wait_for(reader.read(), GUARD)
                writer.close()
                assert response.endswith(b"\r\n\r\nhello")
        finally:
            assert await forward.stop() == 0


async def test_port_forward_dial_error_reaches_kubectl(cluster: Cluster) -> None:
    closed = await asyncio.start_server(EchoServer().handle, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    forward = await start_port_forward(cluster, port)
    reader, writer = await asyncio.open_connection("127.0.0.1", forward.local_port)
    assert await asyncio.wait_for(reader.read(), GUARD) == b""
    writer.close()
    assert forward.proc.stderr is not None
    stderr = await asyncio.wait_for(forward.proc.stderr.read(), GUARD)
    await asyncio.wait_for(forward.proc.wait(), GUARD)
    assert f"error forwarding port {port} to pod default/p".encode() in stderr


async def test_port_forward_rejects_plain_get(cluster: Cluster) -> None:
    url = cluster.url + "/api/v1/namespaces/default/pods/p/portforward"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 400
        assert (await resp.json())["kind"] == "Status"
