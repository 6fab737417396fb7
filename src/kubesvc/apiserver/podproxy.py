"""pods/log, pods/exec and pods/portforward: the API server relays them to the node agent of
the pod's node (its kubelet port), as Kubernetes' API server does."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp
from aiohttp import web

from kubesvc.api import errors
from kubesvc.api.resources import of
from kubesvc.apiserver.registry import Registry
from kubesvc.config.pki import Pki

NODES = of("v1", "Node")
DEFAULT_KUBELET_PORT = 10250
Obj = dict[str, Any]


class PodProxy:
    def __init__(self, registry: Registry, pki: Pki) -> None:
        self.registry = registry
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        # Node agents are addressed by IP; their certificates name those IPs.
        self._ssl = context
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _kubelet(self, pod: Obj) -> str:
        node_name = pod["spec"].get("nodeName")
        if not node_name:
            raise errors.bad_request(
                f'pod {pod["metadata"]["name"]} does not have a host assigned')
        node = await self.registry.get(NODES, None, node_name)
        status = node.get("status") or {}
        address = next((a["address"] for a in status.get("addresses") or []
                        if a.get("type") == "InternalIP"), None)
        if address is None:
            raise errors.ApiError(503, "ServiceUnavailable",
                                  f"node {node_name} has no InternalIP")
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get(
            "Port", DEFAULT_KUBELET_PORT)
        return f"https://{address}:{port}"

    async def __call__(self, request: web.Request, pod: Obj, sub: str) -> web.StreamResponse:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        base = await self._kubelet(pod)
        if sub == "log":
            container = request.query.get("container") or _default_container(pod)
            return await self._stream_get(
                request, f"{base}/containerLogs/{ns}/{name}/{container}")
        if sub == "exec":
            container = request.query.get("container") or _default_container(pod)
            target = f"{base}/exec/{ns}/{name}/{container}"
        else:
            target = f"{base}/portForward/{ns}/{name}"
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.bad_request(
                f"{sub} needs a WebSocket upgrade (kubectl 1.30 or newer)")
        return await self._relay_websocket(request, target)

    async def _stream_get(self, request: web.Request, url: str) -> web.StreamResponse:
        try:
            upstream = await self.session.get(url, params=request.query)
        except aiohttp.ClientError as exc:
            raise errors.ApiError(503, "ServiceUnavailable",
                                  f"cannot reach the node agent: {exc}") from None
        async with upstream:
            if upstream.status >= 400:
                return web.Response(body=await upstream.read(), status=upstream.status,
                                    headers={"Content-Type": upstream.headers.get(
                                        "Content-Type", "application/json")})
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _relay_websocket(self, request: web.Request, url: str) -> web.StreamResponse:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol",
                                                           "").split(",") if p.strip()]
        try:
            upstream = await self.session.ws_connect(url, params=request.query,
                                                     protocols=offered, autoping=True,
                                                     max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            raise errors.ApiError(exc.status, "BadRequest",
                                  f"the node agent refused the stream: {exc.message}") from None
        except aiohttp.ClientError as exc:
            raise errors.ApiError(503, "ServiceUnavailable",
                                  f"cannot reach the node agent: {exc}") from None
        chosen = upstream.protocol
        client = web.WebSocketResponse(protocols=[chosen] if chosen else (), max_msg_size=0)
        await client.prepare(request)

        async def pump(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                else:
                    break
            await dst.close()

        tasks = [asyncio.create_task(pump(client, upstream)),
                 asyncio.create_task(pump(upstream, client))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await upstream.close()
            await client.close()
        return client


def _default_container(pod: Obj) -> str:
    containers = pod["spec"].get("containers") or []
    if not containers:
        raise errors.bad_request("the pod has no containers")
    return str(containers[0]["name"])
