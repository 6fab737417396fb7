"""An async client of the API server, the one every component uses, in-process or remote."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from kubesvc.api.errors import ApiError
from kubesvc.api.resources import Resource
from kubesvc.config.cluster import ClusterConfig

Obj = dict[str, Any]

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


def path_of(res: Resource, namespace: str | None = None, name: str | None = None,
            subresource: str = "") -> str:
    base = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    if res.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{res.plural}"
    if name:
        base += f"/{name}"
    if subresource:
        base += f"/{subresource}"
    return base


class Client:
    def __init__(self, server: str, *, ca: Path, cert: Path | None = None,
                 key: Path | None = None, token: str | None = None) -> None:
        self.server = server.rstrip("/")
        context = ssl.create_default_context(cafile=str(ca))
        if cert and key:
            context.load_cert_chain(str(cert), str(key))
        self._ssl = context
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def for_cluster(cls, config: ClusterConfig) -> Client:
        pki = config.pki
        return cls(config.server_url, ca=pki.ca_cert, cert=pki.admin_cert, key=pki.admin_key)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64),
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=None,
                                                                     sock_connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, *, body: Any = None,
                      content_type: str = "application/json",
                      params: dict[str, str] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(method, self.server + path, data=data, params=params,
                                        headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=60)) as resp:
            payload = await resp.read()
            if resp.status >= 400:
                raise _error(resp.status, payload)
            return json.loads(payload) if payload else None

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj:
        result: Obj = await self.request("GET", path_of(res, namespace, name))
        return result

    async def list(self, res: Resource, namespace: str | None = None, *,
                   label_selector: str = "", field_selector: str = "") -> tuple[list[Obj], str]:
        params = {k: v for k, v in (("labelSelector", label_selector),
                                    ("fieldSelector", field_selector)) if v}
        result = await self.request("GET", path_of(res, namespace), params=params)
        return result["items"], result["metadata"]["resourceVersion"]

    async def create(self, res: Resource, obj: Obj, namespace: str | None = None) -> Obj:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        result: Obj = await self.request("POST", path_of(res, ns), body=obj)
        return result

    async def update(self, res: Resource, obj: Obj, subresource: str = "") -> Obj:
        meta = obj["metadata"]
        result: Obj = await self.request(
            "PUT", path_of(res, meta.get("namespace"), meta["name"], subresource), body=obj)
        return result

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    *, patch_type: str = "merge", subresource: str = "") -> Obj:
        result: Obj = await self.request("PATCH", path_of(res, namespace, name, subresource),
                                         body=patch, content_type=PATCH_TYPES[patch_type])
        return result

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     grace_period: int | None = None, propagation: str | None = None,
                     preconditions: Obj | None = None) -> Obj:
        opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period is not None:
            opts["gracePeriodSeconds"] = grace_period
        if propagation:
            opts["propagationPolicy"] = propagation
        if preconditions:
            opts["preconditions"] = preconditions
        result: Obj = await self.request("DELETE", path_of(res, namespace, name), body=opts)
        return result

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str = "", label_selector: str = "",
                    field_selector: str = "", timeout: int = 300
                    ) -> AsyncIterator[tuple[str, Obj]]:
        """Watch events as (type, object); ends when the server closes the stream."""
        params = {"watch": "true", "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(timeout)}
        for key, value in (("resourceVersion", resource_version),
                           ("labelSelector", label_selector), ("fieldSelector", field_selector)):
            if value:
                params[key] = value
        async with self.session.get(self.server + path_of(res, namespace),
                                    params=params) as resp:
            if resp.status >= 400:
                raise _error(resp.status, await resp.read())
            async for line in resp.content:
                if line.strip():
                    event = json.loads(line)
                    yield event["type"], event["object"]


def _error(status: int, payload: bytes) -> ApiError:
    try:
        body = json.loads(payload)
    except ValueError:
        body = {}
    if not isinstance(body, dict) or body.get("kind") != "Status":
        return ApiError(status, "Unknown", payload.decode(errors="replace")[:200])
    details = body.get("details") or {}
    return ApiError(status, body.get("reason", ""), body.get("message", ""),
                    name=details.get("name", ""), group=details.get("group", ""),
                    kind=details.get("kind", ""))
