"""The node agent's HTTPS endpoint (the kubelet port): container logs, exec and port-forward,
which the API server relays `pods/log`, `pods/exec` and `pods/portforward` to. Only clients
with a certificate from the cluster's CA are served."""

from __future__ import annotations

import asyncio
import socket
import ssl
from datetime import UTC, datetime, timedelta

from aiohttp import web

from kubesvc.api.errors import ApiError
from kubesvc.client.informer import Informer
from kubesvc.config.pki import Pki
from kubesvc.kernel.netns import open_socket
from kubesvc.node.portforward import serve_portforward
from kubesvc.node.runtime import ContainerNotFound, Runtime
from kubesvc.node.streaming import ExecProcess, error_response, serve_exec, spawn_process


class KubeletServer:
    def __init__(self, runtime: Runtime, pods: Informer, pki: Pki, node_name: str) -> None:
        self.runtime = runtime
        self.pods = pods
        self.pki = pki
        self.node_name = node_name
        self._runner: web.AppRunner | None = None

    def _uid(self, request: web.Request) -> str:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        pod = self.pods.get(name, ns)
        if pod is None:
            raise ApiError(404, "NotFound", f'pod "{name}" not found on node {self.node_name}')
        return str(pod["metadata"]["uid"])

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        since = None
        if q.get("sinceSeconds"):
            since = datetime.now(UTC) - timedelta(seconds=int(q["sinceSeconds"]))
        elif q.get("sinceTime"):
            since = datetime.fromisoformat(q["sinceTime"].replace("Z", "+00:00"))
        try:
            lines = self.runtime.log_reader(
                self._uid(request), request.match_info["container"],
                previous=q.get("previous") == "true", follow=q.get("follow") == "true",
                timestamps=q.get("timestamps") == "true",
                tail_lines=int(q["tailLines"]) if q.get("tailLines") else None,
                since=since, limit_bytes=int(q["limitBytes"]) if q.get("limitBytes") else None)
        except ContainerNotFound as exc:
            return error_response(ApiError(400, "BadRequest", str(exc)))
        except ApiError as exc:
            return error_response(exc)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        async for line in lines:
            await response.write(line.encode())
        await response.write_eof()
        return response

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        try:
            uid = self._uid(request)
        except ApiError as exc:
            return error_response(exc)
        container = request.match_info["container"]

        async def spawn(argv: list[str], tty: bool, stdin: bool) -> ExecProcess:
            try:
                full = self.runtime.exec_argv(uid, container, argv, tty)
            except ContainerNotFound as exc:
                raise ApiError(400, "BadRequest", str(exc)) from None
            return await spawn_process(full, tty, stdin)

        return await serve_exec(request, spawn)

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        try:
            uid = self._uid(request)
        except ApiError as exc:
            return error_response(exc)
        ip = self.runtime.pod_ip(uid)

        async def dial(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            # The pod's address is reached from inside the node's network namespace.
            sock = await open_socket(self.runtime.node.netns)
            try:
                await asyncio.get_running_loop().sock_connect(sock, (ip, port))
            except OSError:
                sock.close()
                raise
            return await asyncio.open_connection(sock=sock)

        return await serve_portforward(request, dial)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{name}/{container}", self._logs)
        app.router.add_route("*", "/exec/{namespace}/{name}/{container}", self._exec)
        app.router.add_route("*", "/portForward/{namespace}/{name}", self._portforward)
        return app

    async def start(self, address: str, port: int) -> None:
        cert, key = self.pki.serving(f"kubelet-{self.node_name}", "kubelet", [address])
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                             cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(cert), str(key))
        context.verify_mode = ssl.CERT_REQUIRED
        sock = await open_socket(self.runtime.node.netns)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=context).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
